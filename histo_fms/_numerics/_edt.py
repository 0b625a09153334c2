"""Exact Euclidean feature and distance transforms of 2-D masks (compiled kernels).

The same result as ``scipy.ndimage.distance_transform_edt(background,
return_indices=True)``, tie-breaking included: a column pass finds, for every pixel,
the nearest feature pixel of its column (the upper one of two equally near), and a row
pass keeps the lower envelope of those candidates' distance parabolas (Maurer et al.,
2003) with scipy's integer comparisons, so that of two equally near features the one
of the smaller column wins. All arithmetic is on integers, exactly.

Two passes over the image in cache order (the column pass sweeps rows, not columns),
with no int8 copy of the mask and, for the distances, no (2, Y, X) index array.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit(cache=True, nogil=True)
def _column_pass(bg: np.ndarray, fr: np.ndarray) -> None:
    """Nearest feature (False) row of every pixel's column, -1 if the column has none."""
    h, w = bg.shape
    last = np.full(w, -1, np.int64)
    for r in range(h):
        for c in range(w):
            if not bg[r, c]:
                last[c] = r
            fr[r, c] = last[c]
    nxt = np.full(w, -1, np.int64)
    for r in range(h - 1, -1, -1):
        for c in range(w):
            if not bg[r, c]:
                nxt[c] = r
            dn = nxt[c]
            if dn >= 0:
                up = fr[r, c]
                if up < 0 or dn - r < r - up:
                    fr[r, c] = dn


@njit(cache=True, nogil=True)
def _row_pass(fr_row: np.ndarray, r: int, g: np.ndarray, gy: np.ndarray,
              best: np.ndarray) -> bool:
    """Column of the nearest feature of every pixel of row ``r`` (False: no feature).

    ``g`` / ``gy``: work arrays (the envelope's columns and their squared row offsets).
    """
    w = fr_row.shape[0]
    n = -1
    for i in range(w):
        fi = fr_row[i]
        if fi < 0:
            continue
        wr = (fi - r) * (fi - r)
        while n >= 1:
            i1 = g[n]
            i2 = g[n - 1]
            a = i1 - i2
            b = i - i1
            c = a + b
            if c * gy[n] - b * gy[n - 1] - a * wr - a * b * c <= 0:
                break
            n -= 1
        n += 1
        g[n] = i
        gy[n] = wr
    if n < 0:
        return False
    k = 0
    t1 = g[0]
    d1 = gy[0] + t1 * t1
    for i in range(w):
        t1 = g[k] - i
        d1 = gy[k] + t1 * t1
        while k < n:
            t2 = g[k + 1] - i
            d2 = gy[k + 1] + t2 * t2
            if d1 <= d2:
                break
            d1 = d2
            k += 1
        best[i] = g[k]
    return True


@njit(cache=True, nogil=True)
def _features(bg: np.ndarray, out: np.ndarray) -> None:
    h, w = bg.shape
    fr = np.empty((h, w), np.int32)
    _column_pass(bg, fr)
    g = np.empty(w, np.int64)
    gy = np.empty(w, np.int64)
    best = np.empty(w, np.int64)
    for r in range(h):
        row = fr[r]
        if _row_pass(row, r, g, gy, best):
            for i in range(w):
                out[0, r, i] = row[best[i]]
                out[1, r, i] = best[i]
        else:  # no feature in the image: scipy leaves (-1, 0)
            for i in range(w):
                out[0, r, i] = -1
                out[1, r, i] = 0


@njit(cache=True, nogil=True)
def _squared(bg: np.ndarray, out: np.ndarray) -> None:
    h, w = bg.shape
    fr = np.empty((h, w), np.int32)
    _column_pass(bg, fr)
    g = np.empty(w, np.int64)
    gy = np.empty(w, np.int64)
    best = np.empty(w, np.int64)
    for r in range(h):
        row = fr[r]
        if _row_pass(row, r, g, gy, best):
            for i in range(w):
                dy = row[best[i]] - r
                dx = best[i] - i
                out[r, i] = dy * dy + dx * dx
        else:  # no feature: the distance to scipy's (-1, 0)
            for i in range(w):
                out[r, i] = (r + 1) * (r + 1) + i * i


@njit(cache=True, nogil=True)
def _sqrt32(d2: np.ndarray, out: np.ndarray) -> None:
    h, w = d2.shape
    for r in range(h):
        for i in range(w):
            out[r, i] = np.sqrt(np.float32(d2[r, i]))


def _as_mask(background: np.ndarray) -> np.ndarray:
    a = np.asarray(background)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {a.shape}")
    if a.dtype != bool:
        a = a != 0
    return np.ascontiguousarray(a)


def feature_transform(background: np.ndarray) -> np.ndarray:
    """Row and column of every pixel's nearest False pixel (Euclidean).

    Parameters
    ----------
    background : ndarray, shape (Y, X)
        True (non-zero) where the distance is measured from; False pixels are the
        features.

    Returns
    -------
    ndarray of int32, shape (2, Y, X)
        Equal to ``scipy.ndimage.distance_transform_edt(background,
        return_distances=False, return_indices=True)``.
    """
    bg = _as_mask(background)
    out = np.empty((2, *bg.shape), np.int32)
    if bg.size:
        _features(bg, out)
    return out


def squared_distance_map(background: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance (px², int32) of every pixel to the nearest False pixel.

    Parameters
    ----------
    background : ndarray, shape (Y, X)
        True (non-zero) where the distance is measured from.

    Returns
    -------
    ndarray of int32, shape (Y, X)
        The squared distances of :func:`feature_transform`'s features (0 on False
        pixels), without the index array.
    """
    bg = _as_mask(background)
    out = np.empty(bg.shape, np.int32)
    if bg.size:
        _squared(bg, out)
    return out


def distance_map_float32(background: np.ndarray) -> np.ndarray:
    """``sqrt`` of :func:`squared_distance_map` in float32 (the int32 rounded to float32).

    Parameters
    ----------
    background : ndarray, shape (Y, X)
        True (non-zero) where the distance is measured from.

    Returns
    -------
    ndarray of float32, shape (Y, X)
        Euclidean distances.
    """
    d2 = squared_distance_map(background)
    out = np.empty(d2.shape, np.float32)
    if d2.size:
        _sqrt32(d2, out)
    return out


@njit(cache=True, nogil=True)
def _opening(mask: np.ndarray, r2: float, out: np.ndarray) -> None:
    h, w = mask.shape
    d2 = np.empty((h, w), np.int32)
    _squared(mask, d2)
    core = np.empty((h, w), np.bool_)
    some = False
    for r in range(h):
        for c in range(w):
            v = d2[r, c] > r2
            core[r, c] = not v  # the background of the core
            some |= v
    if not some:
        out[:, :] = False
        return
    _squared(core, d2)
    for r in range(h):
        for c in range(w):
            out[r, c] = d2[r, c] <= r2 and mask[r, c]


@njit(cache=True, nogil=True)
def _closing(mask: np.ndarray, r2: float, out: np.ndarray) -> None:
    h, w = mask.shape
    d2 = np.empty((h, w), np.int32)
    inv = np.empty((h, w), np.bool_)
    for r in range(h):
        for c in range(w):
            inv[r, c] = not mask[r, c]
    _squared(inv, d2)
    full = True
    for r in range(h):
        for c in range(w):
            v = d2[r, c] <= r2
            out[r, c] = v
            full &= v
    if full:
        return
    _squared(out, d2)
    for r in range(h):
        for c in range(w):
            out[r, c] = not d2[r, c] <= r2


def disc_opening(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Binary opening by a Euclidean disc, from two exact distance transforms.

    ``core = d2(mask) > r**2``, then the pixels of ``mask`` within ``r`` of the core
    (squared distances compared with ``r**2`` as a float), in one compiled call.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        Foreground (with a True pixel).
    radius_px : float
        Disc radius in pixels.

    Returns
    -------
    ndarray of bool
        The opened mask.
    """
    m = _as_mask(mask)
    out = np.empty(m.shape, bool)
    if m.size:
        _opening(m, float(radius_px) ** 2, out)
    return out


def disc_closing(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Binary closing by a Euclidean disc, from two exact distance transforms.

    ``grown = d2(~mask) <= r**2``; unless that is the whole array, the pixels farther
    than ``r`` from every pixel outside ``grown`` are kept (the outside of the array
    counts as background), in one compiled call.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        Foreground (with a True pixel).
    radius_px : float
        Disc radius in pixels.

    Returns
    -------
    ndarray of bool
        The closed mask.
    """
    m = _as_mask(mask)
    out = np.empty(m.shape, bool)
    if m.size:
        _closing(m, float(radius_px) ** 2, out)
    return out


def distance_transform_edt(background: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.distance_transform_edt(background)`` (2-D, unit sampling), compiled.

    scipy's distances are ``sqrt`` of the float64 sum of the integer squared offsets to
    the nearest feature: exactly ``sqrt(float64(squared_distance_map(background)))``,
    whichever of two equally near features is taken. A mask without a False pixel (no
    feature) is passed to scipy itself.

    Parameters
    ----------
    background : ndarray, shape (Y, X)
        True (non-zero) where the distance to the nearest False pixel is measured.

    Returns
    -------
    ndarray of float64, shape (Y, X)
        scipy's distances, bit for bit.
    """
    bg = _as_mask(background)
    if bg.size == 0 or bg.all():
        from scipy import ndimage as ndi

        return ndi.distance_transform_edt(bg)
    return np.sqrt(squared_distance_map(bg).astype(np.float64))
