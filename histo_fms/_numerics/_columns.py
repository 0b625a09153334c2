"""Column-wise kernels of the skin DEJ tracer (compiled, the same arithmetic as numpy).

:func:`step_edge` is the window-mean difference of running sums down each column,
and :func:`min_cost_path` the dynamic programme of a path crossing the columns, each in
one compiled pass instead of a numpy pass per row or column (the same float64
operations in the same order: bit-identical to the numpy formulations they replace).
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(cache=True, nogil=True)
def _step_edge(tex: np.ndarray, h: int, above_only: bool, out: np.ndarray) -> None:
    r, w = tex.shape
    n = r + 2 * h
    cs = np.zeros((n + 1, w), np.float64)
    for i in range(n):
        src = min(max(i - h, 0), r - 1)  # edge padding
        for c in range(w):
            cs[i + 1, c] = cs[i, c] + np.float64(tex[src, c])
    for y in range(r):
        i = y + h
        for c in range(w):
            above = (cs[i, c] - cs[i - h, c]) / h
            if above_only:
                out[y, c] = above
            else:
                below = (cs[i + 1 + h, c] - cs[i + 1, c]) / h
                out[y, c] = above - below


def step_edge(tex: np.ndarray, half_px: int, *, above_only: bool = False) -> np.ndarray:
    """Mean of ``tex`` over the ``half_px`` rows above minus over those below, float32.

    The image's first and last rows repeat beyond its ends. Equals, bit for bit, the
    numpy form: float64 cumulative sums of the edge-padded image down the columns,
    window differences divided by ``half_px``, cast to float32.

    Parameters
    ----------
    tex : ndarray, shape (R, C)
        Real image.
    half_px : int
        Window height (rows), at least 1.
    above_only : bool
        Return the mean over the rows above alone.

    Returns
    -------
    ndarray of float32, shape (R, C)
        The step (or the mean above).
    """
    a = np.ascontiguousarray(tex)
    if a.dtype.kind not in "fiub" or a.dtype.kind == "b":
        a = a.astype(np.float64)
    out = np.empty(a.shape, np.float32)
    if a.size:
        _step_edge(a, max(1, int(half_px)), bool(above_only), out)
    return out


@njit(cache=True, nogil=True)
def _min_cost_path(cst: np.ndarray, max_step: int, pen: np.ndarray, big: float,
                   back: np.ndarray) -> np.ndarray:
    r, c = cst.shape
    acc = np.empty(r, np.float64)
    nxt = np.empty(r, np.float64)
    for y in range(r):
        acc[y] = cst[y, 0]
    ns = 2 * max_step + 1
    for j in range(1, c):
        for y in range(r):
            # np.argmin over the shifts: the first minimum, or the first NaN
            best = 0.0
            kbest = -1
            for k in range(ns):
                s = k - max_step
                q = y + s
                v = (acc[q] if 0 <= q < r else big) + pen[k]
                if kbest < 0:
                    best, kbest = v, k
                    if np.isnan(v):
                        break
                elif np.isnan(v):
                    best, kbest = v, k
                    break
                elif v < best:
                    best, kbest = v, k
            nxt[y] = best + cst[y, j]
            back[y, j] = kbest - max_step
        for y in range(r):
            acc[y] = nxt[y]
    return acc


def min_cost_path(cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, max_step: int,
                  step_cost: float) -> np.ndarray:
    """Minimal-cost path across the columns of ``cost``, one row per column.

    Parameters
    ----------
    cost : ndarray of float, shape (R, C)
        Cost of the path passing through each pixel.
    lo, hi : ndarray of int, shape (C,)
        Allowed rows per column, ``lo <= row <= hi``.
    max_step : int
        Largest row change between neighbouring columns.
    step_cost : float
        Added cost per row of change between neighbouring columns.

    Returns
    -------
    ndarray of int64, shape (C,)
        Row of the path in each column (ties: the smallest shift, as ``np.argmin``).
    """
    r, c = cost.shape
    rows = np.arange(r)
    big = np.float64(1e18)
    allowed = (rows[:, None] >= lo[None]) & (rows[:, None] <= hi[None])
    cst = np.ascontiguousarray(np.where(allowed, cost, big), dtype=np.float64)
    shifts = np.arange(-max_step, max_step + 1)
    pen = np.ascontiguousarray(step_cost * np.abs(shifts), dtype=np.float64)
    back = np.zeros((r, c), np.int16)
    acc = _min_cost_path(cst, int(max_step), pen, float(big), back)
    path = np.zeros(c, np.int64)
    path[-1] = int(np.argmin(acc))
    for j in range(c - 1, 0, -1):
        # (clipped: where no row of a column is allowed the step may point off the image)
        path[j - 1] = min(max(path[j] + back[path[j], j], 0), r - 1)
    return np.clip(path, 0, r - 1)
