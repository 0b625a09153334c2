"""Score the default neuron segmentation on planes of a real rat DRG confocal stack.

The stack (AmSchulte/DRGrat, ``confocal example images/oib_file.zarr``: zarr v3,
3 x 24 x 1024 x 1024 uint16, channels NF, Fabp7, Iba1; 60x objective) has no licence,
so it is never committed: it is read from a local folder. The annotations are our own
(``benchmarks/annotations/confocal_drg_neurons.csv``: one row per neuron soma seen by
eye on a plane, centroid and approximate diameter in pixels; somata we could not call
with confidence were left out). The stack stores no pixel size; 0.207 µm/px (60x
Olympus at 1024 px, zoom 1) puts the annotated somata at 15-55 µm, as expected for rat
DRG, and is the default.

Each annotated plane is segmented with the default classical backend (neuron = NF,
sgc = Fabp7; ``--no-sgc`` leaves the SGC channel out) and detections are matched one-to-
one to annotations by centroid within half the annotated radius (at least 5 µm) ->
precision, recall, F1 per plane and pooled.

    python benchmarks/real_drg.py [STACK.zarr] [--pixel-size 0.207] [--png OUTDIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from histo_fms.drg import DrgParams  # noqa: E402
from histo_fms.segment import segment_neurons  # noqa: E402

DEFAULT_STACK = Path("/work/realdata/confocal example images/oib_file.zarr")
ANNOTATIONS = ROOT / "benchmarks" / "annotations" / "confocal_drg_neurons.csv"
NF, FABP7 = 0, 1


def detections(labels: np.ndarray, px: float) -> pd.DataFrame:
    """Centroid (px) and equivalent diameter (µm) of each label."""
    flat = labels.ravel()
    n = int(flat.max())
    cnt = np.bincount(flat, minlength=n + 1).astype(float)
    yy, xx = np.divmod(np.arange(flat.size), labels.shape[1])
    ys = np.bincount(flat, weights=yy, minlength=n + 1)
    xs = np.bincount(flat, weights=xx, minlength=n + 1)
    ids = np.flatnonzero(cnt[1:]) + 1
    return pd.DataFrame({"y_px": ys[ids] / cnt[ids], "x_px": xs[ids] / cnt[ids],
                         "diameter_um": np.sqrt(4 * cnt[ids] / np.pi) * px})


def score(ann: pd.DataFrame, det: pd.DataFrame, px: float) -> dict:
    """One-to-one centroid matching within half the annotated radius (>= 5 µm)."""
    tp = 0
    if len(ann) and len(det):
        d = np.hypot(ann["y_px"].to_numpy()[:, None] - det["y_px"].to_numpy()[None],
                     ann["x_px"].to_numpy()[:, None] - det["x_px"].to_numpy()[None]) * px
        tol = np.maximum(0.25 * ann["diameter_px"].to_numpy() * px, 5.0)[:, None]
        cost = np.where(d <= tol, d, 1e6)
        r, c = linear_sum_assignment(cost)
        tp = int(np.sum(d[r, c] <= tol[r, 0]))
    fp, fn = len(det) - tp, len(ann) - tp
    return {"n_annotated": len(ann), "n_detected": len(det), "tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stack", nargs="?", type=Path, default=DEFAULT_STACK)
    ap.add_argument("--pixel-size", type=float, default=0.207, help="µm per pixel")
    ap.add_argument("--annotations", type=Path, default=ANNOTATIONS)
    ap.add_argument("--no-sgc", action="store_true", help="segment without the Fabp7 channel")
    ap.add_argument("--png", type=Path, help="write overlays (annotations, outlines) here")
    args = ap.parse_args(argv)
    if not args.stack.exists():
        print(f"no stack at {args.stack} (pass its path)", file=sys.stderr)
        return 2
    import zarr

    stack = zarr.open_array(str(args.stack), mode="r")
    ann = pd.read_csv(args.annotations)
    p = DrgParams()
    px = float(args.pixel_size)
    rows = []
    for plane, a in ann.groupby("plane", sort=True):
        nf = np.asarray(stack[NF, int(plane)])
        chans = {} if args.no_sgc else {"sgc": np.asarray(stack[FABP7, int(plane)])}
        labels = segment_neurons(nf, pixel_size_um=px, channels=chans,
                                 min_diameter_um=p.min_diameter_um,
                                 max_diameter_um=p.max_diameter_um)
        det = detections(labels, px)
        rows.append({"plane": int(plane), **score(a, det, px)})
        if args.png:
            _overlay(args.png / f"plane_{int(plane):02d}.png", nf, chans.get("sgc"), labels, a)
    df = pd.DataFrame(rows)
    tp, fp, fn = (int(df[k].sum()) for k in ("tp", "fp", "fn"))
    pooled = {"plane": "pooled", "n_annotated": int(df["n_annotated"].sum()),
              "n_detected": int(df["n_detected"].sum()), "tp": tp, "fp": fp, "fn": fn,
              "precision": tp / (tp + fp) if tp + fp else float("nan"),
              "recall": tp / (tp + fn) if tp + fn else float("nan"),
              "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")}
    df = pd.concat([df, pd.DataFrame([pooled])], ignore_index=True)
    print(f"pixel size {px} µm (assumed); SGC channel {'off' if args.no_sgc else 'Fabp7'}")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def _overlay(path: Path, nf, sgc, labels, ann) -> None:
    from PIL import Image, ImageDraw
    from skimage.segmentation import find_boundaries

    def norm(x):
        lo, hi = np.percentile(x, [0.5, 99.7])
        return (np.clip((x - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8)

    g = norm(nf)
    rgb = np.stack([g // 2, g, norm(sgc) if sgc is not None else g // 2], -1)
    rgb[find_boundaries(labels)] = (255, 0, 0)
    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    for r in ann.itertuples():
        rad = r.diameter_px / 2
        draw.ellipse([r.x_px - rad, r.y_px - rad, r.x_px + rad, r.y_px + rad],
                     outline=(255, 255, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


if __name__ == "__main__":
    raise SystemExit(main())
