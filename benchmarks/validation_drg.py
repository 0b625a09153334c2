"""Score the DRG pipeline on the independent validation phantoms (``../shared/validation``).

Runs ``histo-fms run`` on the folder with a pipeline config (default
``pipelines/drg_sgc_igg.yaml``, only channel names given) and the folder's sample sheet,
then scores the output against each section's ``truth.json`` with the validation set's
metrics: neurons matched one-to-one by centroid within half the median true radius ->
precision, recall, F1; on matched neurons AUC of ``ring_igg`` for ``igg_positive`` and
Spearman of ``ring_igg`` against ``ring_igg_true``; per section |% IgG-positive called -
true %| with the threshold calibrated on the sheet's control sections.

    python benchmarks/validation_drg.py                       # run + score
    python benchmarks/validation_drg.py --results OUT         # score an existing run
    python benchmarks/validation_drg.py --truth-labels        # measure on the true labels

The data are read from a local folder and never committed.
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
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "validation" / "drg"


def markdown(df: pd.DataFrame) -> str:
    """A markdown table (no tabulate dependency)."""
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half)."""
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if not pos.size or not neg.size:
        return float("nan")
    allv = np.concatenate([pos, neg])
    ranks = pd.Series(allv).rank().to_numpy()
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2)
                 / (pos.size * neg.size))


def match(truth: pd.DataFrame, det: pd.DataFrame, tol_um: float) -> list[tuple[int, int]]:
    """One-to-one centroid matching within ``tol_um`` (minimum total distance)."""
    if not len(truth) or not len(det):
        return []
    d = np.hypot(truth["cy_um"].to_numpy()[:, None] - det["y_um"].to_numpy()[None],
                 truth["cx_um"].to_numpy()[:, None] - det["x_um"].to_numpy()[None])
    cost = np.where(d <= tol_um, d, 1e6)
    r, c = linear_sum_assignment(cost)
    return [(i, j) for i, j in zip(r, c, strict=True) if d[i, j] <= tol_um]


def score_section(truth: dict, table: pd.DataFrame) -> dict:
    """Detection and ring figures of one section."""
    t = pd.DataFrame(truth["neurons"])
    tol = 0.5 * float(np.median(t["diameter_um"])) / 2 if len(t) else 0.0
    pairs = match(t, table, tol)
    tp = len(pairs)
    fp, fn = len(table) - tp, len(t) - tp
    out = {"n_true": len(t), "n_detected": len(table), "tp": tp, "fp": fp, "fn": fn,
           "precision": tp / (tp + fp) if tp + fp else float("nan"),
           "recall": tp / (tp + fn) if tp + fn else float("nan"),
           "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")}
    if pairs:
        ti, di = (np.array(a) for a in zip(*pairs, strict=True))
        tt, dd = t.iloc[ti].reset_index(drop=True), table.iloc[di].reset_index(drop=True)
        inner = ~tt["touches_border"].to_numpy(bool)
        r = dd["ring_igg"].to_numpy(float)[inner]
        y = tt["igg_positive"].to_numpy(bool)[inner]
        rt = tt["ring_igg_true"].to_numpy(float)[inner]
        out["auc"] = auc(r[y], r[~y])
        ok = np.isfinite(r)
        out["spearman"] = float(spearmanr(r[ok], rt[ok]).statistic) if ok.sum() > 2 else np.nan
        out["diameter_bias_um"] = float(np.mean(dd["diameter_um"].to_numpy()[inner]
                                                - tt["diameter_um"].to_numpy()[inner]))
    t_in = t[~t["touches_border"].astype(bool)]
    out["pct_true"] = 100.0 * float(t_in["igg_positive"].mean()) if len(t_in) else np.nan
    return out


def run_pipeline(data: Path, out: Path, config: Path, extra: list[str],
                 truth_labels: bool) -> None:
    """Run ``histo-fms run`` on the validation images."""
    images = sorted(data.glob("*.ome.tif"))
    cmd = [sys.executable, "-m", "histo_fms.cli", "run", str(config), *map(str, images),
           "--samples", str(data / "samples.csv"), "--out", str(out), "--no-resume",
           "--channel", "igg=hIgG", *extra]
    if truth_labels:
        raise SystemExit("--truth-labels is scored in-process; see measure_on_truth")
    subprocess.run(cmd, check=False)


def measure_on_truth(data: Path, out: Path) -> None:
    """Measure rings on the true neuron labels (isolates ring IgG from segmentation)."""
    import tifffile

    from histo_fms.drg import calibrate, call_igg, measure_drg, percent_interval
    rows, tables = [], {}
    sheet = pd.read_csv(data / "samples.csv")
    for img_path in sorted(data.glob("*.ome.tif")):
        stem = img_path.name[: -len(".ome.tif")]
        truth = json.loads((data / f"{stem}.truth.json").read_text())
        img = tifffile.imread(img_path)
        ch = {n: img[i] for i, n in enumerate(truth["channels"])}
        labels = tifffile.imread(data / f"{stem}.labels.tif")
        res = measure_drg(ch["NeuN"], ch["hIgG"], pixel_size_um=truth["px_um"],
                          sgc=ch["GS"], nuclei=ch["DAPI"], labels=labels)
        tables[stem] = res.table
    ctrl = [Path(i).name[: -len(".ome.tif")] for i, c in
            zip(sheet["image"], sheet["control"], strict=True) if str(c).lower() == "true"]
    vals = [tables[s].loc[~tables[s]["touches_border"], "ring_igg"].to_numpy() for s in ctrl]
    cal = calibrate(np.concatenate(vals),
                    sections=np.concatenate([[s] * v.size for s, v in zip(ctrl, vals,
                                                                           strict=True)]))
    thr = cal.threshold
    print(f"threshold {thr:.3f} (robust; {cal.n_rings} rings, {cal.n_sections} sections, "
          f"bound fraction {cal.bound_fraction:.3f}, estimated FPR {cal.estimated_fpr:.3f})")
    for stem, tab in tables.items():
        d = out / stem
        d.mkdir(parents=True, exist_ok=True)
        called = call_igg(tab, thr)
        called.to_csv(d / "neurons.csv", index=False)
        inner = called[~called["touches_border"]]
        lo, hi = percent_interval(inner["ring_igg"].to_numpy(float), thr, cal.bootstrap)
        rows.append({"image": f"{stem}.ome.tif",
                     "pct_igg_positive": 100 * inner["igg_positive"].mean(),
                     "pct_ci_low": lo, "pct_ci_high": hi})
    pd.DataFrame(rows).to_csv(out / "drg_summary.csv", index=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--config", type=Path, default=ROOT / "pipelines" / "drg_sgc_igg.yaml")
    ap.add_argument("--results", type=Path, help="score this results folder (no run)")
    ap.add_argument("--truth-labels", action="store_true",
                    help="measure rings on the true labels (ring IgG without segmentation)")
    ap.add_argument("extra", nargs="*", help="extra arguments for histo-fms run (after --)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no validation data at {args.data}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    tmp = None
    out = args.results
    if out is None:
        tmp = tempfile.TemporaryDirectory()
        out = Path(tmp.name) / "out"
        if args.truth_labels:
            measure_on_truth(args.data, out)
        else:
            run_pipeline(args.data, out, args.config, args.extra, False)
    wall = time.perf_counter() - t0
    summary = pd.read_csv(out / "drg_summary.csv")
    sheet = pd.read_csv(args.data / "samples.csv")
    controls = {str(i) for i, c in zip(sheet["image"], sheet["control"], strict=True)
                if str(c).lower() == "true"}
    rows = []
    for truth_path in sorted(args.data.glob("*.truth.json")):
        stem = truth_path.name[: -len(".truth.json")]
        truth = json.loads(truth_path.read_text())
        f = out / stem / "neurons.csv"
        table = pd.read_csv(f) if f.exists() else pd.DataFrame(
            columns=["y_um", "x_um", "ring_igg", "diameter_um"])
        s = score_section(truth, table)
        srow = summary[summary["image"] == f"{stem}.ome.tif"]
        s["pct_called"] = float(srow["pct_igg_positive"].iloc[0]) if len(srow) else np.nan
        for lo, hi in (("pct_ci_low", "pct_ci_high"),):
            if len(srow) and lo in srow:
                s[lo], s[hi] = float(srow[lo].iloc[0]), float(srow[hi].iloc[0])
        s["image"] = stem
        s["control"] = f"{stem}.ome.tif" in controls
        rows.append(s)
    df = pd.DataFrame(rows)
    cols = ["image", "control", "n_true", "n_detected", "precision", "recall", "f1", "auc",
            "spearman", "diameter_bias_um", "pct_true", "pct_called"]
    cols += [c for c in ("pct_ci_low", "pct_ci_high") if c in df]
    print(markdown(df[[c for c in cols if c in df]]))
    tp, fp, fn = df["tp"].sum(), df["fp"].sum(), df["fn"].sum()
    test = df[~df["control"]]
    err = (test["pct_called"] - test["pct_true"]).abs()
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| detection precision / recall (pooled) | {tp / max(tp + fp, 1):.3f} / "
          f"{tp / max(tp + fn, 1):.3f} |")
    print(f"| detection F1 (pooled / worst section) | {2 * tp / max(2 * tp + fp + fn, 1):.3f}"
          f" / {df['f1'].min():.3f} |")
    if "auc" in df:
        print(f"| ring-IgG AUC (mean / worst) | {df['auc'].mean():.3f} / {df['auc'].min():.3f} |")
        print(f"| Spearman ring_igg vs true (mean / worst) | {df['spearman'].mean():.3f} / "
              f"{df['spearman'].min():.3f} |")
    print(f"| % IgG+ abs error, test sections (mean / max) | {err.mean():.2f} / "
          f"{err.max():.2f} |")
    if "pct_ci_low" in test:
        cov = ((test["pct_ci_low"] <= test["pct_true"])
               & (test["pct_true"] <= test["pct_ci_high"])).sum()
        print(f"| 95 % interval covers true % | {cov} of {len(test)} |")
    print(f"| wall time | {wall:.1f} s |")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
