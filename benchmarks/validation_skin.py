"""Score the skin pipeline on the independent validation phantoms (``../shared/validation``).

Runs ``histo-fms run`` once, as one batch, on every section of the folder with a pipeline
config (default ``pipelines/skin_ienfd.yaml``, only channel names given: ``PGP9.5``,
``DAPI`` and ``ColIV`` where a file has it), then scores the output against each section's
``truth.json`` with the validation set's metrics: crossings matched one-to-one within
10 µm -> precision, recall (pooled); count ICC(A,1) and mean absolute count error per
section against ``n_crossings``.

    python benchmarks/validation_skin.py                  # run + score
    python benchmarks/validation_skin.py --results OUT    # score an existing run
    python benchmarks/validation_skin.py --data DIR       # another phantom folder

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = next((a / "shared" / "validation" / "skin" for a in ROOT.parents
                     if (a / "shared" / "validation" / "skin").is_dir()),
                    ROOT.parent / "shared" / "validation" / "skin")

from histo_fms.stats._agreement import icc_a1  # noqa: E402


def markdown(df: pd.DataFrame) -> str:
    """A markdown table (no tabulate dependency)."""
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


def match(truth: np.ndarray, det: np.ndarray, tol_um: float) -> list[tuple[int, int]]:
    """One-to-one matching of (y, x) points within ``tol_um`` (minimum total distance)."""
    if not len(truth) or not len(det):
        return []
    d = np.hypot(truth[:, None, 0] - det[None, :, 0], truth[:, None, 1] - det[None, :, 1])
    cost = np.where(d <= tol_um, d, 1e6)
    r, c = linear_sum_assignment(cost)
    return [(i, j) for i, j in zip(r, c, strict=True) if d[i, j] <= tol_um]


def score_section(truth: dict, crossings: pd.DataFrame, tol_um: float = 10.0) -> dict:
    """Crossing detection figures of one section."""
    t = np.array([[c["y_um"], c["x_um"]] for c in truth["crossings"]], float).reshape(-1, 2)
    d = crossings[["y_um", "x_um"]].to_numpy(float).reshape(-1, 2)
    tp = len(match(t, d, tol_um))
    return {"n_true": int(truth["n_crossings"]), "n_detected": len(d), "tp": tp,
            "fp": len(d) - tp, "fn": len(t) - tp}


def run_pipeline(data: Path, out: Path, config: Path, extra: list[str]) -> float:
    """Run ``histo-fms run`` on every validation image as one batch; return seconds."""
    images = sorted(data.glob("*.ome.tif"))
    cmd = [sys.executable, "-m", "histo_fms.cli", "run", str(config), *map(str, images),
           "--out", str(out), "--no-resume", "--channel", "fibre=PGP9.5",
           "--channel", "nuclei=DAPI", "--channel", "membrane=ColIV", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=False)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--config", type=Path, default=ROOT / "pipelines" / "skin_ienfd.yaml")
    ap.add_argument("--results", type=Path, help="score this results folder (no run)")
    ap.add_argument("--tolerance-um", type=float, default=10.0)
    ap.add_argument("extra", nargs="*", help="extra arguments for histo-fms run (after --)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no validation data at {args.data}", file=sys.stderr)
        return 2
    tmp = None
    out = args.results
    wall = float("nan")
    if out is None:
        tmp = tempfile.TemporaryDirectory()
        out = Path(tmp.name) / "out"
        wall = run_pipeline(args.data, out, args.config, args.extra)
    summ_path = out / "skin_summary.csv"
    summary = pd.read_csv(summ_path) if summ_path.exists() else pd.DataFrame(columns=["image"])
    rows = []
    for truth_path in sorted(args.data.glob("*.truth.json")):
        stem = truth_path.name[: -len(".truth.json")]
        truth = json.loads(truth_path.read_text())
        f = out / stem / "crossings.csv"
        cr = pd.read_csv(f) if f.exists() else pd.DataFrame(columns=["y_um", "x_um"])
        s = {"image": stem, "colIV": "ColIV" in truth.get("channels", []),
             "px_um": float(truth.get("px_um", np.nan)), "ran": f.exists(),
             **score_section(truth, cr, args.tolerance_um)}
        srow = summary[summary["image"] == f"{stem}.ome.tif"]
        for col in ("dej_source", "dej_to_surface_ratio", "qc_flag"):
            if col in srow and len(srow):  # a failed section has no summary row
                s[col] = srow[col].iloc[0]
        s["dej_len_true_mm"] = float(truth.get("dej_length_mm", np.nan))
        s["dej_len_mm"] = float(srow["dej_length_mm"].iloc[0]) if len(srow) else np.nan
        rows.append(s)
    df = pd.DataFrame(rows)
    print(markdown(df))
    tp, fp, fn = df["tp"].sum(), df["fp"].sum(), df["fn"].sum()
    counts = df[["n_true", "n_detected"]].to_numpy(float)
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| sections (ran / all) | {int(df['ran'].sum())} / {len(df)} |")
    print(f"| count ICC(A,1) | {icc_a1(counts):.3f} |")
    print(f"| mean abs count error / section | "
          f"{np.mean(np.abs(counts[:, 1] - counts[:, 0])):.2f} |")
    print(f"| crossing precision / recall (pooled, {args.tolerance_um:g} µm) | "
          f"{tp / max(tp + fp, 1):.3f} / {tp / max(tp + fn, 1):.3f} |")
    print(f"| wall time (one batch) | {wall:.0f} s |")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
