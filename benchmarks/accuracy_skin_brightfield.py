"""Accuracy of bright-field (DAB + haematoxylin) IENFD on rendered phantoms.

Renders bright-field sections (``histo_fms.synthetic.brightfield``: 0.25-0.5 µm/px,
2-35 fibres/mm, per-section stain vectors (up to 6° off the named ones) and white balance,
DAB, haematoxylin and eosin-like stain strengths varied between sections, JPEG
compression, both orientations; every other section on glass all round, as on a slide,
the others cut to the image edges), writes them as RGB OME-TIFF and SVS-like tiled TIFF
(pixel size in an ``MPP =`` description), runs ``histo-fms run
pipelines/skin_ienfd_brightfield.yaml`` on them as one batch and prints per-section
results and the overall figures: count ICC(A,1), crossing precision / recall (10 µm
one-to-one), mean absolute count error, and the angle between the estimated and the
rendered stain vectors.

    python benchmarks/accuracy_skin_brightfield.py [--n 12] [--seed0 4000]
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
import tifffile

from histo_fms.stain import vector_angle_deg
from histo_fms.stats._agreement import icc_a1
from histo_fms.synthetic.brightfield import make_brightfield_skin_section
from histo_fms.synthetic.skin import evaluate_skin

ROOT = Path(__file__).resolve().parents[1]
DENSITIES = [2, 5, 8, 12, 16, 20, 25, 30, 35, 3, 10, 18]
PIXEL_SIZES = [0.5, 0.25, 0.35, 0.5, 0.3, 0.45]
# section-to-section stain variation (strength of the stains, besides their colour)
DAB_OD = [1.0, 0.7, 1.3]
HAEMATOXYLIN_OD = [0.6, 0.8, 0.45, 0.6]
EOSIN_OD = [0.12, 0.0, 0.25, 0.12, 0.2]
GLASS_UM = 40.0  # glass all round a section on a slide


def write_rgb(path: Path, rgb: np.ndarray, px: float, svs_like: bool) -> None:
    """Write an RGB OME-TIFF, or an SVS-like tiled TIFF with ``MPP`` in its description."""
    if svs_like:
        tifffile.imwrite(path, rgb, photometric="rgb", tile=(256, 256), compression="jpeg",
                         description=f"Aperio Image Library v12 |AppMag = 20|MPP = {px}")
    else:
        tifffile.imwrite(path, rgb, photometric="rgb", ome=True,
                         metadata={"axes": "YXS", "PhysicalSizeX": px, "PhysicalSizeY": px})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--seed0", type=int, default=4000)
    ap.add_argument("--length-um", type=float, default=1000.0, help="section length")
    ap.add_argument("--no-glass", action="store_true",
                    help="every section cut to the image edges (the set before 2026-12-01)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows, phantoms = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "in"
        d.mkdir()
        for i in range(args.n):
            px = PIXEL_SIZES[i % len(PIXEL_SIZES)]
            shape = (int(300 / px), int(args.length_um / px))
            ph = make_brightfield_skin_section(
                shape, px, seed=args.seed0 + i, density_per_mm=DENSITIES[i % len(DENSITIES)],
                orientation=("up", "down")[(i // 2) % 2], vector_jitter_deg=6.0,
                dab_od=DAB_OD[i % len(DAB_OD)],
                haematoxylin_od=HAEMATOXYLIN_OD[i % len(HAEMATOXYLIN_OD)],
                eosin_od=EOSIN_OD[i % len(EOSIN_OD)])
            stem = f"bf_{args.seed0 + i}"
            svs = i % 3 == 2
            pad = int(round(GLASS_UM / px)) if (i % 2 == 1 and not args.no_glass) else 0
            rgb = ph.rgb
            if pad:
                rng = np.random.default_rng(args.seed0 + i)
                rgb = np.clip(rng.normal(ph.white, 2.0, (shape[0] + 2 * pad,
                                                         shape[1] + 2 * pad, 3)),
                              0, 255).astype(np.uint8)
                rgb[pad:pad + shape[0], pad:pad + shape[1]] = ph.rgb
            write_rgb(d / (f"{stem}.svs" if svs else f"{stem}.ome.tif"), rgb, px, svs)
            phantoms[stem] = (ph, pad * px)
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "histo_fms.cli", "run",
               str(ROOT / "pipelines" / "skin_ienfd_brightfield.yaml"), str(d), "--out",
               str(out), "--no-resume"]
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
        summary = pd.read_csv(out / "skin_summary.csv")
        for stem, (ph, shift) in phantoms.items():
            row = summary[summary["image"].str.startswith(stem + ".")]
            f = out / stem / "crossings.csv"
            if not len(row) or not f.is_file():
                rows.append({"image": stem, "glass": bool(shift), "true": ph.skin.n_crossings,
                             "counted": np.nan})
                continue
            cr = pd.read_csv(f)
            cr["y_um"] -= shift
            cr["x_um"] -= shift
            e = evaluate_skin(ph.skin, cr, tolerance_um=10.0,
                              surface_length_um=float(row["epidermis_length_mm"].iloc[0]) * 1e3,
                              dej_length_um=float(row["dej_length_mm"].iloc[0]) * 1e3)
            vec = json.loads(row["stain_vectors"].iloc[0])
            rows.append({
                "image": stem, "px_um": ph.pixel_size_um, "glass": bool(shift),
                "true": ph.skin.n_crossings,
                "counted": int(row["n_crossings"].iloc[0]), "tp": e["tp"],
                "fp": e["n_detected"] - e["tp"], "fn": e["n_true"] - e["tp"],
                "surface_err_pct": 100 * e["surface_length_rel_error"],
                "dej_err_pct": 100 * e["dej_length_rel_error"],
                "dab_angle_deg": vector_angle_deg(vec["dab"], ph.stain_vectors[1]),
                "h_angle_deg": vector_angle_deg(vec["haematoxylin"], ph.stain_vectors[0]),
            })
    df = pd.DataFrame(rows)
    print("| " + " | ".join(df.columns) + " |")
    print("|" + "---|" * len(df.columns))
    for r in df.itertuples(index=False):
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r)
              + " |")
    ok = df.dropna(subset=["counted"])
    tp, fp, fn = ok["tp"].sum(), ok["fp"].sum(), ok["fn"].sum()
    print()
    print("| figure | value | target |")
    print("|---|---|---|")
    print(f"| sections analysed | {len(ok)} of {len(df)} | all |")
    print(f"| count ICC(A,1) | {icc_a1(ok[['true', 'counted']].to_numpy(float)):.3f} | >= 0.95 |")
    print(f"| crossing precision / recall | {tp / max(tp + fp, 1):.3f} / "
          f"{tp / max(tp + fn, 1):.3f} | >= 0.90 / 0.90 |")
    for g, sub in ok.groupby("glass"):
        t_, f_, n_ = sub["tp"].sum(), sub["fp"].sum(), sub["fn"].sum()
        print(f"| precision / recall, {'on glass all round' if g else 'cut to the edges'} "
              f"({len(sub)}) | {t_ / max(t_ + f_, 1):.3f} / {t_ / max(t_ + n_, 1):.3f} | |")
    print(f"| mean abs count error | {(ok['counted'] - ok['true']).abs().mean():.2f} | |")
    for g, sub in ok.groupby("glass"):
        print(f"| epidermal (surface) / DEJ length error, mean abs, "
              f"{'on glass' if g else 'cut to the edges'} | "
              f"{sub['surface_err_pct'].abs().mean():.1f} % / "
              f"{sub['dej_err_pct'].abs().mean():.1f} % | |")
    print(f"| stain angle DAB / H (mean, deg) | {ok['dab_angle_deg'].mean():.1f} / "
          f"{ok['h_angle_deg'].mean():.1f} | |")
    print(f"| wall time | {time.perf_counter() - t0:.1f} s | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
