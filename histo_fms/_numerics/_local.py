"""Local operations evaluated only around sparse pixels, with whole-image values."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage as ndi

from ._edt import distance_map_float32, feature_transform


def sparse_crops(where: np.ndarray, reach: int
                 ) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """Crops around clusters of pixels for a filter whose output depends on ``reach`` px.

    Nearby pixels are grouped (so a crop serves many of them); each group's bounding
    box is grown by ``reach`` and clipped to the image. A filter with the image's
    border handling, applied to the crop, then gives the whole image's values at the
    group's pixels: they are at least ``reach`` from every crop edge that is not an
    image edge.

    Parameters
    ----------
    where : ndarray of bool, shape (Y, X)
        Pixels whose filtered values are needed.
    reach : int
        Radius (px) of the filter's support.

    Yields
    ------
    slices : tuple of slice
        The crop.
    own : ndarray of bool
        The group's pixels within the crop (crops of neighbouring groups may overlap:
        write back only these).
    """
    where = np.asarray(where, bool)
    if not where.any():
        return
    reach = max(0, int(reach))
    h, w = where.shape
    # group on a grid of b x b blocks (8-connected blocks that hold a pixel): one pass
    # over the image, where a dilation by ``reach`` took ``reach / 2`` passes. Any
    # grouping is exact (each crop is its group's box grown by ``reach``); this one
    # joins pixels less than about ``2 b`` apart, as the dilation did.
    b = max(1, (reach + 1) // 2)
    hh, ww = -(-h // b) * b, -(-w // b) * b
    padded = np.zeros((hh, ww), bool)
    padded[:h, :w] = where
    coarse = padded.reshape(hh // b, b, ww // b, b).any(axis=(1, 3))
    comp, _ = ndi.label(coarse, structure=np.ones((3, 3), bool))
    for k, sl in enumerate(ndi.find_objects(comp), start=1):
        if sl is None:
            continue
        y0, y1 = sl[0].start * b, min(h, sl[0].stop * b)
        x0, x1 = sl[1].start * b, min(w, sl[1].stop * b)
        sub = comp[sl] == k
        mine = np.repeat(np.repeat(sub, b, axis=0), b, axis=1)[:y1 - y0, :x1 - x0]
        own_box = where[y0:y1, x0:x1] & mine
        if not own_box.any():  # pragma: no cover - every block of a group holds a pixel
            continue
        r = np.flatnonzero(own_box.any(axis=1))
        c = np.flatnonzero(own_box.any(axis=0))
        own_box = own_box[r[0]:r[-1] + 1, c[0]:c[-1] + 1]
        y0, y1, x0, x1 = y0 + r[0], y0 + r[-1] + 1, x0 + c[0], x0 + c[-1] + 1
        ys = slice(max(0, y0 - reach), min(h, y1 + reach))
        xs = slice(max(0, x0 - reach), min(w, x1 + reach))
        own = np.zeros((ys.stop - ys.start, xs.stop - xs.start), bool)
        own[y0 - ys.start:y1 - ys.start, x0 - xs.start:x1 - xs.start] = own_box
        yield (ys, xs), own


def gaussian_radius(sigma: float, truncate: float = 4.0) -> int:
    """Support radius (px) of ``scipy.ndimage.gaussian_filter`` with this sigma.

    Parameters
    ----------
    sigma : float
        Gaussian sigma in pixels.
    truncate : float
        The filter's ``truncate``.

    Returns
    -------
    int
        Radius in pixels.
    """
    return int(truncate * float(sigma) + 0.5)


def nearest_feature(background: np.ndarray) -> np.ndarray:
    """Find the nearest False pixel of ``background`` (Euclidean feature transform).

    Parameters
    ----------
    background : ndarray of bool, shape (Y, X)
        True where the distance is measured from; False pixels are the features.

    Returns
    -------
    ndarray of int32, shape (2, Y, X)
        Row and column of each pixel's nearest feature: equal to
        ``scipy.ndimage.distance_transform_edt(background, return_distances=False,
        return_indices=True)`` (a compiled kernel, :mod:`._edt`).
    """
    return feature_transform(background)


def squared_distance(features: np.ndarray, rows: int = 256) -> np.ndarray:
    """Compute the squared distance (px², int32) of every pixel to its nearest feature.

    Computed from :func:`nearest_feature` in blocks of rows: 4 bytes per pixel, where
    ``scipy.ndimage.distance_transform_edt`` holds about 40 while converting.

    Parameters
    ----------
    features : ndarray of int32, shape (2, Y, X)
        Output of :func:`nearest_feature`.
    rows : int
        Rows per block.

    Returns
    -------
    ndarray of int32, shape (Y, X)
        Squared Euclidean distances.
    """
    _, h, w = features.shape
    out = np.empty((h, w), np.int32)
    cols = np.arange(w, dtype=np.int32)
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        dy = features[0, y0:y1] - np.arange(y0, y1, dtype=np.int32)[:, None]
        dx = features[1, y0:y1] - cols
        np.multiply(dy, dy, out=out[y0:y1])
        out[y0:y1] += dx * dx
    return out


def distance_float32(background: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.distance_transform_edt(background)`` in float32, in less memory.

    ``sqrt`` of the int32 squared distance rounded to float32 (:mod:`._edt`, without the
    feature index array).

    Parameters
    ----------
    background : ndarray of bool, shape (Y, X)
        True where the distance to the nearest False pixel is measured.

    Returns
    -------
    ndarray of float32
        Euclidean distances (0 on False pixels).
    """
    return distance_map_float32(background)
