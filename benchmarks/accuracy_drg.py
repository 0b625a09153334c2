"""Accuracy of the DRG pipeline on synthetic sections with ground truth.

Calibrates the IgG threshold on control-IgG phantoms (the pipeline's default robust
calibration at a 1 % false-positive rate, or ``--calibration percentile``: the 99th
percentile of non-border rings), measures a set of test phantoms and prints markdown
tables: per-section and overall neuron detection (precision, recall, F1 by one-to-one
centroid matching), ring-IgG AUC (true positive vs negative neurons), and the error of
% IgG-positive.

    python benchmarks/accuracy_drg.py --seeds 12 --controls 6
    python benchmarks/accuracy_drg.py --pixel-size 0.35 --shape 1096 --no-sgc
    python benchmarks/accuracy_drg.py --real-tissue   # axon field, nerve root, slide, nuclei
    python benchmarks/accuracy_drg.py --real-tissue --widefield --pixel-size 0.9 --shape 512
    python benchmarks/accuracy_drg.py --real-tissue --widefield --pixel-size 0.9 --shape 512 \
        --dim-fraction 0.5   # half the somata NF-poor
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from histo_fms.drg import calibrate, call_igg, measure_drg
from histo_fms.synthetic.drg import REAL_TISSUE, WIDEFIELD, evaluate_drg, make_drg_section


def measure(ph, use_sgc=True):
    return measure_drg(
        ph.channel("NeuN"), ph.channel("IgG"), pixel_size_um=ph.pixel_size_um,
        sgc=ph.channel("GS") if use_sgc else None,
        nuclei=ph.channel("DAPI") if use_sgc else None,
    ).table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=12, help="number of test sections")
    ap.add_argument("--controls", type=int, default=6, help="number of control sections")
    ap.add_argument("--shape", type=int, default=768, help="section side in pixels")
    ap.add_argument("--pixel-size", type=float, default=0.5, help="µm per pixel")
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--no-sgc", action="store_true", help="neuron + IgG channels only")
    ap.add_argument("--real-tissue", action="store_true",
                    help="phantoms with synthetic.drg.REAL_TISSUE (axons, root, slide, nuclei)")
    ap.add_argument("--widefield", action="store_true",
                    help="phantoms with synthetic.drg.WIDEFIELD (haze, broad PSF, thin sheaths)")
    ap.add_argument("--dim-fraction", type=float, default=None,
                    help="fraction of NF-poor somata (3-5x weaker; phantom default 0.15; "
                         "with NF200 about half of rat DRG neurons are faint)")
    ap.add_argument("--calibration", choices=["robust", "percentile"], default="robust")
    args = ap.parse_args(argv)
    extra = {**(REAL_TISSUE if args.real_tissue else {}),
             **(WIDEFIELD if args.widefield else {})}
    if args.dim_fraction is not None:
        extra["dim_fraction"] = args.dim_fraction
    shape = (args.shape, args.shape)
    use_sgc = not args.no_sgc

    t0 = time.perf_counter()
    ctrl, secs = [], []
    for s in range(args.first_seed + 500, args.first_seed + 500 + args.controls):
        t = measure(make_drg_section(shape, args.pixel_size, seed=s, control=True, **extra),
                    use_sgc)
        ctrl.append(t.loc[~t["touches_border"], "ring_igg"].to_numpy())
        secs.append(np.full(ctrl[-1].size, s))
    ctrl = np.concatenate(ctrl)
    thr = calibrate(ctrl, sections=np.concatenate(secs), method=args.calibration,
                    n_bootstrap=0).threshold

    rows = []
    for s in range(args.first_seed, args.first_seed + args.seeds):
        ph = make_drg_section(shape, args.pixel_size, seed=s, **extra)
        tic = time.perf_counter()
        table = call_igg(measure(ph, use_sgc), thr)
        dt = time.perf_counter() - tic
        e = evaluate_drg(ph, table)
        rows.append((s, e, dt))
    total = time.perf_counter() - t0

    print(f"## DRG accuracy: {args.seeds} sections {shape[0]}x{shape[1]} px at "
          f"{args.pixel_size} µm/px, channels: {'NeuN+GS+IgG+DAPI' if use_sgc else 'NeuN+IgG'}")
    print()
    rule = ("robust, 1 % false-positive rate" if args.calibration == "robust"
            else "99th percentile")
    print(f"Threshold ({rule}; {ctrl.size} control rings, {args.controls} control "
          f"sections): **{thr:.3f}**")
    print()
    print("| seed | true neurons | TP | FP | FN | precision | recall | F1 | AUC | "
          "% pos true | % pos measured | Δ% | s/section |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s, e, dt in rows:
        d = e["pct_measured"] - e["pct_true"]
        print(f"| {s} | {e['tp'] + e['fn']} | {e['tp']} | {e['fp']} | {e['fn']} | "
              f"{e['precision']:.3f} | {e['recall']:.3f} | {e['f1']:.3f} | {e['auc']:.3f} | "
              f"{e['pct_true']:.1f} | {e['pct_measured']:.1f} | {d:+.1f} | {dt:.2f} |")
    tp = sum(e["tp"] for _, e, _ in rows)
    fp = sum(e["fp"] for _, e, _ in rows)
    fn = sum(e["fn"] for _, e, _ in rows)
    deltas = np.array([e["pct_measured"] - e["pct_true"] for _, e, _ in rows])
    aucs = np.array([e["auc"] for _, e, _ in rows])
    print()
    print("| figure | value | target |")
    print("|---|---|---|")
    print(f"| precision (pooled) | {tp / (tp + fp):.3f} | |")
    print(f"| recall (pooled) | {tp / (tp + fn):.3f} | |")
    print(f"| F1 (pooled) | {2 * tp / (2 * tp + fp + fn):.3f} | >= 0.90 |")
    print(f"| F1 (worst section) | {min(e['f1'] for _, e, _ in rows):.3f} | |")
    print(f"| ring-IgG AUC (mean / worst) | {aucs.mean():.3f} / {aucs.min():.3f} | >= 0.97 |")
    print(f"| mean abs Δ% positive | {np.abs(deltas).mean():.2f} | |")
    print(f"| max abs Δ% positive | {np.abs(deltas).max():.2f} | <= 5 |")
    print(f"| mean Δ% positive (bias) | {deltas.mean():+.2f} | |")
    print(f"| wall time | {total:.1f} s | |")


if __name__ == "__main__":
    main()
