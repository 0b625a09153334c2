"""Pixel classifier trained on one validation section, scored on the others.

Makes sparse scribble annotations (:func:`annotations_from_labels`: strokes across
a fraction of the neurons, sheath arcs just outside them, background strokes) from one
section's true labels in ``../shared/validation/drg``, trains a model with
``histo-fms train-pixels``, runs the DRG pipeline with ``segmentation_backend:
pixel_classifier`` on every section, and scores it twice: the validation set's
centroid detection metrics (``benchmarks/validation_drg.py``) and instance F1 at
IoU >= 0.5 (``histo-fms validate`` against the ``.labels.tif`` files).

    python benchmarks/pixel_classifier_drg.py                  # train on the first
    python benchmarks/pixel_classifier_drg.py --train val_drg_3003 --fraction 0.1
    python benchmarks/pixel_classifier_drg.py --outlines   # train from the label image
    python benchmarks/pixel_classifier_drg.py --dense      # its mask as 1/2 classes

``--outlines`` trains from the training section's label image itself
(``train-pixels --outlines``: every neuron outlined, as a reference mask gives them);
``--dense`` from its mask written as a class annotation (2 every neuron pixel, 1 every
other pixel, touching neurons merged; ``train-pixels --annotations``).

The data are read from a local folder and never committed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import validation_drg as vd  # noqa: E402

from histo_fms.segment._pixel_annotations import annotations_from_outlines  # noqa: E402
from histo_fms.segment._pixel_classifier import annotations_from_labels  # noqa: E402

CHANNELS = ["--channel", "neuron=NeuN", "--channel", "sgc=GS", "--channel", "nuclei=DAPI"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "histo_fms.cli", *args], check=False,
                          capture_output=True, text=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=vd.DEFAULT_DATA)
    ap.add_argument("--train", help="stem of the training section (default: the first)")
    ap.add_argument("--fraction", type=float, default=0.3,
                    help="fraction of the training section's neurons scribbled")
    ap.add_argument("--no-sheath", action="store_true", help="no sheath (class 3) scribbles")
    ap.add_argument("--outlines", action="store_true",
                    help="train from the training section's label image (train-pixels "
                    "--outlines) instead of scribbles")
    ap.add_argument("--dense", action="store_true",
                    help="train from the training section's mask as a dense 1/2 class "
                    "annotation (train-pixels --annotations)")
    ap.add_argument("--out", type=Path, help="keep the work folder here")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no validation data at {args.data}", file=sys.stderr)
        return 2
    images = sorted(args.data.glob("*.ome.tif"))
    stems = [p.name[: -len(".ome.tif")] for p in images]
    train = args.train or stems[0]
    tmp = None
    work = args.out
    if work is None:
        tmp = tempfile.TemporaryDirectory()
        work = Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)

    import json

    truth = json.loads((args.data / f"{train}.truth.json").read_text())
    labels = tifffile.imread(args.data / f"{train}.labels.tif")
    ann = annotations_from_labels(labels, pixel_size_um=truth["px_um"],
                                  fraction=args.fraction, sheath=not args.no_sheath, seed=0)
    tifffile.imwrite(work / f"{train}_annot.tif", ann)
    n_scribbled = len({int(v) for v in labels[ann == 2]})
    annot_args = [str(work / f"{train}_annot.tif")]
    if args.outlines:
        ann = annotations_from_outlines(labels, pixel_size_um=truth["px_um"])
        n_scribbled = int(labels.max())
        annot_args = [str(args.data / f"{train}.labels.tif"), "--outlines"]
    elif args.dense:
        ann = np.where(labels > 0, 2, 1).astype(np.uint8)
        tifffile.imwrite(work / f"{train}_dense.tif", ann)
        n_scribbled = int(labels.max())
        annot_args = [str(work / f"{train}_dense.tif")]
    t0 = time.perf_counter()
    r = _cli("train-pixels", str(args.data / f"{train}.ome.tif"), "--annotations",
             *annot_args, "--out", str(work / "model.npz"), *CHANNELS)
    t_train = time.perf_counter() - t0
    print(r.stdout.strip(), r.stderr.strip(), sep="\n")
    if r.returncode:
        return r.returncode
    cfg_text = (ROOT / "pipelines" / "drg_sgc_igg.yaml").read_text()
    cfg_text = re.sub(r"segmentation_backend: classical",
                      "segmentation_backend: pixel_classifier\n  segmentation_options: "
                      f"{{model: {work / 'model.npz'}}}", cfg_text)
    cfg = work / "pixel_classifier.yaml"
    cfg.write_text(cfg_text)
    out = work / "out"
    t0 = time.perf_counter()
    vd.run_pipeline(args.data, out, cfg, ["--scheduler", "synchronous", "-q"], False)
    t_run = time.perf_counter() - t0
    print(f"\ntrained on {train} ({n_scribbled} of {labels.max()} neurons scribbled, "
          f"{int((ann > 0).sum())} annotated pixels = {100 * (ann > 0).mean():.2f} %) in "
          f"{t_train:.0f} s; pipeline on {len(images)} sections in {t_run:.0f} s\n")
    print("centroid detection (validation set's metric; the training section included):")
    vd.main(["--data", str(args.data), "--results", str(out)])
    r = _cli("validate", str(out), "--reference", str(args.data), "--out",
             str(work / "validation.csv"))
    print("\ninstance matching at IoU >= 0.5 (histo-fms validate):")
    print(r.stdout.strip())
    t = pd.read_csv(work / "validation.csv")
    test = t[(t["image"] != train) & (t["image"] != "ALL")]
    m, nr, npred = test["n_matched"].sum(), test["n_reference"].sum(), test["n_predicted"].sum()
    print(f"\nheld-out sections ({len(test)}): instance F1 (IoU >= 0.5) "
          f"{2 * m / (nr + npred):.3f} pooled, {test['f1'].min():.3f} worst; precision "
          f"{m / npred:.3f}, recall {m / nr:.3f}; median IoU {test['median_iou'].median():.3f}")
    det = []
    for stem in stems:
        if stem == train:
            continue
        f = out / stem / "neurons.csv"
        table = pd.read_csv(f) if f.exists() else pd.DataFrame(columns=["y_um", "x_um"])
        det.append(vd.score_section(json.loads((args.data / f"{stem}.truth.json").read_text()),
                                    table))
    tp, fp, fn = (sum(d[k] for d in det) for k in ("tp", "fp", "fn"))
    print(f"held-out sections: centroid detection F1 {2 * tp / max(2 * tp + fp + fn, 1):.3f} "
          f"pooled, {min(d['f1'] for d in det):.3f} worst")
    return 0


if __name__ == "__main__":
    sys.exit(main())
