"""Local operations evaluated only around sparse pixels, with whole-image values."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage as ndi


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
    grown = ndi.binary_dilation(where, iterations=reach // 2 + 1)
    comp, _ = ndi.label(grown)
    h, w = where.shape
    for k, sl in enumerate(ndi.find_objects(comp), start=1):
        if sl is None:
            continue
        ys = slice(max(0, sl[0].start - reach), min(h, sl[0].stop + reach))
        xs = slice(max(0, sl[1].start - reach), min(w, sl[1].stop + reach))
        yield (ys, xs), where[ys, xs] & (comp[ys, xs] == k)


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
        Row and column of each pixel's nearest feature (scipy's tie-breaking).
    """
    return ndi.distance_transform_edt(np.asarray(background, bool), return_distances=False,
                                      return_indices=True)


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

    Parameters
    ----------
    background : ndarray of bool, shape (Y, X)
        True where the distance to the nearest False pixel is measured.

    Returns
    -------
    ndarray of float32
        Euclidean distances (0 on False pixels).
    """
    d2 = squared_distance(nearest_feature(background))
    out = d2.astype(np.float32)
    np.sqrt(out, out=out)
    return out
