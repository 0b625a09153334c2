"""Per-object shape measures and morphological steps used to reject non-neuron objects."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as cc_label
from skimage.morphology import convex_hull_image

from ._local import nearest_feature, squared_distance


def disc_opening(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Binary opening by a Euclidean disc, via two distance transforms.

    Removes every part of ``mask`` into which a disc of ``radius_px`` does not fit
    (thin fibres, puncta) and keeps the rest unchanged. A pixel's value depends only
    on pixels within ``2 * radius_px``.

    Parameters
    ----------
    mask : ndarray of bool
        Foreground.
    radius_px : float
        Disc radius in pixels (< 1: no-op).

    Returns
    -------
    ndarray of bool
        The opened mask.
    """
    mask = np.asarray(mask, bool)
    if radius_px < 1 or not mask.any():
        return mask
    r2 = float(radius_px) ** 2
    core = squared_distance(nearest_feature(mask)) > r2
    if not core.any():
        return np.zeros_like(mask)
    return (squared_distance(nearest_feature(~core)) <= r2) & mask


def split_pieces_keep_largest(labels: np.ndarray) -> np.ndarray:
    """Keep only the largest 4-connected piece of each label.

    Parameters
    ----------
    labels : ndarray of int
        Label image.

    Returns
    -------
    ndarray of int32
        Same ids, each reduced to its largest connected piece (ties: first in raster
        order).
    """
    labels = np.asarray(labels, np.int32)
    pieces = cc_label(labels, background=0, connectivity=1)
    npieces = int(pieces.max())
    if npieces == 0:
        return labels
    flat_p = pieces.ravel()
    sel = flat_p > 0
    owner = np.zeros(npieces + 1, np.int64)
    owner[flat_p[sel]] = labels.ravel()[sel]
    size = np.bincount(flat_p, minlength=npieces + 1).astype(np.int64)
    size[0] = 0
    order = np.lexsort((np.arange(npieces + 1), -size))  # big first, then first piece
    best = np.zeros(int(labels.max()) + 1, np.int64)
    seen = np.zeros(int(labels.max()) + 1, bool)
    for k in order.tolist():
        if k == 0:
            continue
        o = owner[k]
        if not seen[o]:
            seen[o] = True
            best[o] = k
    keep = np.zeros(npieces + 1, bool)
    keep[best[best > 0]] = True
    return np.where(keep[pieces], labels, 0).astype(np.int32)


def shape_measures(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area (px), axis ratio (minor / major) and solidity of every label id.

    Parameters
    ----------
    labels : ndarray of int
        Label image.

    Returns
    -------
    area, axis_ratio, solidity : ndarray, shape (n + 1,)
        Indexed by label id (entry 0 unused); solidity is area / convex hull area.
    """
    labels = np.asarray(labels)
    n = int(labels.max()) if labels.size else 0
    area = np.bincount(labels.ravel(), minlength=n + 1).astype(float)
    ratio = np.ones(n + 1)
    solid = np.ones(n + 1)
    if n == 0:
        return area, ratio, solid
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        m = labels[sl] == k
        yy, xx = np.nonzero(m)
        if yy.size < 3:
            continue
        cov = np.cov(np.stack([yy, xx]).astype(float)) + np.eye(2) / 12.0
        ev = np.linalg.eigvalsh(cov)
        ratio[k] = float(np.sqrt(max(ev[0], 1e-12) / max(ev[1], 1e-12)))
        if m.shape[0] >= 2 and m.shape[1] >= 2:
            hull = convex_hull_image(m)
            solid[k] = float(m.sum()) / max(float(hull.sum()), 1.0)
    return area, ratio, solid
