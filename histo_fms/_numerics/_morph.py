"""Binary erosion and dilation by a Euclidean disc, from 1-D running min / max filters.

A disc ``{(dy, dx): dy**2 + dx**2 <= r**2}`` is the union of centred rectangles (one
per distinct column height); an erosion by it is the AND of the erosions by the
rectangles, each a vertical and a horizontal running minimum (a dilation the OR of
running maxima); beyond the array edge the erosion sees foreground, the dilation
background. The result equals a
threshold of the exact Euclidean distance transform (``d**2 > r**2`` for the erosion,
``<= r**2`` for the dilation), in a few passes of C loops instead of a feature transform.
A compiled kernel (:func:`_disc_extreme`) takes the same min / max over the disc's
columns row by row in one call (min and max select values: the result is the same).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._jit import njit


def disc_columns(radius_px: float) -> list[tuple[int, int]]:
    """Columns ``(dx, h)`` of the disc of integer offsets with ``dy**2 + dx**2 <= r**2``.

    Parameters
    ----------
    radius_px : float
        Disc radius in pixels (``r**2`` compared as a float, as the distance-transform
        thresholds are).

    Returns
    -------
    list of (int, int)
        For every column ``dx`` of the disc, the largest ``h`` with
        ``h**2 + dx**2 <= r**2``.
    """
    r2 = float(radius_px) ** 2
    big = int(np.floor(np.sqrt(r2))) + 1
    while big * big > r2:
        big -= 1
    cols = []
    for dx in range(-big, big + 1):
        h = int(np.floor(np.sqrt(max(r2 - dx * dx, 0.0)))) + 1
        while h >= 0 and h * h + dx * dx > r2:
            h -= 1
        if h >= 0:
            cols.append((dx, h))
    return cols


def disc_rectangles(radius_px: float) -> list[tuple[int, int]]:
    """Split the disc into centred rectangles ``|dy| <= h``, ``|dx| <= a`` (a union).

    Parameters
    ----------
    radius_px : float
        Disc radius in pixels.

    Returns
    -------
    list of (int, int)
        ``(h, a)`` per distinct column height ``h`` of :func:`disc_columns`, ``a`` the
        farthest column still that high.
    """
    best: dict[int, int] = {}
    for dx, h in disc_columns(radius_px):
        best[h] = max(best.get(h, 0), abs(dx))
    return sorted(best.items(), key=lambda ah: ah[1])


@njit(cache=True, nogil=True)
def _disc_extreme(a: np.ndarray, heights: np.ndarray, erode: bool, cval, out: np.ndarray
                  ) -> None:
    """Min (erode) or max of ``a`` over the disc of column half-heights ``heights``.

    Row by row: the running extreme over ``a[y - k .. y + k, x]`` for every ``k`` up to
    the tallest column (one min / max per ``k``), then the extreme over the disc's
    columns ``dx`` of the one of height ``heights[dx + r]`` (``cval`` beyond the edge).
    """
    h, w = a.shape
    r = (heights.shape[0] - 1) // 2
    hmax = 0
    for j in range(heights.shape[0]):
        hmax = max(hmax, heights[j])
    buf = np.empty((hmax + 1, w + 2 * r), a.dtype)
    for k in range(hmax + 1):
        for x in range(r):
            buf[k, x] = cval
            buf[k, r + w + x] = cval
    for y in range(h):
        for x in range(w):
            buf[0, r + x] = a[y, x]
        for k in range(1, hmax + 1):
            up = y - k
            dn = y + k
            for x in range(w):
                v = buf[k - 1, r + x]
                u = a[up, x] if up >= 0 else cval
                d = a[dn, x] if dn < h else cval
                if erode:
                    v = min(v, min(u, d))
                else:
                    v = max(v, max(u, d))
                buf[k, r + x] = v
        for x in range(w):
            out[y, x] = buf[heights[0], x]
        for j in range(1, heights.shape[0]):
            row = buf[heights[j]]
            for x in range(w):
                v = row[x + j]
                if erode:
                    if v < out[y, x]:
                        out[y, x] = v
                elif v > out[y, x]:
                    out[y, x] = v


def _combine(a: np.ndarray, radius_px: float, erode: bool) -> np.ndarray:
    """Take the running min (erode) or max over the disc; beyond the edge: neutral."""
    if (a.ndim == 2 and a.size and (a.dtype == bool or (a.dtype in (np.float32, np.float64)
                                                       and not np.isnan(a).any()))):
        # the compiled kernel: min / max select, so any order gives these values
        heights = np.array([h for _, h in disc_columns(radius_px)], np.int64)
        if heights.size:
            cv = erode if a.dtype == bool else (np.inf if erode else -np.inf)
            out = np.empty(a.shape, a.dtype)
            _disc_extreme(np.ascontiguousarray(a), heights, erode, a.dtype.type(cv), out)
            return out
    filt = ndi.minimum_filter1d if erode else ndi.maximum_filter1d
    if a.dtype == bool:
        cval = erode
    else:
        cval = np.inf if erode else -np.inf
    comb = np.minimum if erode else np.maximum
    out = None
    for h, w in disc_rectangles(radius_px):
        v = filt(a, 2 * h + 1, axis=0, mode="constant", cval=cval) if h else a
        if w:
            v = filt(v, 2 * w + 1, axis=1, mode="constant", cval=cval)
        if out is None:
            out = v.copy() if v is a else v
        else:
            comb(out, v, out=out)
    return out


def grey_disc_opening(image: np.ndarray, radius_px: float) -> np.ndarray:
    """Grey-level opening by a flat Euclidean disc (max over the disc of its min).

    For every threshold ``t``, ``grey_disc_opening(f, r) > t`` is the binary opening
    (:func:`disc_erode`, then :func:`disc_dilate`) of ``f > t``: the values are those
    of ``f`` (min and max select, nothing is rounded), so the comparison is exact.

    Parameters
    ----------
    image : ndarray of float, shape (Y, X)
        Image (``-inf`` where a pixel belongs to no threshold set).
    radius_px : float
        Disc radius in pixels.

    Returns
    -------
    ndarray
        The opened image, same dtype.
    """
    a = np.asarray(image)
    return _combine(_combine(a, radius_px, True), radius_px, False)


def disc_erode(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Pixels whose disc of ``radius_px`` holds no False pixel of the array.

    Equals ``squared_distance(nearest_feature(mask)) > radius_px**2`` (pixels beyond
    the array edge are not background).

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        Foreground.
    radius_px : float
        Disc radius in pixels.

    Returns
    -------
    ndarray of bool
        The eroded mask.
    """
    return _combine(np.asarray(mask, bool), radius_px, True)


def disc_dilate(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Pixels within ``radius_px`` (Euclidean) of a True pixel of ``mask``.

    Equals ``squared_distance(nearest_feature(~mask)) <= radius_px**2`` for a mask
    with a True pixel.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        Foreground.
    radius_px : float
        Disc radius in pixels.

    Returns
    -------
    ndarray of bool
        The dilated mask.
    """
    return _combine(np.asarray(mask, bool), radius_px, False)


def within_depth(mask: np.ndarray, depth_px: float) -> np.ndarray:
    """``mask & (scipy.ndimage.distance_transform_edt(mask) <= depth_px)``, from filters.

    The float64 distance is ``sqrt`` of an integer squared distance, so the comparison
    is one on squared distances with the largest integer ``K`` whose ``sqrt`` is at
    most ``depth_px``; the pixels beyond are a disc erosion of radius ``sqrt(K)``.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        Foreground (with a background pixel; else the distance transform is used).
    depth_px : float
        Largest distance to the background kept.

    Returns
    -------
    ndarray of bool
        Foreground pixels within ``depth_px`` of the background.
    """
    mask = np.asarray(mask, bool)
    d = float(depth_px)
    if mask.all() or not mask.any() or not d >= 0:
        return mask & (ndi.distance_transform_edt(mask) <= d)
    k = int(np.floor(d * d))
    while np.sqrt(np.float64(k + 1)) <= d:
        k += 1
    while k >= 0 and np.sqrt(np.float64(k)) > d:
        k -= 1
    if k < 1:  # no foreground pixel (squared distance >= 1) is that near
        return mask & (ndi.distance_transform_edt(mask) <= d)
    return mask & ~disc_erode(mask, float(np.sqrt(k + 0.5)))
