"""h-maxima of integer images (compiled), as ``skimage.morphology.h_maxima`` exactly.

``h_maxima(f, h)`` keeps the pixels ``p`` where the reconstruction by dilation of
``f - h`` under ``f`` is ``f(p) - h``: no pixel brighter than ``p`` can be reached from
``p`` without going down by ``h`` or more. Equivalently (for integers), ``f(p)`` is the
maximum of the 8-connected component of ``{f >= f(p) - h + 1}`` that holds ``p``. That is
evaluated here in one sweep over the levels from the top, with a union-find forest
whose roots hold their component's maximum (pixels bucketed by value, no sort).
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(cache=True, nogil=True)
def _root(parent: np.ndarray, i: int) -> int:
    r = i
    while parent[r] != r:
        r = parent[r]
    while parent[i] != r:
        nxt = parent[i]
        parent[i] = r
        i = nxt
    return r


@njit(cache=True, nogil=True)
def _h_maxima(f: np.ndarray, h: int, lo: int, hi: int) -> np.ndarray:
    ny, nx = f.shape
    n = ny * nx
    flat = f.ravel()
    nlev = hi - lo + 1
    start = np.zeros(nlev + 1, np.int64)
    for i in range(n):
        start[flat[i] - lo + 1] += 1
    for v in range(nlev):
        start[v + 1] += start[v]
    order = np.empty(n, np.int64)
    fill = start[:-1].copy()
    for i in range(n):
        b = flat[i] - lo
        order[fill[b]] = i
        fill[b] += 1
    parent = np.full(n, -1, np.int64)  # -1: not yet active
    cmax = np.empty(n, np.int64)
    out = np.zeros(n, np.uint8)
    for lev in range(hi, lo - 1, -1):
        b = lev - lo
        for j in range(start[b], start[b + 1]):
            p = order[j]
            parent[p] = p
            cmax[p] = lev
            y = p // nx
            x = p - y * nx
            for dy in range(-1, 2):
                yy = y + dy
                if yy < 0 or yy >= ny:
                    continue
                for dx in range(-1, 2):
                    xx = x + dx
                    if xx < 0 or xx >= nx or (dy == 0 and dx == 0):
                        continue
                    q = yy * nx + xx
                    if parent[q] < 0:
                        continue
                    rp = _root(parent, p)
                    rq = _root(parent, q)
                    if rp != rq:
                        if cmax[rq] >= cmax[rp]:
                            parent[rp] = rq
                        else:
                            parent[rq] = rp
        # the pixels whose threshold set {f >= v - h + 1} is now complete
        v = lev + h - 1
        if lev > lo:
            vs, ve = v, v
        else:  # the last level: every pixel left (their sets hold the whole image)
            vs, ve = lo, min(v, hi)
        for vv in range(vs, ve + 1):
            if vv > hi:
                continue
            bb = vv - lo
            for j in range(start[bb], start[bb + 1]):
                p = order[j]
                if cmax[_root(parent, p)] == vv:
                    out[p] = 1
    return out.reshape(ny, nx)


def h_maxima(image: np.ndarray, h: int) -> np.ndarray:
    """``skimage.morphology.h_maxima(image, h)`` of an integer image (8-connected).

    Parameters
    ----------
    image : ndarray of int, shape (Y, X)
        Integer image.
    h : int
        Minimal height (>= 1).

    Returns
    -------
    ndarray of uint8
        1 on the h-maxima, 0 elsewhere (skimage's values).
    """
    f = np.asarray(image)
    if f.ndim != 2 or f.dtype.kind not in "iu":
        raise ValueError("h_maxima: a 2-D integer image is needed")
    h = int(h)
    if h < 1:
        raise ValueError("h_maxima: h must be >= 1")
    if f.size == 0:
        return np.zeros(f.shape, np.uint8)
    lo, hi = int(f.min()), int(f.max())
    if h > hi - lo:  # skimage: no h-maxima when h exceeds the image's range
        return np.zeros(f.shape, np.uint8)
    return _h_maxima(np.ascontiguousarray(f, dtype=np.int64), h, lo, hi)
