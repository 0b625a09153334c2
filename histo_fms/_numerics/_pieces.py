"""Per-piece shape inputs and the threshold levels of one object, in a few compiled calls.

The classical segmentation measures many small connected pieces: every object of a
label image, and every piece of every threshold level of an object (the level search
of :mod:`histo_fms.segment._levels`). Done one piece at a time, the cost is the Python
call overhead and a boolean crop per piece; here each step is one compiled call over
all pieces of a stack of label images ``(L, Y, X)`` (a label image is a stack of one):

* :func:`level_labels`: for each level ``t``, the pixels of an opened image above
  ``t`` (compared in float64), their small holes filled in the bounding box of those
  pixels grown by one, labelled 4-connected (scipy's numbering);
* :func:`stack_moments`: counts, boxes and exact moment sums of every piece of every
  level (:func:`histo_fms._numerics._moments.label_moments`, level by level);
* :func:`hull_counts`: convex-hull pixel counts of pieces in their boxes
  (:func:`histo_fms._numerics._hull.hull_pixel_count` of ``labels[box] == k``);
* :func:`opening_counts`: pixel counts of the disc opening of each piece padded by one
  background pixel (:func:`histo_fms._numerics._edt.disc_opening`).

Each gives the values of the per-piece calls it replaces, bit for bit (integers only;
``tests/test_pieces.py``).
"""

from __future__ import annotations

import numpy as np

from ._edt import _opening
from ._hull import _hull_rows
from ._jit import njit
from ._label import _fill_holes, _label, _threshold_box
from ._moments import _moments


@njit(cache=True, nogil=True)
def _level_labels(opened: np.ndarray, levels: np.ndarray, max_hole: float,
                  labs: np.ndarray, counts: np.ndarray) -> None:
    h, w = opened.shape
    full = np.empty((h, w), np.bool_)
    for li in range(levels.shape[0]):
        lab = labs[li]
        lab[:, :] = 0
        y0, y1, x0, x1 = _threshold_box(opened, levels[li], full)
        if y1 < 0:
            counts[li] = 0
            continue
        by0, by1 = max(0, y0 - 1), min(h, y1 + 2)
        bx0, bx1 = max(0, x0 - 1), min(w, x1 + 2)
        bh, bw = by1 - by0, bx1 - bx0
        m = full[by0:by1, bx0:bx1].copy()
        filled = np.empty((bh, bw), np.bool_)
        _fill_holes(m, max_hole, filled)
        sub = np.empty((bh, bw), np.int32)
        counts[li] = _label(filled, False, sub)
        for r in range(bh):
            for c in range(bw):
                lab[by0 + r, bx0 + c] = sub[r, c]


def level_labels(opened: np.ndarray, levels: np.ndarray, max_hole_px: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Label the hole-filled threshold sets ``opened > t`` of every level ``t``.

    For each level: ``m = opened > t`` (float64 comparison), the holes of at most
    ``max_hole_px`` pixels of ``m`` filled within the bounding box of its pixels grown
    by one pixel (clipped), and ``scipy.ndimage.label`` of the result.

    Parameters
    ----------
    opened : ndarray of float, shape (Y, X)
        Image (e.g. a grey-level opening; ``-inf`` is in no set).
    levels : ndarray of float64, shape (L,)
        Levels.
    max_hole_px : float
        Largest hole filled.

    Returns
    -------
    labels : ndarray of int32, shape (L, Y, X)
        Labels of each level, 1..n in raster order of first pixels.
    counts : ndarray of int64, shape (L,)
        Number of pieces of each level.
    """
    v = np.ascontiguousarray(opened)
    if v.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {v.shape}")
    lv = np.ascontiguousarray(levels, np.float64)
    labs = np.empty((lv.size, *v.shape), np.int32)
    counts = np.zeros(lv.size, np.int64)
    if v.size and lv.size:
        _level_labels(v, lv, float(max_hole_px), labs, counts)
    else:
        labs[...] = 0
    return labs, counts


@njit(cache=True, nogil=True)
def _stack_moments(labs: np.ndarray, counts: np.ndarray, out: np.ndarray) -> None:
    j = 0
    for li in range(labs.shape[0]):
        n = counts[li]
        if n == 0:
            continue
        mom = _moments(labs[li], n)
        for k in range(1, n + 1):
            for c in range(10):
                out[j, c] = mom[k, c]
            j += 1


def stack_moments(labels: np.ndarray, counts: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`~histo_fms._numerics._moments.label_moments` of every level, stacked.

    Parameters
    ----------
    labels : ndarray of int, shape (L, Y, X)
        Label images, level ``i`` with ids ``1..counts[i]``.
    counts : ndarray of int, shape (L,)
        Largest id of each level.

    Returns
    -------
    mom : ndarray of int64, shape (sum(counts), 10)
        The moments table rows of every id of every level (level by level, id by id).
    level, ids : ndarray of int64, shape (sum(counts),)
        Level and id of each row.
    """
    labs = np.ascontiguousarray(labels)
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    out = np.empty((total, 10), np.int64)
    level = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    ids = np.arange(total, dtype=np.int64) - np.repeat(starts, counts) + 1
    if total:
        _stack_moments(labs, counts, out)
    return out, level, ids


@njit(cache=True, nogil=True)
def _hull_counts(labs: np.ndarray, level: np.ndarray, ids: np.ndarray, boxes: np.ndarray,
                 out: np.ndarray) -> None:
    for j in range(ids.shape[0]):
        lab = labs[level[j]]
        k = ids[j]
        y0, y1, x0, x1 = boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3]
        h = y1 - y0
        c0 = np.full(h, -1, np.int64)
        c1 = np.full(h, -1, np.int64)
        for r in range(h):
            for c in range(x1 - x0):
                if lab[y0 + r, x0 + c] == k:
                    if c0[r] < 0:
                        c0[r] = c
                    c1[r] = c
        out[j] = _hull_rows(c0, c1, x1 - x0)


def _stack(labels: np.ndarray) -> np.ndarray:
    a = np.asarray(labels)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected a label image or a stack of them, got shape {a.shape}")
    if a.dtype.kind not in "iu" or a.dtype.itemsize > 8 or a.dtype == np.uint64:
        a = a.astype(np.int64)
    return np.ascontiguousarray(a)


def hull_counts(labels: np.ndarray, level: np.ndarray, ids: np.ndarray, boxes: np.ndarray
                ) -> np.ndarray:
    """``hull_pixel_count(labels[level][y0:y1, x0:x1] == id)`` of every piece.

    Parameters
    ----------
    labels : ndarray of int, shape (L, Y, X) or (Y, X)
        Label images (one image: ``level`` all 0).
    level, ids : ndarray of int, shape (m,)
        Level and id of each piece.
    boxes : ndarray of int, shape (m, 4)
        ``y0, y1, x0, x1`` of each piece (end exclusive, inside the image).

    Returns
    -------
    ndarray of int64, shape (m,)
        Convex-hull pixel counts (0 for a piece without pixels in its box).
    """
    labs = _stack(labels)
    out = np.zeros(len(ids), np.int64)
    if len(ids):
        _hull_counts(labs, np.ascontiguousarray(level, np.int64),
                     np.ascontiguousarray(ids, np.int64),
                     np.ascontiguousarray(boxes, np.int64), out)
    return out


@njit(cache=True, nogil=True)
def _opening_counts(labs: np.ndarray, level: np.ndarray, ids: np.ndarray, boxes: np.ndarray,
                    r2: np.ndarray, out: np.ndarray) -> None:
    for j in range(ids.shape[0]):
        lab = labs[level[j]]
        k = ids[j]
        y0, y1, x0, x1 = boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3]
        h, w = y1 - y0 + 2, x1 - x0 + 2
        pm = np.zeros((h, w), np.bool_)
        for r in range(h - 2):
            for c in range(w - 2):
                pm[r + 1, c + 1] = lab[y0 + r, x0 + c] == k
        o = np.empty((h, w), np.bool_)
        _opening(pm, r2[j], o)
        n = 0
        for r in range(h):
            for c in range(w):
                if o[r, c]:
                    n += 1
        out[j] = n


def opening_counts(labels: np.ndarray, level: np.ndarray, ids: np.ndarray, boxes: np.ndarray,
                   r2: np.ndarray) -> np.ndarray:
    """Pixel count of ``disc_opening(np.pad(labels[level][box] == id, 1), r)`` per piece.

    The opening of :func:`histo_fms._numerics._edt.disc_opening` (two exact distance
    transforms; squared distances compared with ``r2`` as a float).

    Parameters
    ----------
    labels : ndarray of int, shape (L, Y, X) or (Y, X)
        Label images.
    level, ids : ndarray of int, shape (m,)
        Level and id of each piece.
    boxes : ndarray of int, shape (m, 4)
        ``y0, y1, x0, x1`` of each piece.
    r2 : ndarray of float64, shape (m,)
        Squared disc radius of each piece's opening.

    Returns
    -------
    ndarray of int64, shape (m,)
        Pixels left by each opening.
    """
    labs = _stack(labels)
    out = np.zeros(len(ids), np.int64)
    if len(ids):
        _opening_counts(labs, np.ascontiguousarray(level, np.int64),
                        np.ascontiguousarray(ids, np.int64),
                        np.ascontiguousarray(boxes, np.int64),
                        np.ascontiguousarray(r2, np.float64), out)
    return out
