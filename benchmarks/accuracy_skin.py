"""Accuracy of the skin IENFD pipeline on a phantom set with ground truth.

Run ``python benchmarks/accuracy_skin.py [--n 16] [--shape 600 2400]``; prints a
markdown table of per-section results and the overall figures: count ICC(A,1)
against truth, crossing precision / recall (10 µm one-to-one matching), mean
absolute count error, mean absolute IENFD error and surface / DEJ length errors.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from histo_fms.skin import analyze_skin
from histo_fms.stats._agreement import bland_altman, icc_a1
from histo_fms.synthetic.skin import evaluate_skin, make_skin_section

DENSITIES = [2, 5, 8, 12, 16, 20, 25, 30, 35, 40, 3, 10, 14, 18, 28, 38]
#: ``--hard``: strong rete ridges, gaps in the collagen IV line, vessel walls close beneath
#: the DEJ, a ragged basal layer of nuclei
HARD = dict(rete_amplitude_um=20.0, membrane_gaps_per_mm=10.0, vessel_min_depth_um=12.0,
            basal_dropout=0.3)


def phantom_set(n: int = 12, shape=(400, 1600), seed0: int = 200, **extra):
    """The evaluation set: densities 2-40 /mm, with/without ColIV, both orientations."""
    for i in range(n):
        yield dict(shape=tuple(shape), seed=seed0 + i,
                   density_per_mm=float(DENSITIES[i % len(DENSITIES)]),
                   with_membrane=(i % 2 == 0), orientation=("up", "down")[(i // 2) % 2],
                   **extra)


def evaluate(n: int = 12, shape=(400, 1600), seed0: int = 200, tolerance_um: float = 10.0,
             pixel_size_um: float = 0.5, **extra):
    rows = []
    for spec in phantom_set(n, shape, seed0, **extra):
        ph = make_skin_section(spec["shape"], pixel_size_um,
                               **{k: v for k, v in spec.items() if k != "shape"})
        mem = ph.channel("ColIV") if spec["with_membrane"] else None
        t0 = time.perf_counter()
        res = analyze_skin(ph.channel("PGP9.5"), pixel_size_um=ph.pixel_size_um,
                           membrane=mem, nuclei=ph.channel("DAPI"))
        dt = time.perf_counter() - t0
        ev = evaluate_skin(ph, res.crossings, surface_length_um=res.epidermis_length_mm * 1e3,
                           dej_length_um=res.dej_length_mm * 1e3, tolerance_um=tolerance_um)
        rows.append({**{k: spec[k] for k in ("seed", "density_per_mm", "with_membrane",
                                             "orientation")},
                     **ev, "ienfd_true": ph.ienfd_per_mm, "ienfd": res.ienfd_per_mm,
                     "seconds": dt})
    return pd.DataFrame(rows)


def figures(df: pd.DataFrame) -> dict:
    tp, nd, nt = df.tp.sum(), df.n_detected.sum(), df.n_true.sum()
    ba = bland_altman(df.ienfd.to_numpy(), df.ienfd_true.to_numpy())
    return {
        "sections": len(df),
        "count ICC(A,1)": icc_a1(df[["n_true", "n_detected"]].to_numpy(float)),
        "precision": tp / nd if nd else 1.0,
        "recall": tp / nt if nt else 1.0,
        "mean abs count error": float(df.count_error.abs().mean()),
        "mean abs IENFD error (/mm)": float((df.ienfd - df.ienfd_true).abs().mean()),
        "IENFD bias (/mm) [95% LoA]": f"{ba['bias']:+.2f} [{ba['lower']:+.2f}, {ba['upper']:+.2f}]",
        "mean abs surface length error (%)": float(100 * df.surface_length_rel_error.abs().mean()),
        "max abs surface length error (%)": float(100 * df.surface_length_rel_error.abs().max()),
        "mean abs DEJ length error (%)": float(100 * df.dej_length_rel_error.abs().mean()),
        "max abs DEJ length error (%)": float(100 * df.dej_length_rel_error.abs().max()),
        "mean analysis time (s)": float(df.seconds.mean()),
    }


def _markdown(df: pd.DataFrame) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(False)]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--shape", type=int, nargs=2, default=(600, 2400))
    ap.add_argument("--seed0", type=int, default=200)
    ap.add_argument("--pixel-size", type=float, default=0.5)
    ap.add_argument("--fibre-brightness", type=float, default=1.0,
                    help="phantom fibre signal multiplier (lower = harder)")
    ap.add_argument("--photons", type=float, default=40.0,
                    help="photons per signal unit (lower = noisier)")
    ap.add_argument("--hard", action="store_true",
                    help="strong rete ridges, collagen IV gaps, near vessels, ragged basal row")
    a = ap.parse_args(argv)
    df = evaluate(a.n, tuple(a.shape), a.seed0, pixel_size_um=a.pixel_size,
                  fibre_brightness=a.fibre_brightness, photons_per_unit=a.photons,
                  **(HARD if a.hard else {}))
    cols = ["seed", "density_per_mm", "with_membrane", "orientation", "n_true", "n_detected",
            "tp", "ienfd_true", "ienfd", "surface_length_rel_error", "dej_length_rel_error"]
    print(f"### Skin IENFD accuracy: {len(df)} phantoms {a.shape[0]}x{a.shape[1]} px at "
          f"{a.pixel_size} µm, fibre brightness x{a.fibre_brightness}, "
          f"{a.photons} photons/unit{', hard' if a.hard else ''}\n")
    print(_markdown(df[cols]))
    print("\n| figure | value |\n|---|---|")
    for k, v in figures(df).items():
        print(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |")


if __name__ == "__main__":
    main()
