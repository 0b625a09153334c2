"""Peak memory and accuracy of a whole-slide bright-field scan (1 GB of RGB pixels).

Renders a bright-field skin section (``histo_fms.synthetic.brightfield``, 0.25 µm/px by
default), places it twice (the second upside down) on a glass canvas and writes the
canvas tile by tile as an SVS-like tiled RGB TIFF (``MPP =`` in its description) under
``--tmp`` (never committed; deleted afterwards unless ``--keep``). Then runs
``histo-fms run pipelines/skin_ienfd_brightfield.yaml`` on it in a subprocess, sampling
the resident memory of the whole process tree every 0.2 s, and prints the peak, the wall
time, the tissue pieces and windows used, and the counts, precision and recall against
the ground truth of both sections.

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
    white = sections[0][0][0, 0].astype(float)  # the rendered glass (top-left corner)
    h, w = shape

    def tiles():
        for ty in range(0, h, TILE):
            for tx in range(0, w, TILE):
                t = np.clip(rng.normal(white, 2.0, (TILE, TILE, 3)), 0, 255).astype(np.uint8)
                for rgb, y0, x0 in sections:
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
    ap.add_argument("--density", type=float, default=12.0)
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--scheduler", default=None,
                    help="passed to histo-fms run (default: its own choice)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ph = make_brightfield_skin_section(tuple(args.section), args.px, seed=args.seed,
                                       density_per_mm=args.density)
    sh, sw = ph.rgb.shape[:2]
    h, w = args.shape
    a = (h // 6, w // 10)
    b = (h - h // 6 - sh, w - w // 10 - sw)
    sections = [(ph.rgb, *a), (ph.rgb[::-1], *b)]
    print(f"rendered {sh} x {sw} px section in {time.perf_counter() - t0:.0f} s; "
          f"{ph.skin.n_crossings} true crossings")
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
        del ph.rgb
        out = tmp / "out"
        cmd = [sys.executable, "-m", "histo_fms.cli", "run",
               str(ROOT / "pipelines" / "skin_ienfd_brightfield.yaml"), str(slide),
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
    rows = []
    for k, (y0, x0) in enumerate((a, b)):
        inside = ((cr["y_um"] >= y0 * px) & (cr["y_um"] < (y0 + sh) * px)
                  & (cr["x_um"] >= x0 * px) & (cr["x_um"] < (x0 + sw) * px))
        local = cr.loc[inside].copy()
        local["x_um"] -= x0 * px
        local["y_um"] -= y0 * px
        if k == 1:  # pasted upside down
            local["y_um"] = (sh - 1) * px - local["y_um"]
        e = evaluate_skin(ph.skin, local, tolerance_um=10.0)
        rows.append({"section": k + 1, "true": e["n_true"], "counted": e["n_detected"],
                     "precision": e["precision"], "recall": e["recall"]})
    outside = len(cr) - sum(r["counted"] for r in rows)
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| slide | {h} x {w} px RGB ({h * w * 3 / 1e9:.2f} GB), {px} µm/px, tiled TIFF |")
    print(f"| peak RSS (process tree) | {peak / 2**30:.2f} GiB |")
    print(f"| wall time | {wall:.0f} s |")
    ws = status["reader"]["whole_slide"]
    print(f"| regions | {summ['wsi_regions']} (memory_gib {ws['memory_gib']}, sample step "
          f"{ws['sample_step']}) |")
    for r in rows:
        print(f"| section {r['section']}: true / counted / P / R | {r['true']} / {r['counted']}"
              f" / {r['precision']:.3f} / {r['recall']:.3f} |")
    print(f"| crossings outside the sections | {outside} |")
    print(f"| epidermis length (mm) | {summ['epidermis_length_mm']:.3f} (2 x "
          f"{sw * px / 1000:.1f} mm sections) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
