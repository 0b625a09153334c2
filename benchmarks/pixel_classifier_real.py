"""Pixel classifier on real-like DRG data: trained on one image, scored on others.

Three test beds, each trained with the file layer of ``histo-fms train-pixels``
(:func:`histo_fms.pixel_training.train_pixels`, on OME-TIFFs written to a temporary
folder) and applied as a run applies it (``segmentation_backend: pixel_classifier``,
normalised by the section's levels):

``confocal``
    The two annotated planes of the real rat DRG confocal stack (``benchmarks/real_drg.py``
    explains the stack, never committed, and our annotations). Scribbles are made by rule
    and by hand: a neuron stroke (class 2) across **every** annotated soma of the training
    plane (through its centre, nucleus included, to 0.8 of its radius either side, in a
    random direction; as the README asks users to paint); background (1) and SGC-sheath
    (3) strokes drawn by us on the image
    (``benchmarks/annotations/confocal_drg_strokes.csv``: polylines in stack pixels, dark
    interstitium and the Fabp7 rim of a few somata). Train on one plane, score on
    the other, both ways. The reference is each annotated soma's polygon outline
    (``benchmarks/annotations/confocal_drg_neurons_outlined.csv``: the somata of
    ``confocal_drg_neurons.csv``, outlined by eye on renders of the NF and Fabp7
    channels with a 50 px grid on branch ``pixc5``, 6-15 vertices each, centroid
    and diameter those of the polygon; ``--discs``: the earlier reference, a disc of
    each soma's annotated diameter). Some somata on the planes were not annotated
    (they count as false positives), so the F1 is a lower bound. A third,
    held-out plane is added when ``--heldout`` (default
    ``benchmarks/annotations/confocal_drg_neurons_heldout.csv``) exists: its somata carry
    an ``outline`` polygon (``x y;x y;...``, stack pixels), which is then the reference;
    its scores are pooled apart; so are those of a blind plane (``--blind``, e.g.
    ``confocal_drg_neurons_blind.csv``: plane 7, outlined before any segmentation was run
    on it). They have no background strokes, so they are training planes only with
    ``--real-annotations outlines`` or ``dense``: each training plane's annotated somata
    (polygons, else discs) are then the outlines of ``train-pixels --outlines``
    (:func:`annotations_from_outlines`), or a dense class annotation
    (:func:`dense_annotation`), instead of the scribbles.
``widefield``
    The same, on the widefield proxy of each plane (``real_drg.py --widefield``: 12 µm
    section, defocus haze, 0.9 µm/px, shot noise).
``phantom``
    ``make_drg_section(**REAL_TISSUE, **WIDEFIELD)`` at 0.9 µm/px (axon puncta and
    fibre bundles, nerve root, slide with debris, thin sheaths, haze): scribbles from
    the true labels of one seed (:func:`annotations_from_labels`, 30 % of the neurons;
    ``--phantom-annotations outlines``: every neuron's outline, as ``train-pixels
    --outlines`` reads a reference mask), scored against the true labels of other seeds.

Scores: instance precision / recall / F1 at IoU >= 0.5 (:func:`histo_fms.validation.score_image`),
the same without the objects that touch the image border (predicted and reference: on
the small annotated fields many border-cut somata were not annotated), and, for the
annotated planes, centroid detection F1 (``real_drg.score``).

    python benchmarks/pixel_classifier_real.py                   # all three
    python benchmarks/pixel_classifier_real.py --only phantom --shape 1048 1928
    python benchmarks/pixel_classifier_real.py --split distance     # the earlier split
    python benchmarks/pixel_classifier_real.py --diagnose --png /tmp/pc   # errors by kind
    python benchmarks/pixel_classifier_real.py --only widefield --real-annotations outlines
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_drg as rd  # noqa: E402

from histo_fms.io import write_ome_tiff  # noqa: E402
from histo_fms.pixel_training import section_levels, train_pixels  # noqa: E402
from histo_fms.segment import segment_neurons  # noqa: E402
from histo_fms.segment._pixel_annotations import annotations_from_outlines  # noqa: E402
from histo_fms.segment._pixel_classifier import (  # noqa: E402
    NEURON,
    annotations_from_labels,
)
from histo_fms.synthetic.drg import REAL_TISSUE, WIDEFIELD, make_drg_section  # noqa: E402
from histo_fms.validation import score_image  # noqa: E402

STROKES = ROOT / "benchmarks" / "annotations" / "confocal_drg_strokes.csv"
HELDOUT = ROOT / "benchmarks" / "annotations" / "confocal_drg_neurons_heldout.csv"
BLIND = ROOT / "benchmarks" / "annotations" / "confocal_drg_neurons_blind.csv"
#: planes 3 and 12 with polygon outlines (the somata of ``real_drg.ANNOTATIONS``)
OUTLINED = ROOT / "benchmarks" / "annotations" / "confocal_drg_neurons_outlined.csv"
CONFOCAL_PX = 0.207


def draw_polyline(out: np.ndarray, pts: np.ndarray, width_px: float, value: int) -> None:
    """Paint a polyline (x, y points, pixels) of the given width into ``out``."""
    r = max(width_px / 2.0, 0.5)
    h, w = out.shape
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True):
        xa, xb = int(max(0, np.floor(min(x0, x1) - r))), int(min(w, np.ceil(max(x0, x1) + r) + 1))
        ya, yb = int(max(0, np.floor(min(y0, y1) - r))), int(min(h, np.ceil(max(y0, y1) + r) + 1))
        if xa >= xb or ya >= yb:
            continue
        yy, xx = np.mgrid[ya:yb, xa:xb].astype(float)
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        d = np.hypot(xx - (x0 + t * dx), yy - (y0 + t * dy))
        out[ya:yb, xa:xb][d <= r] = value


def confocal_scribbles(ann: pd.DataFrame, strokes: pd.DataFrame, shape, *, scale: float,
                       px: float, seed: int = 0) -> np.ndarray:
    """Annotation image of one plane: rule-made neuron arcs and the hand-drawn strokes.

    ``scale`` maps stack pixels to this image's pixels, ``px`` is its pixel size.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, np.uint8)
    for r in strokes.itertuples():
        pts = np.array([[float(v) for v in p.split()] for p in r.points.split(";")]) * scale
        draw_polyline(out, pts, r.width_um / px, int(r.cls))
    for r in ann.itertuples():
        rad = r.diameter_px / 2 * scale
        a0 = rng.uniform(0, np.pi)
        d = np.array([np.cos(a0), np.sin(a0)]) * 0.8 * rad
        c = np.array([r.x_px, r.y_px]) * scale
        draw_polyline(out, np.stack([c - d, c + d]), 1.5 / px, NEURON)
    return out


def disc_reference(ann: pd.DataFrame, shape, scale: float = 1.0) -> np.ndarray:
    """Label image of the annotated somata (larger ones painted first).

    Each soma is its ``outline`` polygon (``x y;x y;...`` in stack pixels, times
    ``scale``) where the annotation has one, else the disc of its diameter.
    """
    from skimage.draw import polygon

    lab = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for k, r in enumerate(ann.sort_values("diameter_px", ascending=False).itertuples(), 1):
        text = getattr(r, "outline", None)
        if isinstance(text, str) and text.strip():
            pts = np.array([[float(v) for v in q.split()] for q in text.split(";")]) * scale
            rr, cc = polygon(pts[:, 1], pts[:, 0], shape)
            lab[rr, cc] = k
        else:
            lab[(yy - r.y_px) ** 2 + (xx - r.x_px) ** 2 <= (r.diameter_px / 2) ** 2] = k
    return lab


def read_plane_annotations(heldout: Path | None, blind: Path | None = None, *,
                           discs: bool = False) -> pd.DataFrame:
    """Our soma annotations: the two tuning planes, and the held-out / blind planes.

    Planes 3 and 12 are read with their polygon outlines (:data:`OUTLINED`) unless
    ``discs`` (then as centroid + diameter, ``real_drg.ANNOTATIONS``). Column
    ``pool`` names each plane's pool (``tuning``, ``held-out``, ``blind``) and
    ``heldout`` is true off the tuning planes.
    """
    first = rd.ANNOTATIONS if discs or not OUTLINED.is_file() else OUTLINED
    parts = [pd.read_csv(first).assign(heldout=False, pool="tuning")]
    for path, pool in ((heldout, "held-out"), (blind, "blind")):
        if path is not None and path.is_file():
            parts.append(pd.read_csv(path).assign(heldout=True, pool=pool))
    ann = pd.concat(parts, ignore_index=True)
    if "outline" not in ann:
        ann["outline"] = None
    return ann


def dense_annotation(reference: np.ndarray) -> np.ndarray:
    """A dense class annotation of a reference mask, as a judge or a lab makes one.

    Every reference pixel is neuron (2), every other pixel background (1); touching
    neurons are one region (a binary mask), there is no SGC-sheath class (3).
    """
    return np.where(reference > 0, NEURON, 1).astype(np.uint8)


def _train(work: Path, chans: dict, names: dict, ann: np.ndarray, px: float, tag: str):
    img = np.stack([chans[r] for r in names])
    path = write_ome_tiff(img, work / f"{tag}.ome.tif", channel_names=list(names.values()),
                          pixel_size_um=px)
    import tifffile

    tifffile.imwrite(work / f"{tag}_annot.tif", ann)
    t0 = time.process_time()
    tm = train_pixels([path], [work / f"{tag}_annot.tif"], work / f"{tag}_model.npz",
                      channels=dict(names), random_state=_SEED[0], dense=_DENSE[0])
    return tm, time.process_time() - t0


#: forest seed and ``train_pixels(dense=...)`` of the current run (set by main)
_SEED, _DENSE = [0], [None]


def _segment(model, chans: dict, px: float, options: dict | None = None) -> np.ndarray:
    lev = section_levels(chans, px)
    others = {k: v for k, v in chans.items() if k != "neuron"}
    return segment_neurons(chans["neuron"], pixel_size_um=px, backend="pixel_classifier",
                           channels=others, model=model, levels=lev, **(options or {}))


def _row(bed: str, train: str, test: str, labels, ref, px, extra=None) -> dict:
    from skimage.segmentation import clear_border

    s = score_image(labels, ref, pixel_size_um=px).row
    # the same without the objects cut by the image border, on either side (on a
    # small field many are somata nobody annotated)
    si = score_image(clear_border(labels), clear_border(ref), pixel_size_um=px).row
    row = {"bed": bed, "train": train, "test": test, "n_ref": s["n_reference"],
           "n_pred": s["n_predicted"], "matched": s["n_matched"],
           "precision": s["precision"], "recall": s["recall"], "f1": s["f1"],
           "median_iou": s["median_iou"], "bias_um": s["diameter_bias_um"],
           "n_ref_in": si["n_reference"],
           "n_pred_in": si["n_predicted"], "matched_in": si["n_matched"],
           "f1_interior": si["f1"]}
    row.update(extra or {})
    return row


def error_kinds(labels: np.ndarray, ref: np.ndarray, neuron_px: np.ndarray) -> dict:
    """Where the errors come from: each reference object and each prediction, by kind.

    A reference object is ``ok`` (a prediction with IoU >= 0.5), ``split`` (two
    predictions each cover a fifth of it), ``low_iou`` (one does, with IoU < 0.5), or
    missed: ``miss_pixels`` when most of its pixels are not classified neuron
    (``neuron_px``: the forest's most probable class is neuron), else
    ``miss_instance`` (classified, but no instance made of it). A prediction is a
    ``merge`` when it covers 30 % of two reference objects, ``outside`` when less than
    30 % of it lies on any.
    """
    out = dict.fromkeys(["ok", "split", "low_iou", "miss_pixels", "miss_instance",
                         "merge", "outside"], 0)
    area_p = np.bincount(labels.ravel())
    area_r = np.bincount(ref.ravel())
    for k in range(1, area_r.size):
        m = ref == k
        if not m.any():
            continue
        ids, cnt = np.unique(labels[m], return_counts=True)
        iou = [c / (area_r[k] + area_p[i] - c) for i, c in zip(ids, cnt, strict=True) if i]
        big = [i for i, c in zip(ids, cnt, strict=True) if i and c > 0.2 * area_r[k]]
        kind = ("ok" if iou and max(iou) >= 0.5 else "split" if len(big) > 1
                else "low_iou" if big else "miss_pixels" if neuron_px[m].mean() < 0.5
                else "miss_instance")
        out[kind] += 1
    for i in range(1, area_p.size):
        m = labels == i
        if not m.any():
            continue
        ids, cnt = np.unique(ref[m], return_counts=True)
        if sum(1 for j, c in zip(ids, cnt, strict=True) if j and c > 0.3 * area_r[j]) >= 2:
            out["merge"] += 1
        if np.mean(ref[m] > 0) < 0.3:
            out["outside"] += 1
    return out


def _neuron_pixels(model_path, chans: dict, px: float) -> np.ndarray:
    from histo_fms.segment._pixel_classifier import load_pixel_classifier, predict_probabilities

    m = load_pixel_classifier(model_path)
    prob = predict_probabilities(m, chans, pixel_size_um=px, levels=section_levels(chans, px))
    return np.asarray(m.classes)[prob.argmax(-1)] == NEURON


def bed_planes(work: Path, args, widefield: bool) -> list[dict]:
    import zarr

    stack = zarr.open_array(str(args.stack), mode="r")
    ann_all = read_plane_annotations(args.heldout, args.blind, discs=args.discs)
    strokes = pd.read_csv(STROKES)
    rng = np.random.default_rng(0)
    planes = {}
    for plane, a in ann_all.groupby("plane", sort=True):
        if widefield:
            opts = dict(px=CONFOCAL_PX, out_px=0.9, z_step_um=1.0, section_um=12.0,
                        defocus=0.4, psf_um=0.6, photons=400.0, offset=100.0,
                        read_noise=3.0, rng=rng)
            chans = {"neuron": rd.widefield(stack, rd.NF, int(plane), **opts),
                     "sgc": rd.widefield(stack, rd.FABP7, int(plane), **opts)}
            px, scale = 0.9, CONFOCAL_PX / 0.9
        else:
            chans = {"neuron": np.asarray(stack[rd.NF, int(plane)]),
                     "sgc": np.asarray(stack[rd.FABP7, int(plane)])}
            px, scale = CONFOCAL_PX, 1.0
        a = a.assign(x_px=a["x_px"] * scale, y_px=a["y_px"] * scale,
                     diameter_px=a["diameter_px"] * scale)
        planes[int(plane)] = (chans, a, px, scale)
    bed = "widefield" if widefield else "confocal"
    rows = []
    outl = args.real_annotations == "outlines"
    for tr, (chans, a, px, scale) in planes.items():
        st = strokes[strokes["plane"] == tr]
        if outl:
            annot = annotations_from_outlines(disc_reference(a, chans["neuron"].shape, scale),
                                              pixel_size_um=px)
        elif args.real_annotations == "dense":
            annot = dense_annotation(disc_reference(a, chans["neuron"].shape, scale))
        elif not (st["cls"] == 1).any():
            print(f"{bed}: plane {tr} has no background strokes; not a training plane")
            continue
        else:
            annot = confocal_scribbles(a.assign(x_px=a["x_px"] / scale,
                                                y_px=a["y_px"] / scale,
                                                diameter_px=a["diameter_px"] / scale),
                                       st, chans["neuron"].shape, scale=scale, px=px)
        tm, t = _train(work, chans, {"neuron": "NF", "sgc": "Fabp7"}, annot, px,
                       f"{bed}_{tr}")
        if args.png:
            _annot_png(args.png / f"{bed}_scribbles_{tr}.png", chans, annot)
        print(f"{bed}: trained on plane {tr} ({args.real_annotations}) in {t:.1f} s CPU, OOB "
              f"{tm.oob_accuracy:.3f}, pixels {tm.pixel_counts}")
        for te, (c2, a2, px2, sc2) in planes.items():
            if te == tr:
                continue
            labels = _segment(tm.path, c2, px2, args.options)
            det = rd.detections(labels, px2)
            cs = rd.score(a2, det, px2)
            ref = disc_reference(a2, labels.shape, sc2)
            extra = {"centroid_f1": cs["f1"], "heldout": bool(a2["heldout"].any()),
                     "pool": str(a2["pool"].iloc[0]),
                     "ref_outlines": int(a2["outline"].notna().sum())}
            if args.diagnose:
                extra.update(error_kinds(labels, ref, _neuron_pixels(tm.path, c2, px2)))
            rows.append(_row(bed, f"plane {tr}", f"plane {te}", labels, ref, px2, extra))
            if args.png:
                # (the outline polygons are in stack pixels: scaled like the discs)
                rd._overlay(args.png / f"{bed}_train{tr}_test{te}.png", c2["neuron"],
                            c2["sgc"], labels, a2.assign(scale=sc2))
    return rows


def _annot_png(path: Path, chans: dict, annot: np.ndarray) -> None:
    from PIL import Image

    def norm(x):
        lo, hi = np.percentile(x, [0.5, 99.7])
        return (np.clip((x - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8)

    g = norm(chans["neuron"])
    rgb = np.stack([g // 2, g, norm(chans["sgc"])], -1)
    for c, col in ((1, (255, 255, 255)), (2, (255, 0, 255)), (3, (255, 128, 0))):
        rgb[annot == c] = col
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def bed_phantom(work: Path, args) -> list[dict]:
    px = 0.9
    names = {"neuron": "NeuN", "sgc": "GS"}

    def make(seed):
        ph = make_drg_section(tuple(args.shape), px, seed=seed, **REAL_TISSUE, **WIDEFIELD)
        return ph, {r: ph.channel(n) for r, n in names.items()}

    ph, chans = make(args.train_seed)
    if args.phantom_annotations == "outlines":
        annot = annotations_from_outlines(ph.labels, pixel_size_um=px)
    elif args.phantom_annotations == "dense":
        annot = dense_annotation(ph.labels)
    else:
        annot = annotations_from_labels(ph.labels, pixel_size_um=px, fraction=0.3, seed=0)
    tm, t = _train(work, chans, names, annot, px, f"phantom_{args.train_seed}")
    print(f"phantom: trained on seed {args.train_seed} {tuple(args.shape)} in {t:.1f} s CPU, "
          f"OOB {tm.oob_accuracy:.3f}, pixels {tm.pixel_counts}")
    rows = []
    for s in args.test_seeds:
        ph, chans = make(s)
        labels = _segment(tm.path, chans, px, args.options)
        extra = (error_kinds(labels, ph.labels, _neuron_pixels(tm.path, chans, px))
                 if args.diagnose else None)
        rows.append(_row("phantom", f"seed {args.train_seed}", f"seed {s}", labels, ph.labels,
                         px, extra))
        if args.png:
            rd._overlay(args.png / f"phantom_test{s}.png", chans["neuron"], chans["sgc"],
                        labels, pd.DataFrame(columns=["x_px", "y_px", "diameter_px"]))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", type=Path, default=rd.DEFAULT_STACK)
    ap.add_argument("--only", choices=["confocal", "widefield", "phantom"], action="append")
    ap.add_argument("--shape", type=int, nargs=2, default=[768, 768],
                    help="phantom shape (Y X); 1048 1928 as a real section")
    ap.add_argument("--train-seed", type=int, default=500)
    ap.add_argument("--test-seeds", type=int, nargs="+", default=[501, 502, 503])
    ap.add_argument("--real-annotations", choices=["scribbles", "outlines", "dense"],
                    default="scribbles", help="real planes: our scribbles (strokes "
                    "across the annotated somata and the hand-drawn strokes), the "
                    "annotated somata as outlines (train-pixels --outlines: polygons where "
                    "annotated, else discs; everything else background), or dense: the "
                    "same somata as a 1/2 class annotation (2 every neuron pixel, 1 all "
                    "else, touching neurons merged, no sheath class; train-pixels "
                    "--annotations)")
    ap.add_argument("--heldout", type=Path, default=HELDOUT,
                    help="annotations of a held-out plane (polygon outlines), scored "
                    "apart; absent: two planes only")
    ap.add_argument("--blind", type=Path, default=None,
                    help="annotations of a blind plane (polygon outlines; e.g. "
                    "benchmarks/annotations/confocal_drg_neurons_blind.csv, plane 7), "
                    "scored apart")
    ap.add_argument("--discs", action="store_true",
                    help="planes 3 and 12 as discs of their annotated diameter (the "
                    "earlier reference) instead of their polygon outlines")
    ap.add_argument("--phantom-annotations", choices=["scribbles", "outlines", "dense"],
                    default="scribbles", help="phantom bed: scribbles on 30 %% of the "
                    "neurons, every neuron's outline (train-pixels --outlines), or the "
                    "true mask as a dense 1/2 class annotation (touching neurons merged)")
    ap.add_argument("--png", type=Path, help="write overlays here")
    ap.add_argument("--split", choices=["levels", "distance"], default="levels",
                    help="instance separation (distance: the earlier method)")
    ap.add_argument("--diagnose", action="store_true",
                    help="count the errors by kind (see error_kinds; classifies every pixel "
                         "again)")
    ap.add_argument("--forest-seeds", type=int, nargs="+", default=[0],
                    help="train each model with each of these forest seeds (random_state) "
                    "and pool the scores: one object moves a plane's F1 by 0.02-0.04, and "
                    "so does another forest")
    ap.add_argument("--as-drawn", action="store_true",
                    help="train on dense annotations as drawn (train_pixels(dense=False): "
                    "no sheath band derived, merged neurons not split)")
    args = ap.parse_args(argv)
    _DENSE[0] = False if args.as_drawn else None
    args.options = {"split": args.split}
    if args.split == "distance":
        args.options["smooth_um"] = 0.5  # the earlier default
    beds = args.only or ["confocal", "widefield", "phantom"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in args.forest_seeds:
            _SEED[0] = seed
            for bed in beds:
                if bed in ("confocal", "widefield"):
                    if not args.stack.exists():
                        print(f"no stack at {args.stack}; {bed} skipped", file=sys.stderr)
                        continue
                    new = bed_planes(work, args, widefield=bed == "widefield")
                else:
                    new = bed_phantom(work, args)
                rows += [{**r, "forest_seed": seed} for r in new]
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if "pool" in df:
        df["bed"] = np.where(df["pool"].fillna("tuning") != "tuning",
                             df["bed"] + " (" + df["pool"].fillna("") + " plane)", df["bed"])
    elif "heldout" in df:
        df["bed"] = np.where(df["heldout"].fillna(False).astype(bool),
                             df["bed"] + " (held-out plane)", df["bed"])
    for bed, g in df.groupby("bed", sort=False):
        m, nr, npd = g["matched"].sum(), g["n_ref"].sum(), g["n_pred"].sum()
        print(f"{bed}: pooled instance F1 (IoU >= 0.5) {2 * m / max(nr + npd, 1):.3f} "
              f"(precision {m / max(npd, 1):.3f}, recall {m / max(nr, 1):.3f}), "
              f"worst {g['f1'].min():.3f}")
        mi, nri, npi = g["matched_in"].sum(), g["n_ref_in"].sum(), g["n_pred_in"].sum()
        print(f"{bed}: median IoU of the matches {g['median_iou'].median():.3f}, diameter "
              f"bias (predicted - reference) {g['bias_um'].mean():+.2f} µm")
        print(f"{bed}: without border-cut objects {2 * mi / max(nri + npi, 1):.3f} "
              f"({nri} reference objects)")
        if args.diagnose:
            kinds = ["ok", "split", "low_iou", "miss_pixels", "miss_instance", "merge",
                     "outside"]
            print(f"{bed}: errors by kind " + ", ".join(f"{k} {int(g[k].sum())}"
                                                        for k in kinds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
