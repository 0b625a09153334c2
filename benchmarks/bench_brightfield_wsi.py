"""Peak memory and accuracy of a whole-slide bright-field scan (1 GB of RGB pixels).

Renders two bright-field skin sections (``histo_fms.synthetic.brightfield``, 0.25 µm/px
by default, different seeds and densities; one slide: the same stain vectors and white
level), places them on a glass canvas
(the second upside down; glass all round each, as on a real slide) and writes the canvas
tile by tile as an SVS-like tiled RGB TIFF (``MPP =`` in its description) under ``--tmp``
(never committed; deleted afterwards unless ``--keep``). Then runs ``histo-fms run
pipelines/skin_ienfd_brightfield.yaml`` on it in a subprocess, sampling the resident
memory of the whole process tree every 0.2 s, and prints the peak, the wall time, the
tissue pieces and windows used, per tissue piece the true and counted crossings,
precision and recall (10 µm one-to-one) and surface length, and per analysis window
(core) the true and counted crossings with their count ICC(A,1): a window that failed, or
a crossing counted twice or lost at a window seam, shows there.

    python benchmarks/bench_brightfield_wsi.py [--shape 12000 28000] [--px 0.25]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import tifffile

from histo_fms.skin import polyline_length
from histo_fms.stats._agreement import icc_a1
from histo_fms.synthetic.brightfield import make_brightfield_skin_section
from histo_fms.synthetic.skin import evaluate_skin

ROOT = Path(__file__).resolve().parents[1]
TILE = 512


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its children, bytes."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def write_slide(path: Path, shape: tuple[int, int], px: float, sections, seed: int) -> None:
    """Write glass with the given (rgb, y0, x0) sections pasted in, tile by tile."""
    rng = np.random.default_rng(seed)
    white = sections[0][3]  # the rendered glass (the first section's white level)
    h, w = shape

    def tiles():
        for ty in range(0, h, TILE):
            for tx in range(0, w, TILE):
                t = np.clip(rng.normal(white, 2.0, (TILE, TILE, 3)), 0, 255).astype(np.uint8)
                for rgb, y0, x0, _ in sections:
                    sy0, sy1 = max(ty, y0), min(ty + TILE, y0 + rgb.shape[0])
                    sx0, sx1 = max(tx, x0), min(tx + TILE, x0 + rgb.shape[1])
                    if sy0 < sy1 and sx0 < sx1:
                        t[sy0 - ty:sy1 - ty, sx0 - tx:sx1 - tx] = rgb[sy0 - y0:sy1 - y0,
                                                                      sx0 - x0:sx1 - x0]
                yield t

    tifffile.imwrite(path, tiles(), shape=(h, w, 3), dtype=np.uint8, tile=(TILE, TILE),
                     photometric="rgb", bigtiff=True,
                     description=f"Aperio Image Library v12 |AppMag = 40|MPP = {px}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=2, default=[12000, 28000],
                    help="slide (Y, X) in pixels (12000 x 28000 x 3 = 1.0 GB)")
    ap.add_argument("--section", type=int, nargs=2, default=[1200, 12000],
                    help="rendered section (Y, X) in pixels")
    ap.add_argument("--px", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=5100)
    ap.add_argument("--density", type=float, nargs=2, default=[12.0, 25.0],
                    help="fibres per mm of the two sections")
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--memory-gib", type=float, default=None,
                    help="brightfield.memory_gib (default: the pipeline's, 1.5); a small "
                         "value makes a small slide run in windows (a quick check)")
    ap.add_argument("--scheduler", default=None,
                    help="passed to histo-fms run (default: its own choice)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    phs = [make_brightfield_skin_section(tuple(args.section), args.px, seed=args.seed,
                                         density_per_mm=args.density[0])]
    # one slide: one stain batch and one scan (the same vectors and white level)
    phs.append(make_brightfield_skin_section(
        tuple(args.section), args.px, seed=args.seed + 1, density_per_mm=args.density[1],
        stain_vectors=phs[0].stain_vectors, white=phs[0].white))
    sh, sw = phs[0].rgb.shape[:2]
    h, w = args.shape
    a = (h // 6, w // 10)
    b = (h - h // 6 - sh, w - w // 10 - sw)
    # the second section upside down
    white = phs[0].white
    sections = [(phs[0].rgb, *a, white), (phs[1].rgb[::-1], *b, white)]
    print(f"rendered two {sh} x {sw} px sections in {time.perf_counter() - t0:.0f} s; "
          f"{phs[0].skin.n_crossings} + {phs[1].skin.n_crossings} true crossings")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        d = tmp / "in"
        d.mkdir()
        slide = d / "slide.svs"
        t1 = time.perf_counter()
        write_slide(slide, (h, w), args.px, sections, args.seed)
        size = slide.stat().st_size
        print(f"wrote {slide} ({h} x {w} x 3 = {h * w * 3 / 1e9:.2f} GB of pixels, file "
              f"{size / 1e9:.2f} GB) in {time.perf_counter() - t1:.0f} s")
        for ph in phs:
            del ph.rgb
        out = tmp / "out"
        cfg_path = ROOT / "pipelines" / "skin_ienfd_brightfield.yaml"
        if args.memory_gib is not None:
            import yaml

            cfg = yaml.safe_load(cfg_path.read_text())
            cfg["brightfield"]["memory_gib"] = args.memory_gib
            cfg_path = tmp / "config.yaml"
            cfg_path.write_text(yaml.safe_dump(cfg))
        cmd = [sys.executable, "-m", "histo_fms.cli", "run", str(cfg_path), str(slide),
               "--out", str(out), "--no-resume"]
        if args.scheduler:
            cmd += ["--scheduler", args.scheduler]
        t2 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(ps))
            time.sleep(0.2)
        wall = time.perf_counter() - t2
        log = proc.stdout.read().decode(errors="replace")
        if proc.returncode != 0:
            print(log)
            return 1
        summ = pd.read_csv(out / "skin_summary.csv").iloc[0]
        cr = pd.read_csv(out / "slide" / "crossings.csv")
        status = json.loads((out / "slide" / "status.json").read_text())
        if args.keep:
            import shutil

            shutil.copytree(out, Path(args.tmp) / "bench_brightfield_wsi_out",
                            dirs_exist_ok=True)
    px = args.px
    truth = []  # true crossings of both sections in slide µm
    rows = []
    for k, (ph, (y0, x0)) in enumerate(zip(phs, (a, b), strict=True)):
        inside = ((cr["y_um"] >= y0 * px) & (cr["y_um"] < (y0 + sh) * px)
                  & (cr["x_um"] >= x0 * px) & (cr["x_um"] < (x0 + sw) * px))
        local = cr.loc[inside].copy()
        local["x_um"] -= x0 * px
        local["y_um"] -= y0 * px
        t = ph.skin.truth_crossings[["y_um", "x_um"]].copy()
        if k == 1:  # pasted upside down
            local["y_um"] = (sh - 1) * px - local["y_um"]
            t["y_um"] = (sh - 1) * px - t["y_um"]
        t["y_um"] += y0 * px
        t["x_um"] += x0 * px
        truth.append(t)
        e = evaluate_skin(ph.skin, local, tolerance_um=10.0)
        rows.append({"section": k + 1, "true": e["n_true"], "counted": e["n_detected"],
                     "precision": e["precision"], "recall": e["recall"],
                     "surface_mm": polyline_length(ph.skin.surface_um) / 1000.0})
    truth = pd.concat(truth, ignore_index=True)
    ws = status["reader"]["whole_slide"]
    # per window core: the true and counted crossings there
    wrows = []
    for r in ws["windows"]:
        if r["status"] != "ok":
            continue
        axis = 1 if (r["x1"] - r["x0"]) >= (r["y1"] - r["y0"]) else 0
        col = ("y_um", "x_um")[axis]
        lo, hi = _core_bounds(ws["windows"], r, axis, px)
        box = ((truth["y_um"] >= r["y0"] * px) & (truth["y_um"] < r["y1"] * px)
               & (truth["x_um"] >= r["x0"] * px) & (truth["x_um"] < r["x1"] * px))
        bc = ((cr["y_um"] >= r["y0"] * px) & (cr["y_um"] < r["y1"] * px)
              & (cr["x_um"] >= r["x0"] * px) & (cr["x_um"] < r["x1"] * px))
        wrows.append({"window": r["window"], "piece": r["piece"],
                      "true": int((box & (truth[col] >= lo) & (truth[col] < hi)).sum()),
                      "counted": int((bc & (cr[col] >= lo) & (cr[col] < hi)).sum()),
                      "dej_mm": r["dej_um"] / 1000.0})
    wdf = pd.DataFrame(wrows)
    outside = len(cr) - sum(r["counted"] for r in rows)
    print()
    print("| window | piece | true | counted | DEJ (mm) |")
    print("|---|---|---|---|---|")
    for r in wdf.itertuples(index=False):
        print(f"| {r.window} | {r.piece} | {r.true} | {r.counted} | {r.dej_mm:.3f} |")
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| slide | {h} x {w} px RGB ({h * w * 3 / 1e9:.2f} GB), {px} µm/px, tiled TIFF |")
    print(f"| peak RSS (process tree) | {peak / 2**30:.2f} GiB |")
    print(f"| wall time | {wall:.0f} s |")
    print(f"| regions | {summ['wsi_regions']} (memory_gib {ws['memory_gib']}, sample step "
          f"{ws['sample_step']}) |")
    print(f"| failed windows | {len(ws['failed_windows'])} |")
    for r in rows:
        print(f"| section {r['section']}: true / counted / P / R | {r['true']} / {r['counted']}"
              f" / {r['precision']:.3f} / {r['recall']:.3f} |")
    tp = sum(r["precision"] * r["counted"] for r in rows)
    n_d, n_t = sum(r["counted"] for r in rows), sum(r["true"] for r in rows)
    print(f"| both: P / R | {tp / max(n_d, 1):.3f} / {tp / max(n_t, 1):.3f} |")
    if len(wdf) > 1:
        icc = icc_a1(wdf[["true", "counted"]].to_numpy(float))
        print(f"| count ICC(A,1) over the {len(wdf)} window cores | {icc:.3f} |")
        print(f"| windows' summed counts, true / counted | {wdf['true'].sum()} / "
              f"{wdf['counted'].sum()} |")
    print(f"| crossings outside the sections | {outside} |")
    print(f"| epidermis length (mm) | {summ['epidermis_length_mm']:.3f} (true "
          f"{sum(r['surface_mm'] for r in rows):.3f}) |")
    print(f"| DEJ length (mm), summed over windows | {summ['dej_length_mm']:.3f} |")
    return 0


def _core_bounds(windows: list[dict], r: dict, axis: int, px: float) -> tuple[float, float]:
    """The core of window ``r`` along ``axis`` in µm: halfway into its neighbours' overlaps."""
    same = sorted({(w["window"], (w["y0"], w["x0"])[axis], (w["y1"], w["x1"])[axis])
                   for w in windows if w["piece"] == r["piece"]})
    i = [s[0] for s in same].index(r["window"])
    lo = (same[i][1] + same[i - 1][2]) / 2.0 * px if i > 0 else -np.inf
    hi = (same[i][2] + same[i + 1][1]) / 2.0 * px if i + 1 < len(same) else np.inf
    return lo, hi


if __name__ == "__main__":
    raise SystemExit(main())
