"""Connected components of 2-D masks (compiled kernels), as ``scipy.ndimage.label``.

One raster pass with a union-find forest over provisional labels, one pass resolving
them: components are numbered in the raster order of their first pixel, which is
scipy's numbering, so :func:`label` equals ``scipy.ndimage.label(mask)`` (4-connected)
or ``scipy.ndimage.label(mask, np.ones((3, 3)))`` (8-connected) exactly.
:func:`fill_small_holes` fills the 4-connected background components that touch no
array edge and have at most a given area, in the same two passes.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(cache=True, nogil=True)
def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@njit(cache=True, nogil=True)
def _union(parent: np.ndarray, a: int, b: int) -> int:
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra == rb:
        return ra
    if ra < rb:  # the older (smaller) label is the root
        parent[rb] = ra
        return ra
    parent[ra] = rb
    return rb


@njit(cache=True, nogil=True)
def _provisional(mask: np.ndarray, value: bool, eight: bool, lab: np.ndarray,
                 parent: np.ndarray) -> int:
    """Provisional labels of the pixels equal to ``value``; returns their count."""
    h, w = mask.shape
    n = 0
    for r in range(h):
        for c in range(w):
            if mask[r, c] != value:
                lab[r, c] = 0
                continue
            cur = 0
            if c > 0 and lab[r, c - 1]:
                cur = lab[r, c - 1]
            if r > 0:
                if lab[r - 1, c]:
                    cur = lab[r - 1, c] if cur == 0 else _union(parent, cur, lab[r - 1, c])
                if eight:
                    if c > 0 and lab[r - 1, c - 1]:
                        cur = (lab[r - 1, c - 1] if cur == 0
                               else _union(parent, cur, lab[r - 1, c - 1]))
                    if c + 1 < w and lab[r - 1, c + 1]:
                        cur = (lab[r - 1, c + 1] if cur == 0
                               else _union(parent, cur, lab[r - 1, c + 1]))
            if cur == 0:
                n += 1
                parent[n] = n
                cur = n
            lab[r, c] = cur
    return n


@njit(cache=True, nogil=True)
def _label(mask: np.ndarray, eight: bool, lab: np.ndarray) -> int:
    h, w = mask.shape
    parent = np.empty((h * w + 1) // 2 + 2, np.int32)  # at most one new label per 2 px
    n = _provisional(mask, True, eight, lab, parent)
    final = np.zeros(n + 1, np.int32)
    m = 0
    for r in range(h):
        for c in range(w):
            v = lab[r, c]
            if v:
                root = _find(parent, v)
                if final[root] == 0:
                    m += 1
                    final[root] = m
                lab[r, c] = final[root]
    return m


@njit(cache=True, nogil=True)
def _fill_holes(mask: np.ndarray, max_area: float, out: np.ndarray) -> None:
    h, w = mask.shape
    lab = np.empty((h, w), np.int32)
    parent = np.empty((h * w + 1) // 2 + 2, np.int32)
    n = _provisional(mask, False, False, lab, parent)
    size = np.zeros(n + 1, np.int64)
    edge = np.zeros(n + 1, np.bool_)
    for r in range(h):
        for c in range(w):
            v = lab[r, c]
            if v:
                root = _find(parent, v)
                lab[r, c] = root
                size[root] += 1
                if r == 0 or c == 0 or r == h - 1 or c == w - 1:
                    edge[root] = True
    for r in range(h):
        for c in range(w):
            v = lab[r, c]
            out[r, c] = mask[r, c] or (v != 0 and not edge[v] and size[v] <= max_area)


def _as_mask(mask: np.ndarray) -> np.ndarray:
    a = np.asarray(mask)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {a.shape}")
    if a.dtype != bool:
        a = a != 0
    return np.ascontiguousarray(a)


def label(mask: np.ndarray, connectivity: int = 1) -> tuple[np.ndarray, int]:
    """Label the connected components of a 2-D mask.

    Parameters
    ----------
    mask : ndarray, shape (Y, X)
        Foreground (non-zero).
    connectivity : int
        1: 4-connected (``scipy.ndimage.label``'s default structure); 2: 8-connected
        (``structure=np.ones((3, 3))``).

    Returns
    -------
    labels : ndarray of int32, shape (Y, X)
        Components numbered 1..n in the raster order of their first pixel (scipy's).
    n : int
        Number of components.
    """
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, not {connectivity!r}")
    m = _as_mask(mask)
    lab = np.empty(m.shape, np.int32)
    if m.size == 0:
        return lab, 0
    n = _label(m, connectivity == 2, lab)
    return lab, int(n)


def fill_small_holes(mask: np.ndarray, max_area_px: float) -> np.ndarray:
    """Fill the holes of a mask of at most ``max_area_px`` pixels.

    A hole is a 4-connected background component touching no array edge
    (``scipy.ndimage.label(~mask)``'s components, as
    :func:`histo_fms.segment._objects.fill_small_holes` takes them).

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        Foreground.
    max_area_px : float
        Largest hole filled, in pixels.

    Returns
    -------
    ndarray of bool
        The filled mask (a new array).
    """
    m = _as_mask(mask)
    out = np.empty(m.shape, bool)
    if m.size:
        _fill_holes(m, float(max_area_px), out)
    return out


@njit(cache=True, nogil=True)
def _threshold_box(values: np.ndarray, t: float, out: np.ndarray) -> tuple:
    h, w = values.shape
    y0, y1, x0, x1 = h, -1, w, -1
    for r in range(h):
        for c in range(w):
            v = np.float64(values[r, c]) > t
            out[r, c] = v
            if v:
                if r < y0:
                    y0 = r
                y1 = r
                if c < x0:
                    x0 = c
                if c > x1:
                    x1 = c
    return y0, y1, x0, x1


def threshold_box(values: np.ndarray, t: np.float64
                  ) -> tuple[np.ndarray, tuple[slice, slice] | None]:
    """``values > t`` (compared in float64) and its pixels' box grown by one (clipped).

    Parameters
    ----------
    values : ndarray of float, shape (Y, X)
        Image.
    t : float
        Level (``values`` and ``t`` compared as float64, as numpy does for a float64
        ``t``).

    Returns
    -------
    mask : ndarray of bool
        ``values > t``.
    box : tuple of slice or None
        Bounding box of the mask's pixels grown by one pixel, clipped; None if empty.
    """
    v = np.asarray(values)
    if v.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {v.shape}")
    out = np.empty(v.shape, bool)
    if v.size == 0:
        return out, None
    y0, y1, x0, x1 = _threshold_box(np.ascontiguousarray(v), float(t), out)
    if y1 < 0:
        return out, None
    h, w = v.shape
    return out, (slice(max(0, y0 - 1), min(h, y1 + 2)), slice(max(0, x0 - 1), min(w, x1 + 2)))
