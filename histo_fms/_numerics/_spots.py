"""The lipofuscin spot test evaluated in blocks around sparse pixels, in one compiled call.

The test (``histo_fms.drg._lipofuscin``): a pixel of the dark-subtracted, clipped channel
smoothed by a Gaussian (sigma 0.6 px, float32) is a spot when it exceeds ``min_contrast``
times its grey opening by a ``size`` x ``size`` square (floored) and the channel median.
Its value at a pixel depends on the pixels within ``reach = 2 * (size // 2) +`` the
Gaussian's radius only, so it is computed in the blocks of a fixed grid that hold a
wanted pixel, each grown by ``reach`` and clipped to the image (at the image edge the
filters' ``reflect`` extension is the image's): the whole image's values there, bit for
bit (the smoothing is :mod:`._gauss`'s scipy-equal arithmetic; min / max select values).
"""

from __future__ import annotations

import numpy as np

from ._gauss import _axis0, _axis1, _gaussian_kernel1d, _reflect
from ._jit import njit

#: edge (px) of the block grid
BLOCK = 32


@njit(cache=True, nogil=True)
def _line_extreme(line: np.ndarray, n: int, half: int, take_max: bool, g: np.ndarray,
                  hh: np.ndarray, res: np.ndarray) -> None:
    """Take the running min / max of width ``2 half + 1`` of ``line`` into ``res[:n]``.

    ``line`` holds ``n + 2 half`` values (the line with its reflected ends). Van Herk /
    Gil-Werman: the extreme of a block suffix and a block prefix; min and max select
    values, so any order gives the same result.
    """
    k = 2 * half + 1
    m = n + 2 * half
    for i in range(m):
        v = line[i]
        if i % k and ((g[i - 1] > v) if take_max else (g[i - 1] < v)):
            v = g[i - 1]
        g[i] = v
    for i in range(m - 1, -1, -1):
        v = line[i]
        if (i + 1) % k and i + 1 < m and ((hh[i + 1] > v) if take_max else (hh[i + 1] < v)):
            v = hh[i + 1]
        hh[i] = v
    for i in range(n):
        a = hh[i]
        b = g[i + 2 * half]
        res[i] = b if ((b > a) if take_max else (b < a)) else a


@njit(cache=True, nogil=True)
def _running(src: np.ndarray, half: int, take_max: bool, axis: int, out: np.ndarray) -> None:
    """Min (or max) over ``[-half, half]`` along ``axis`` with scipy's reflect extension."""
    h, w = src.shape
    n = h if axis == 0 else w
    lines = w if axis == 0 else h
    m = n + 2 * half
    line = np.empty(m, src.dtype)
    g = np.empty(m, src.dtype)
    hh = np.empty(m, src.dtype)
    res = np.empty(n, src.dtype)
    for j in range(lines):
        for p in range(m):
            q = _reflect(p - half, n)
            line[p] = src[q, j] if axis == 0 else src[j, q]
        _line_extreme(line, n, half, take_max, g, hh, res)
        for p in range(n):
            if axis == 0:
                out[p, j] = res[p]
            else:
                out[j, p] = res[p]


@njit(cache=True, nogil=True)
def _spots(channel, dark, where, half, reach, floor, median, contrast, left, block, out):
    h, w = channel.shape
    for by in range(0, h, block):
        for bx in range(0, w, block):
            y1, x1 = min(h, by + block), min(w, bx + block)
            hit = False
            for y in range(by, y1):
                for x in range(bx, x1):
                    if where[y, x]:
                        hit = True
                        break
                if hit:
                    break
            if not hit:
                continue
            cy0, cy1 = max(0, by - reach), min(h, y1 + reach)
            cx0, cx1 = max(0, bx - reach), min(w, x1 + reach)
            ch, cw = cy1 - cy0, cx1 - cx0
            d0 = np.empty((ch, cw), np.float32)
            for y in range(ch):
                for x in range(cw):
                    v = np.float32(channel[cy0 + y, cx0 + x]) - dark
                    d0[y, x] = v if not v < 0 else np.float32(0.0)
            d = np.empty((ch, cw), np.float32)
            _axis0(d0, left, 1.0, d)
            _axis1(d, left, 1.0, d)
            _running(d, half, False, 0, d0)
            er = np.empty((ch, cw), np.float32)
            _running(d0, half, False, 1, er)
            _running(er, half, True, 0, d0)
            _running(d0, half, True, 1, er)  # er: the opening
            for y in range(by, y1):
                for x in range(bx, x1):
                    if where[y, x]:
                        v = d[y - cy0, x - cx0]
                        o = er[y - cy0, x - cx0]
                        if not o >= floor:  # np.maximum(opened, floor): NaN stays NaN
                            o = o if o != o else floor
                        out[y, x] = (v > contrast * o) and (v > median)


def spot_test_at(channel: np.ndarray, dark_level: float, where: np.ndarray, size: int,
                 floor: float, median: float, min_contrast: float, sigma: float = 0.6,
                 block: int = BLOCK) -> np.ndarray:
    """Lipofuscin spot test at the ``where`` pixels (False elsewhere).

    Parameters
    ----------
    channel : ndarray, shape (Y, X)
        Raw channel.
    dark_level : float
        Offset subtracted (then clipped at 0) before smoothing.
    where : ndarray of bool, shape (Y, X)
        Pixels to test.
    size : int
        Odd edge of the square opening.
    floor, median, min_contrast : float
        Opening floor, median the spot must exceed, and contrast to the opening (all
        compared in float32, as numpy compares float32 images with Python floats).
    sigma : float
        Gaussian sigma (px) of the smoothing.
    block : int
        Edge of the block grid.

    Returns
    -------
    ndarray of bool
        ``where & (d > min_contrast * maximum(grey_opening(d, size), floor)) & (d >
        median)`` with ``d`` the smoothed channel, equal to the whole image's.
    """
    a = np.ascontiguousarray(channel)
    m = np.ascontiguousarray(where, dtype=bool)
    if a.ndim != 2 or m.shape != a.shape:
        raise ValueError(f"need a 2-D channel and a mask of its shape, got {a.shape}, "
                         f"{m.shape}")
    size = int(size)
    if size % 2 == 0 or size < 1:
        raise ValueError(f"size must be odd and positive, got {size}")
    out = np.zeros(a.shape, bool)
    if not m.any():
        return out
    if a.dtype == bool:
        a = a.view(np.uint8)
    radius = int(4.0 * float(sigma) + 0.5)
    weights = _gaussian_kernel1d(float(sigma), 0, radius)[::-1]
    left = np.ascontiguousarray(weights[weights.size // 2::-1], dtype=np.float64)
    half = size // 2
    _spots(a, np.float32(dark_level), m, half, 2 * half + radius, np.float32(floor),
           np.float32(median), np.float32(min_contrast), left, int(block), out)
    return out
