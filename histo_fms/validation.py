"""Validate a run's neuron segmentation against reference annotations.

Pure scoring (:func:`match_instances`, :func:`score_image`, :func:`pool_scores`:
numpy in, numbers out) and the file layer behind ``histo-fms validate``
(:func:`validate_run`), which pairs each ``RESULTS/STEM/labels.zarr`` with a reference
label image or binary mask ``REFDIR/STEM*.tif|png`` (see
:func:`histo_fms.io.find_reference`).

Instances are matched one-to-one at intersection-over-union >= 0.5 (greedily by
decreasing IoU; above 0.5 a match is unique anyway). Precision = matched / predicted,
recall = matched / reference, F1 = 2 matched / (predicted + reference). On matched
pairs: median IoU, and the equivalent diameters' Spearman correlation and mean
difference (predicted - reference, µm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

IOU_THRESHOLD = 0.5
COLUMNS = ["image", "n_reference", "n_predicted", "n_matched", "precision", "recall", "f1",
           "median_iou", "diameter_spearman", "diameter_bias_um", "reference"]


def reference_instances(reference: np.ndarray) -> np.ndarray:
    """Instances of a reference: a label image as is, a binary mask split into components.

    An image with one nonzero value (bool, 0/1, 0/255) is a binary mask; its
    4-connected components are the instances. Otherwise nonzero values are labels.

    Parameters
    ----------
    reference : ndarray, shape (Y, X)
        Label image or binary mask.

    Returns
    -------
    ndarray of int64
        Labels (0 background), values as given for label images, 1..n for masks.
    """
    ref = np.asarray(reference)
    if ref.ndim != 2:
        raise ValueError(f"expected a 2-D reference, got shape {ref.shape}")
    if ref.dtype == bool:
        return ndi.label(ref)[0].astype(np.int64)
    if not np.issubdtype(ref.dtype, np.integer):
        if not np.all(np.isfinite(ref)) or not np.all(np.mod(ref, 1) == 0):
            raise ValueError(f"a {ref.dtype} reference with values that are not whole "
                             "numbers (NaN, or fractions, e.g. a probability map) is "
                             "neither a label image nor a mask")
        ref = ref.astype(np.int64)
    vals = np.unique(ref)
    vals = vals[vals != 0]
    if vals.size <= 1:
        return ndi.label(ref != 0)[0].astype(np.int64)
    if np.any(vals < 0):
        raise ValueError("reference labels must be non-negative")
    return ref.astype(np.int64)


def match_instances(predicted: np.ndarray, reference: np.ndarray,
                    iou_threshold: float = IOU_THRESHOLD) -> pd.DataFrame:
    """Match predicted to reference instances one-to-one at IoU >= ``iou_threshold``.

    Parameters
    ----------
    predicted, reference : ndarray of int, shape (Y, X)
        Label images (0 background).
    iou_threshold : float
        Smallest IoU of a match.

    Returns
    -------
    pandas.DataFrame
        One row per match: ``predicted``, ``reference`` (ids), ``iou``,
        ``area_predicted``, ``area_reference`` (pixels).
    """
    pred = np.asarray(predicted)
    ref = np.asarray(reference)
    if pred.shape != ref.shape:
        raise ValueError(f"predicted labels {pred.shape} and reference {ref.shape} differ "
                         "in shape")
    cols = ["predicted", "reference", "iou", "area_predicted", "area_reference"]
    p_ids, p_inv = np.unique(pred.ravel(), return_inverse=True)
    r_ids, r_inv = np.unique(ref.ravel(), return_inverse=True)
    np_, nr = p_ids.size, r_ids.size
    a_p = np.bincount(p_inv, minlength=np_)
    a_r = np.bincount(r_inv, minlength=nr)
    pair = r_inv.astype(np.int64) * np_ + p_inv
    keys, inter = np.unique(pair, return_counts=True)
    ri, pi = np.divmod(keys, np_)
    ok = (p_ids[pi] != 0) & (r_ids[ri] != 0)
    ri, pi, inter = ri[ok], pi[ok], inter[ok]
    iou = inter / (a_p[pi] + a_r[ri] - inter)
    sel = iou >= iou_threshold
    ri, pi, iou = ri[sel], pi[sel], iou[sel]
    order = np.lexsort((r_ids[ri], p_ids[pi], -iou))
    used_p, used_r, rows = set(), set(), []
    for k in order:
        if pi[k] in used_p or ri[k] in used_r:
            continue
        used_p.add(pi[k])
        used_r.add(ri[k])
        rows.append((int(p_ids[pi[k]]), int(r_ids[ri[k]]), float(iou[k]), int(a_p[pi[k]]),
                     int(a_r[ri[k]])))
    out = pd.DataFrame(rows, columns=cols)
    # typed even when empty, so pooled matches of several images stay numeric
    return out.astype({"predicted": np.int64, "reference": np.int64, "iou": np.float64,
                       "area_predicted": np.int64, "area_reference": np.int64})


def _n_objects(labels: np.ndarray) -> int:
    u = np.unique(labels)
    return int(np.count_nonzero(u))


@dataclass
class ImageScore:
    """Scores of one image (see :func:`score_image`)."""

    n_reference: int
    n_predicted: int
    matches: pd.DataFrame
    pixel_size_um: float
    row: dict = field(default_factory=dict)


def _summary(n_ref: int, n_pred: int, matches: pd.DataFrame, px: Sequence[float] | float
             ) -> dict:
    m = len(matches)
    prec = m / n_pred if n_pred else float("nan")
    rec = m / n_ref if n_ref else float("nan")
    f1 = 2 * m / (n_pred + n_ref) if (n_pred + n_ref) else float("nan")
    out = {"n_reference": n_ref, "n_predicted": n_pred, "n_matched": m, "precision": prec,
           "recall": rec, "f1": f1,
           "median_iou": float(np.median(matches["iou"])) if m else float("nan"),
           "diameter_spearman": float("nan"), "diameter_bias_um": float("nan")}
    if m:
        pxa = np.broadcast_to(np.asarray(px, float), (m,))
        dp = 2 * np.sqrt(matches["area_predicted"].to_numpy(float) / np.pi) * pxa
        dr = 2 * np.sqrt(matches["area_reference"].to_numpy(float) / np.pi) * pxa
        out["diameter_bias_um"] = float(np.mean(dp - dr))
        if m >= 3 and np.ptp(dp) > 0 and np.ptp(dr) > 0:
            from scipy.stats import spearmanr

            out["diameter_spearman"] = float(spearmanr(dp, dr).statistic)
    return out


def score_image(predicted: np.ndarray, reference: np.ndarray, *, pixel_size_um: float,
                iou_threshold: float = IOU_THRESHOLD) -> ImageScore:
    """Instance precision, recall, F1, median IoU and diameter agreement of one image.

    Parameters
    ----------
    predicted : ndarray of int
        Predicted neuron labels.
    reference : ndarray
        Reference label image or binary mask (see :func:`reference_instances`).
    pixel_size_um : float
        Pixel size in µm (for diameters).
    iou_threshold : float
        Smallest IoU of a match.

    Returns
    -------
    ImageScore
        Counts, the matches, and ``row``: ``n_reference, n_predicted, n_matched,
        precision, recall, f1, median_iou, diameter_spearman, diameter_bias_um``.
    """
    if not pixel_size_um > 0:
        raise ValueError("pixel_size_um must be positive")
    ref = reference_instances(reference)
    pred = np.asarray(predicted)
    matches = match_instances(pred, ref, iou_threshold)
    n_r, n_p = _n_objects(ref), _n_objects(pred)
    return ImageScore(n_reference=n_r, n_predicted=n_p, matches=matches,
                      pixel_size_um=float(pixel_size_um),
                      row=_summary(n_r, n_p, matches, pixel_size_um))


def pool_scores(scores: Sequence[ImageScore]) -> dict:
    """Pooled scores over images (sums of counts; statistics over all matched pairs).

    Parameters
    ----------
    scores : sequence of ImageScore
        Per-image scores.

    Returns
    -------
    dict
        Same keys as :attr:`ImageScore.row`.
    """
    if not scores:
        return _summary(0, 0, pd.DataFrame(columns=["iou", "area_predicted",
                                                    "area_reference"]), 1.0)
    matches = pd.concat([s.matches for s in scores], ignore_index=True)
    px = np.concatenate([np.full(len(s.matches), s.pixel_size_um) for s in scores])
    return _summary(sum(s.n_reference for s in scores), sum(s.n_predicted for s in scores),
                    matches, px)


@dataclass
class ValidationReport:
    """Result of :func:`validate_run`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scored image and a last ``image = "ALL"`` row (pooled), columns
        :data:`COLUMNS`.
    path : Path
        The CSV written.
    unscored : list of tuple
        ``(stem, reason)`` of each image that could not be scored.
    """

    table: pd.DataFrame
    path: Path
    unscored: list[tuple[str, str]]


def result_label_dirs(results: str | Path) -> list[Path]:
    """Output folders of a run that hold neuron labels (``STEM/labels.zarr``), sorted."""
    results = Path(results)
    return sorted(d for d in results.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and (d / "labels.zarr").exists())


def validate_run(results: str | Path, reference: str | Path, *, out: str | Path | None = None,
                 reviewed: bool = False, iou_threshold: float = IOU_THRESHOLD
                 ) -> ValidationReport:
    """Score a DRG run's neuron labels against a folder of reference annotations.

    Parameters
    ----------
    results : str or Path
        A ``histo-fms run`` output folder (``STEM/labels.zarr`` per image).
    reference : str or Path
        Folder of reference label images or binary masks (TIFF/PNG) named by image
        stem (``STEM.tif``, ``STEM.labels.tif``, ``STEM_mask.png``, ...).
    out : str or Path, optional
        CSV path, or a folder for ``validation.csv`` (default ``RESULTS/validation.csv``).
    reviewed : bool
        Use reviewed labels (``STEM/reviewed/labels.zarr``) where they exist.
    iou_threshold : float
        Smallest IoU of a match.

    Returns
    -------
    ValidationReport
        Table, CSV path and the images that could not be scored (with why).

    Raises
    ------
    InputError
        ``results`` or ``reference`` is not a folder, or ``results`` has no labels.
    """
    from .io import (
        InputError,
        find_reference,
        read_labels_scale,
        read_labels_zarr,
        read_plane,
        write_table,
    )

    results, reference = Path(results), Path(reference)
    if not results.is_dir():
        raise InputError(results, "results folder not found")
    if not reference.is_dir():
        raise InputError(reference, "reference folder not found")
    dirs = result_label_dirs(results)
    if not dirs:
        raise InputError(results, "no STEM/labels.zarr in this folder (not a DRG run's "
                         "output?)")
    rows, scores, unscored = [], [], []
    for d in dirs:
        stem = d.name
        ref_path = find_reference(reference, stem)
        if ref_path is None:
            unscored.append((stem, f"no reference {stem}[.labels|_mask].tif/.png in "
                             f"{reference}"))
            continue
        lab_path = d / "labels.zarr"
        if reviewed and (d / "reviewed" / "labels.zarr").exists():
            lab_path = d / "reviewed" / "labels.zarr"
        try:
            labels = read_labels_zarr(lab_path)
            if "neurons" not in labels:
                raise ValueError("no 'neurons' labels")
            px = read_labels_scale(lab_path)
            ref = read_plane(ref_path)
            if ref.shape != labels["neurons"].shape:
                raise ValueError(f"reference {ref_path.name} is {ref.shape[0]} x "
                                 f"{ref.shape[1]} px, the labels are "
                                 f"{labels['neurons'].shape[0]} x {labels['neurons'].shape[1]}")
            s = score_image(labels["neurons"], ref, pixel_size_um=px,
                            iou_threshold=iou_threshold)
        except (InputError, ValueError, KeyError, OSError) as exc:
            why = " ".join(str(exc).split())
            named = isinstance(exc, InputError) or ref_path.name in why
            unscored.append((stem, why if named else f"{ref_path.name}: {why}"))
            continue
        scores.append(s)
        rows.append({"image": stem, **s.row, "reference": ref_path.name})
    if scores:
        rows.append({"image": "ALL", **pool_scores(scores), "reference": ""})
    table = pd.DataFrame(rows, columns=COLUMNS)
    if out is None:
        path = results / "validation.csv"
    else:
        o = Path(out)
        path = o if o.suffix.lower() == ".csv" else o / "validation.csv"
    write_table(table, path)
    return ValidationReport(table=table, path=path, unscored=unscored)
