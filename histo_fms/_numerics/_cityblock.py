"""Binary dilation, erosion and opening by ``k`` iterations of the 4-neighbour cross.

``scipy.ndimage.binary_dilation(mask, iterations=k)`` (default structure) is the set of
pixels within city-block distance ``k`` of the mask: a shortest 4-connected path
between two pixels of the array can always stay inside it. ``binary_erosion(mask,
iterations=k)`` (``border_value=0``) keeps the pixels farther than ``k`` from every
background pixel and from the outside of the array. Both come from one exact two-pass
city-block distance transform (integers, a compiled kernel) instead of ``k`` passes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._jit import njit


@njit(cache=True, nogil=True)
def _cityblock(mask: np.ndarray, to_value: bool, outside_near: bool, k: int,
               out: np.ndarray) -> None:
    """Threshold a city-block distance: ``d <= k`` (dilation) or ``d > k`` (erosion).

    ``d`` is the distance to the pixels equal to ``to_value`` (and to the outside of the
    array when ``outside_near``).
    """
    h, w = mask.shape
    big = max(h + w + 2, k + 1)  # farther than any distance and than k
    edge = 0 if outside_near else big
    d = np.empty((h, w), np.int32)
    for r in range(h):
        for c in range(w):
            if mask[r, c] == to_value:
                d[r, c] = 0
            else:
                up = d[r - 1, c] if r > 0 else edge
                left = d[r, c - 1] if c > 0 else edge
                d[r, c] = min(min(up, left) + 1, big)
    for r in range(h - 1, -1, -1):
        for c in range(w - 1, -1, -1):
            v = d[r, c]
            if v:
                dn = d[r + 1, c] if r + 1 < h else edge
                right = d[r, c + 1] if c + 1 < w else edge
                v = min(v, min(dn, right) + 1)
                d[r, c] = v
            out[r, c] = (v <= k) if not outside_near else (v > k)


def _checked(mask: np.ndarray) -> np.ndarray:
    a = np.asarray(mask)
    if a.dtype != bool:
        a = a != 0
    return np.ascontiguousarray(a)


def binary_dilation(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``scipy.ndimage.binary_dilation(mask, iterations=iterations)`` (4-neighbour cross).

    Parameters
    ----------
    mask : ndarray, shape (Y, X)
        Foreground.
    iterations : int
        Number of dilations (< 1, or a non-2-D mask: scipy is called).

    Returns
    -------
    ndarray of bool
        The dilated mask.
    """
    a = _checked(mask)
    k = int(iterations)
    if a.ndim != 2 or k < 1 or a.size == 0:
        return ndi.binary_dilation(mask, iterations=iterations)
    out = np.empty(a.shape, bool)
    _cityblock(a, True, False, k, out)
    return out


def binary_erosion(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``scipy.ndimage.binary_erosion(mask, iterations=iterations)`` (4-neighbour cross).

    Parameters
    ----------
    mask : ndarray, shape (Y, X)
        Foreground.
    iterations : int
        Number of erosions (< 1, or a non-2-D mask: scipy is called).

    Returns
    -------
    ndarray of bool
        The eroded mask (the outside of the array counts as background).
    """
    a = _checked(mask)
    k = int(iterations)
    if a.ndim != 2 or k < 1 or a.size == 0:
        return ndi.binary_erosion(mask, iterations=iterations)
    out = np.empty(a.shape, bool)
    _cityblock(a, False, True, k, out)
    return out


def binary_opening(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``scipy.ndimage.binary_opening(mask, iterations=iterations)`` (4-neighbour cross).

    Parameters
    ----------
    mask : ndarray, shape (Y, X)
        Foreground.
    iterations : int
        Number of erosions, then as many dilations.

    Returns
    -------
    ndarray of bool
        The opened mask.
    """
    a = _checked(mask)
    k = int(iterations)
    if a.ndim != 2 or k < 1 or a.size == 0:
        return ndi.binary_opening(mask, iterations=iterations)
    return binary_dilation(binary_erosion(a, k), k)
