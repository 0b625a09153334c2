"""Pixel count of the convex hull of a 2-D mask, in exact integer arithmetic (compiled).

The count of ``skimage.morphology.convex_hull_image(mask)``: the hull of the pixels'
edge midpoints (the four points of each pixel's diamond, coordinates doubled so that
they are integers), counted row by row. Its left outline is the lower convex envelope
(monotone chain) of the rows' leftmost diamond points, its right outline the upper
envelope of the rightmost ones; a pixel centre counts when it lies inside or on both
(exact rational comparisons: ceiling and floor of integer quotients).
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(cache=True, nogil=True)
def _envelope(ys: np.ndarray, xs: np.ndarray, n: int, sgn: int, hy: np.ndarray,
              hx: np.ndarray) -> int:
    """Convex chain of the points ``(ys, xs)[:n]`` (sorted by y); returns its length."""
    m = 0
    for i in range(n):
        y = ys[i]
        x = xs[i]
        while m >= 2:
            cross = (hy[m - 1] - hy[m - 2]) * (x - hx[m - 2]) - (hx[m - 1] - hx[m - 2]) * (
                y - hy[m - 2])
            if sgn * cross <= 0:
                m -= 1
            else:
                break
        hy[m] = y
        hx[m] = x
        m += 1
    return m


@njit(cache=True, nogil=True)
def _hull_count(mask: np.ndarray) -> int:
    h, w = mask.shape
    c0 = np.full(h, -1, np.int64)
    c1 = np.full(h, -1, np.int64)
    for r in range(h):
        for c in range(w):
            if mask[r, c]:
                if c0[r] < 0:
                    c0[r] = c
                c1[r] = c
    return _hull_rows(c0, c1, w)


@njit(cache=True, nogil=True)
def _hull_rows(c0: np.ndarray, c1: np.ndarray, w: int) -> int:
    """Hull pixel count of a mask of width ``w`` from its rows' first / last columns.

    ``c0[r] = c1[r] = -1`` marks an empty row.
    """
    h = c0.shape[0]
    r0 = -1
    r1 = -1
    for r in range(h):
        if c0[r] >= 0:
            if r0 < 0:
                r0 = r
            r1 = r
    if r0 < 0:
        return 0
    # slot k is the doubled row y = 2 r0 - 1 + k; a pixel (r, c) has the diamond points
    # (2r, 2c -+ 1) and (2r -+ 1, 2c)
    n = 2 * (r1 - r0) + 3
    big = 4 * (w + 2)
    lo = np.full(n, big, np.int64)
    hi = np.full(n, -big, np.int64)
    for r in range(r0, r1 + 1):
        if c0[r] < 0:
            continue
        i = 2 * (r - r0)
        lo[i + 1] = min(lo[i + 1], 2 * c0[r] - 1)
        hi[i + 1] = max(hi[i + 1], 2 * c1[r] + 1)
        for k in (i, i + 2):
            lo[k] = min(lo[k], 2 * c0[r])
            hi[k] = max(hi[k], 2 * c1[r])
    ys = np.empty(n, np.int64)
    xl = np.empty(n, np.int64)
    xr = np.empty(n, np.int64)
    m = 0
    for k in range(n):
        if lo[k] < big:
            ys[m] = 2 * r0 - 1 + k
            xl[m] = lo[k]
            xr[m] = hi[k]
            m += 1
    ly = np.empty(m, np.int64)
    lx = np.empty(m, np.int64)
    ry = np.empty(m, np.int64)
    rx = np.empty(m, np.int64)
    nl = _envelope(ys, xl, m, 1, ly, lx)
    nr = _envelope(ys, xr, m, -1, ry, rx)
    total = 0
    jl = 1
    jr = 1
    for r in range(r0, r1 + 1):
        yq = 2 * r
        # x of the left chain at yq as num / den (den > 0), likewise the right one
        if nl == 1:
            numl, denl = lx[0], 1
        else:
            while jl < nl - 1 and ly[jl] < yq:
                jl += 1
            d = ly[jl] - ly[jl - 1]
            numl, denl = lx[jl - 1] * d + (lx[jl] - lx[jl - 1]) * (yq - ly[jl - 1]), d
        if nr == 1:
            numr, denr = rx[0], 1
        else:
            while jr < nr - 1 and ry[jr] < yq:
                jr += 1
            d = ry[jr] - ry[jr - 1]
            numr, denr = rx[jr - 1] * d + (rx[jr] - rx[jr - 1]) * (yq - ry[jr - 1]), d
        left = -((-numl) // (2 * denl))  # ceil(x_left / 2)
        right = numr // (2 * denr)  # floor(x_right / 2)
        left = max(left, 0)
        right = min(right, w - 1)
        if right >= left:
            total += right - left + 1
    return total


def hull_pixel_count(mask: np.ndarray) -> int:
    """Count the pixels of ``skimage.morphology.convex_hull_image(mask)``.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        A mask (0 for an empty one).

    Returns
    -------
    int
        Pixel centres inside or on the hull.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {m.shape}")
    if m.dtype != bool:
        m = m != 0
    return int(_hull_count(np.ascontiguousarray(m)))
