"""Per-label pixel counts, bounding boxes and exact second moments in one compiled pass.

The covariance of a label's pixel coordinates is computed from integer moment sums, so
it is exact up to the final division (one rounding of an exact rational per entry):
the same value whatever the label's position in the array (a tile or the whole image)
and whatever the summation order, unlike a floating-point ``np.cov`` (whose BLAS
product rounds in a library-specific order).
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

#: columns of :func:`label_moments`' table
COUNT, Y0, Y1, X0, X1, SY, SX, SYY, SXX, SXY = range(10)


@njit(cache=True, nogil=True)
def _moments(labels: np.ndarray, n: int) -> np.ndarray:
    h, w = labels.shape
    out = np.zeros((n + 1, 10), np.int64)
    for k in range(n + 1):
        out[k, 1] = h
        out[k, 3] = w
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            if k <= 0 or k > n:
                continue
            out[k, 0] += 1
            if r < out[k, 1]:
                out[k, 1] = r
            if r + 1 > out[k, 2]:
                out[k, 2] = r + 1
            if c < out[k, 3]:
                out[k, 3] = c
            if c + 1 > out[k, 4]:
                out[k, 4] = c + 1
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            if k <= 0 or k > n:
                continue
            y = r - out[k, 1]
            x = c - out[k, 3]
            out[k, 5] += y
            out[k, 6] += x
            out[k, 7] += y * y
            out[k, 8] += x * x
            out[k, 9] += y * x
    return out


@njit(cache=True, nogil=True)
def _max_label(labels: np.ndarray) -> int:
    m = 0
    for v in labels.ravel():
        if v > m:
            m = v
    return m


@njit(cache=True, nogil=True)
def _cov(mom: np.ndarray, ids: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Covariances of the ids whose int64 numerators cannot overflow; flags the others."""
    big = np.zeros(ids.size, np.bool_)
    for j in range(ids.size):
        k = ids[j]
        c = mom[k, 0]
        ext = max(mom[k, 2] - mom[k, 1], mom[k, 4] - mom[k, 3])
        if c * ext >= (1 << 30):  # count**2 * extent**2 could reach 2**60
            big[j] = True
            continue
        sy, sx = mom[k, 5], mom[k, 6]
        d = np.float64(c * (c - 1))
        out[j, 0, 0] = np.float64(c * mom[k, 7] - sy * sy) / d
        out[j, 0, 1] = out[j, 1, 0] = np.float64(c * mom[k, 9] - sy * sx) / d
        out[j, 1, 1] = np.float64(c * mom[k, 8] - sx * sx) / d
    return big


def label_moments(labels: np.ndarray, n: int | None = None) -> np.ndarray:
    """Count, bounding box and coordinate moment sums of every label id ``1..n``.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Label image (ids <= 0 or > ``n`` are ignored).
    n : int, optional
        Largest id (default ``labels.max()``).

    Returns
    -------
    ndarray of int64, shape (n + 1, 10)
        Per id (row 0 unused): pixel count, box ``y0, y1, x0, x1`` (end exclusive; an
        id without pixels has ``y0 = Y, y1 = 0``), and the sums of ``y, x, y², x², yx``
        with coordinates relative to the box's top-left corner.
    """
    labels = np.ascontiguousarray(labels)
    if labels.dtype.kind not in "iu" or labels.dtype.itemsize > 8:
        labels = labels.astype(np.int64)
    if n is None:
        n = int(_max_label(labels)) if labels.size else 0
    return _moments(labels, int(n))


def covariances(mom: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Coordinate covariance matrices (divisor ``count - 1``) of the ids, from moments.

    ``(count * Syy - Sy**2) / (count * (count - 1))`` and likewise for the other
    entries: numerators exact (int64, or Python integers where int64 could overflow),
    converted to float64 and divided once.

    Parameters
    ----------
    mom : ndarray of int64
        :func:`label_moments`' table.
    ids : ndarray of int
        Ids with at least two pixels.

    Returns
    -------
    ndarray of float64, shape (len(ids), 2, 2)
    """
    ids = np.ascontiguousarray(ids, np.int64)
    out = np.empty((ids.size, 2, 2), np.float64)
    big = _cov(mom, ids, out)
    for j in np.flatnonzero(big).tolist():  # huge objects: exact Python integers
        row = [int(v) for v in mom[int(ids[j])]]
        c, sy, sx = row[COUNT], row[SY], row[SX]
        d = float(c * (c - 1))
        out[j, 0, 0] = float(c * row[SYY] - sy * sy) / d
        out[j, 0, 1] = out[j, 1, 0] = float(c * row[SXY] - sy * sx) / d
        out[j, 1, 1] = float(c * row[SXX] - sx * sx) / d
    return out
