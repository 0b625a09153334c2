"""Per-object shape measures and morphological steps used to reject non-neuron objects."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as cc_label

from .._numerics._edt import squared_distance_map
from .._numerics._label import fill_small_holes as _fill_holes


def disc_opening(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Binary opening by a Euclidean disc, via two distance transforms.

    Removes every part of ``mask`` into which a disc of ``radius_px`` does not fit
    (thin fibres, puncta) and keeps the rest unchanged. A pixel's value depends only
    on pixels within ``2 * radius_px``.

    Parameters
    ----------
    mask : ndarray of bool
        Foreground.
    radius_px : float
        Disc radius in pixels (< 1: no-op).

    Returns
    -------
    ndarray of bool
        The opened mask.
    """
    mask = np.asarray(mask, bool)
    if radius_px < 1 or not mask.any():
        return mask
    r2 = float(radius_px) ** 2
    core = squared_distance_map(mask) > r2
    if not core.any():
        return np.zeros_like(mask)
    return (squared_distance_map(~core) <= r2) & mask


def split_pieces_keep_largest(labels: np.ndarray) -> np.ndarray:
    """Keep only the largest 4-connected piece of each label.

    Parameters
    ----------
    labels : ndarray of int
        Label image.

    Returns
    -------
    ndarray of int32
        Same ids, each reduced to its largest connected piece (ties: first in raster
        order).
    """
    labels = np.asarray(labels, np.int32)
    pieces = cc_label(labels, background=0, connectivity=1)
    npieces = int(pieces.max())
    if npieces == 0:
        return labels
    flat_p = pieces.ravel()
    sel = flat_p > 0
    owner = np.zeros(npieces + 1, np.int64)
    owner[flat_p[sel]] = labels.ravel()[sel]
    size = np.bincount(flat_p, minlength=npieces + 1).astype(np.int64)
    size[0] = 0
    order = np.lexsort((np.arange(npieces + 1), -size))  # big first, then first piece
    best = np.zeros(int(labels.max()) + 1, np.int64)
    seen = np.zeros(int(labels.max()) + 1, bool)
    for k in order.tolist():
        if k == 0:
            continue
        o = owner[k]
        if not seen[o]:
            seen[o] = True
            best[o] = k
    keep = np.zeros(npieces + 1, bool)
    keep[best[best > 0]] = True
    return np.where(keep[pieces], labels, 0).astype(np.int32)


def split_pieces(labels: np.ndarray, min_area_px: float) -> np.ndarray:
    """Give each 4-connected piece of at least ``min_area_px`` its own id; drop the rest.

    The largest piece of each label keeps the label's id (whatever its size, as in
    :func:`split_pieces_keep_largest`); every other piece of at least ``min_area_px``
    pixels becomes a new object (ids after the last, in raster order of the pieces);
    smaller pieces are dropped. An object that fell apart into several soma-sized
    pieces (two somata joined by a dim bridge that the outline refinement removed)
    thus keeps all of them.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    min_area_px : float
        Smallest area of a piece kept besides the largest.

    Returns
    -------
    ndarray of int32
        Relabelled image.
    """
    labels = np.asarray(labels, np.int32)
    largest = split_pieces_keep_largest(labels)
    rest = np.where(largest == 0, labels, 0)
    if not rest.any():
        return largest
    pieces = cc_label(rest, background=0, connectivity=1)
    size = np.bincount(pieces.ravel())
    size[0] = 0
    big = np.flatnonzero(size >= min_area_px)
    if big.size == 0:
        return largest
    ids = np.zeros(size.size, np.int32)
    ids[big] = int(labels.max()) + np.arange(1, big.size + 1, dtype=np.int32)
    return np.where(ids[pieces] > 0, ids[pieces], largest).astype(np.int32)


def disc_closing(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Binary closing by a Euclidean disc (two distance transforms).

    Parameters
    ----------
    mask : ndarray of bool
        Foreground.
    radius_px : float
        Disc radius in pixels (< 1: no-op).

    Returns
    -------
    ndarray of bool
        The closed mask (pixels near the array edge are closed as if the outside
        were foreground-free).
    """
    mask = np.asarray(mask, bool)
    if radius_px < 1 or not mask.any():
        return mask
    r2 = float(radius_px) ** 2
    grown = squared_distance_map(~mask) <= r2
    if grown.all():
        return grown
    return ~(squared_distance_map(grown) <= r2)


def close_objects(labels: np.ndarray, radius_px: float, max_hole_px: float,
                  relative: float = 0.0) -> np.ndarray:
    """Fill each object's holes and the gaps narrower than twice the closing radius.

    Every object is disc-closed on its own (in its bounding box), its holes up to
    ``max_hole_px`` filled, and the added pixels that belong to no other object
    given to it: an eccentric nucleus that reaches the outline becomes part of its
    soma, and neighbours are never joined. Holes shared by several objects go to
    the first (lowest id) that claims them.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    radius_px : float
        Smallest closing radius in pixels (< 1: holes are filled without closing).
    max_hole_px : float
        Largest hole filled, in pixels.
    relative : float
        The closing radius of an object is at least this fraction of its equivalent
        diameter (a nucleus, and the gap through which it reaches the outline, scale
        with the soma).

    Returns
    -------
    ndarray of int32
        The filled labels.
    """
    from ._fast import disc_closing as _fast_disc_closing

    labels = np.asarray(labels, np.int32)
    out = labels.copy()
    h, w = labels.shape
    area = np.bincount(labels.ravel())
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        rad = max(float(radius_px), relative * np.sqrt(4 * area[k] / np.pi))
        pad = int(np.ceil(rad)) + 2
        y0, y1 = max(0, sl[0].start - pad), min(h, sl[0].stop + pad)
        x0, x1 = max(0, sl[1].start - pad), min(w, sl[1].stop + pad)
        sub = labels[y0:y1, x0:x1]
        m = sub == k
        # disc_closing and fill_small_holes, compiled (the same pixels, bit for bit)
        closed = _fast_disc_closing(m, rad) if rad >= 1 else m
        add = (_fill_holes(closed, max_hole_px) & ~m & (sub == 0)
               & (out[y0:y1, x0:x1] == 0))
        out[y0:y1, x0:x1][add] = k
    return out


def fill_small_holes(mask: np.ndarray, max_area_px: float) -> np.ndarray:
    """Fill holes (background components not touching the border) up to an area.

    Unlike :func:`scipy.ndimage.binary_fill_holes` the result is local: a hole is at
    most ``max_area_px`` pixels, so whether a pixel is filled depends only on pixels
    within that distance (the gap between a ring of touching neurons is not a hole).

    Parameters
    ----------
    mask : ndarray of bool
        Foreground.
    max_area_px : float
        Largest hole filled, in pixels.

    Returns
    -------
    ndarray of bool
        The filled mask.
    """
    bg, n = ndi.label(~mask)
    if n == 0:
        return mask
    size = np.bincount(bg.ravel())
    fill = size <= max_area_px
    fill[0] = False
    for edge in (bg[0], bg[-1], bg[:, 0], bg[:, -1]):
        fill[edge] = False
    return mask | fill[bg]
