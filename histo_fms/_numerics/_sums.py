"""Several per-label sums in one compiled pass, equal to ``np.bincount`` bit for bit.

``np.bincount(labels, weights=w)`` adds the float64 weights to their bins in raster
order, one pixel after the other; the kernels here add in the same order (and form
products in float64 as ``np.multiply(a, b, dtype=np.float64)`` does), so each sum is
the bincount's exactly, for several weights and products at the cost of one pass.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(cache=True, nogil=True)
def _sums_y(lab, y, n):
    cnt = np.zeros(n + 1, np.int64)
    s1 = np.zeros(n + 1, np.float64)
    s2 = np.zeros(n + 1, np.float64)
    for i in range(lab.size):
        k = lab[i]
        if k < 0 or k > n:
            raise ValueError("label outside 0..n")
        v = np.float64(y[i])
        cnt[k] += 1
        s1[k] += v
        s2[k] += v * v
    return cnt, s1, s2


@njit(cache=True, nogil=True)
def _sums_gy(lab, g, y, n):
    sg = np.zeros(n + 1, np.float64)
    sgg = np.zeros(n + 1, np.float64)
    sgy = np.zeros(n + 1, np.float64)
    for i in range(lab.size):
        k = lab[i]
        if k < 0 or k > n:
            raise ValueError("label outside 0..n")
        a = np.float64(g[i])
        sg[k] += a
        sgg[k] += a * a
        sgy[k] += a * np.float64(y[i])
    return sg, sgg, sgy


def _flat(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).ravel()


def label_moment_sums(labels: np.ndarray, y: np.ndarray, n: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``bincount(labels)``, ``bincount(labels, y)``, ``bincount(labels, y*y)`` in one pass.

    Parameters
    ----------
    labels : ndarray of int
        Bin of each pixel, ``0..n``.
    y : ndarray
        Values (cast to float64), same size.
    n : int
        Largest bin.

    Returns
    -------
    count (int64), sum (float64), sum of squares (float64), each shape (n + 1,)
    """
    lab, v = _flat(labels), _flat(y)
    return _sums_y(lab, v, int(n))


def label_cross_sums(labels: np.ndarray, g: np.ndarray, y: np.ndarray, n: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``bincount`` of ``g``, ``g*g`` and ``g*y`` over ``labels`` in one pass (float64)."""
    lab = _flat(labels)
    return _sums_gy(lab, _flat(g), _flat(y), int(n))
