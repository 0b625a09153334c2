"""Compiled single passes of the DRG ring measurement (the same values as numpy's).

:func:`window_mean` is the per-label mean of the values inside per-label bounds (the
trimmed ring mean), summed in float64 in pixel order as ``np.bincount`` sums;
:func:`other_label_near` flags the ring pixels with another neuron's soma or ring in a
square window, as a maximum and a minimum filter of the label image did.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(cache=True, nogil=True)
def _window_sums(values: np.ndarray, labels: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 n: np.ndarray, s: np.ndarray) -> None:
    for i in range(labels.size):
        k = labels[i]
        v = np.float64(values[i])
        if k > 0 and not (v >= lo[k] and v <= hi[k]):
            k = 0
        n[k] += 1
        s[k] += v


def window_mean(values: np.ndarray, labels: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                nmax: int) -> np.ndarray:
    """Mean of each label's values within ``[lo[label], hi[label]]`` (float64).

    Equals ``np.bincount`` of the labels (pixels outside their bounds moved to label 0)
    with the float64 values as weights, divided by the counts (NaN where none): the
    same sums in the same order.

    Parameters
    ----------
    values : ndarray of float, shape (Y, X)
        Values.
    labels : ndarray of int, shape (Y, X)
        Labels ``0..nmax``.
    lo, hi : ndarray of float64, shape (nmax + 1,)
        Inclusive bounds per label.
    nmax : int
        Largest label.

    Returns
    -------
    ndarray of float64, shape (nmax + 1,)
        Per-label mean (index 0: all pixels outside a label's bounds or unlabelled).
    """
    v = np.ascontiguousarray(values).ravel()
    lab = np.ascontiguousarray(labels).ravel()
    if v.shape != lab.shape:
        raise ValueError("values and labels differ in shape")
    if lab.size and (int(lab.min()) < 0 or int(lab.max()) > nmax):
        raise ValueError("labels outside 0..nmax")
    n = np.zeros(nmax + 1, np.int64)
    s = np.zeros(nmax + 1, np.float64)
    _window_sums(v, lab, np.ascontiguousarray(lo, np.float64),
                 np.ascontiguousarray(hi, np.float64), n, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


@njit(cache=True, nogil=True)
def _near(own: np.ndarray, rings: np.ndarray, half: int, out: np.ndarray) -> None:
    h, w = own.shape
    big = np.iinfo(np.int32).max
    hmax = np.empty((h, w), np.int32)
    hmin = np.empty((h, w), np.int32)
    for y in range(h):
        for x in range(w):
            mx = np.int32(-big - 1)
            mn = np.int32(big)
            for q in range(max(0, x - half), min(w, x + half + 1)):
                v = own[y, q]
                if v > mx:
                    mx = v
                u = v if v != 0 else big
                if u < mn:
                    mn = u
            hmax[y, x] = mx
            hmin[y, x] = mn
    for y in range(h):
        for x in range(w):
            r = rings[y, x]
            if r <= 0:
                out[y, x] = False
                continue
            mx = np.int32(-big - 1)
            mn = np.int32(big)
            for q in range(max(0, y - half), min(h, y + half + 1)):
                if hmax[q, x] > mx:
                    mx = hmax[q, x]
                if hmin[q, x] < mn:
                    mn = hmin[q, x]
            out[y, x] = (mx != r) or (mn != r)


def other_label_near(own: np.ndarray, rings: np.ndarray, half: int) -> np.ndarray:
    """Ring pixels whose ``(2 half + 1)``-square window holds a label other than theirs.

    ``(rings > 0) & ((maximum_filter(own, k) != rings) | (minimum_filter(own or int32
    max where 0, k) != rings))`` with ``k = 2 half + 1`` (scipy's ``reflect`` border:
    the reflected pixels lie inside the window clipped to the image, so the extremes
    are those of the clipped window).

    Parameters
    ----------
    own : ndarray of int32, shape (Y, X)
        Label of each pixel (somata and rings; 0 elsewhere).
    rings : ndarray of int32, shape (Y, X)
        Ring labels.
    half : int
        Window half-width in pixels.

    Returns
    -------
    ndarray of bool
        The flagged ring pixels.
    """
    o = np.ascontiguousarray(own, np.int32)
    r = np.ascontiguousarray(rings, np.int32)
    if o.shape != r.shape or o.ndim != 2:
        raise ValueError("own and rings must be 2-D arrays of one shape")
    out = np.zeros(o.shape, bool)
    if o.size:
        _near(o, r, int(half), out)
    return out
