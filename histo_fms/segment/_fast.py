"""Faster, bit-identical versions of the per-object steps of the classical segmentation.

The functions here give exactly the values of their references in
:mod:`histo_fms.segment._objects` and of the shape measures the library used before
(``tests/test_fast_identity.py`` keeps those and checks the fast ones against
the references and pins the segmentation end to end); they are faster because they

* skip the measures nobody reads: :func:`shape_measures` takes the acceptance limits of
  its caller and does not compute the solidity (a convex hull) or the roundness (two
  distance transforms) of an object that already fails a cheaper check;
* count convex-hull pixels in exact integer arithmetic (:func:`hull_pixel_count`)
  instead of rasterising a Qhull polygon, and fill holes (:func:`open_fill`,
  :class:`LevelOpenings`) with compiled kernels (:mod:`histo_fms._numerics`);
* open and close by discs below :data:`EDT_MIN_RADIUS` with running min / max
  filters (:mod:`histo_fms._numerics._morph`), larger ones with two compiled exact
  distance transforms in one call (:mod:`histo_fms._numerics._edt`), and
  open all threshold levels of an object at once (:class:`LevelOpenings`: one grey-level
  opening, as opening commutes with thresholds);
* work on tight crops: :func:`open_fill` opens and hole-fills a mask in the bounding
  box of its pixels (plus one background pixel), not in the whole object crop.
"""

from __future__ import annotations

import numpy as np

from .._numerics._edt import disc_closing as _disc_closing_edt
from .._numerics._edt import disc_opening as _disc_opening_edt
from .._numerics._hull import hull_pixel_count as _hull_pixel_count
from .._numerics._label import fill_small_holes, threshold_box
from .._numerics._label import label as _label
from .._numerics._moments import covariances, label_moments
from .._numerics._morph import disc_dilate, disc_erode, grey_disc_opening
from .._numerics._pieces import hull_counts as _piece_hull_counts
from .._numerics._pieces import level_labels as _level_labels
from .._numerics._pieces import opening_counts as _piece_opening_counts

#: numpy >= 2 compares a float32 array with a float64 scalar in float64 (NEP 50)
_NUMPY2 = int(np.__version__.split(".")[0]) >= 2

#: from this radius (px) on two compiled distance transforms beat the ~r running-filter
#: passes (both give the reference's values)
EDT_MIN_RADIUS = 2.0


def disc_opening(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """:func:`histo_fms.segment._objects.disc_opening` from running min / max filters.

    Parameters
    ----------
    mask : ndarray of bool
        Foreground.
    radius_px : float
        Disc radius in pixels (< 1: no-op).

    Returns
    -------
    ndarray of bool
        The opened mask (the reference's, bit for bit).
    """
    mask = np.asarray(mask, bool)
    if radius_px < 1 or not mask.any():
        return mask
    if radius_px >= EDT_MIN_RADIUS or mask.all():  # (no background: the reference's)
        return _disc_opening_edt(mask, radius_px)
    core = disc_erode(mask, radius_px)
    if not core.any():
        return np.zeros_like(mask)
    return disc_dilate(core, radius_px) & mask


def disc_closing(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """:func:`histo_fms.segment._objects.disc_closing` from running min / max filters.

    Parameters
    ----------
    mask : ndarray of bool
        Foreground.
    radius_px : float
        Disc radius in pixels (< 1: no-op).

    Returns
    -------
    ndarray of bool
        The closed mask (the reference's, bit for bit).
    """
    mask = np.asarray(mask, bool)
    if radius_px < 1 or not mask.any():
        return mask
    if radius_px >= EDT_MIN_RADIUS:
        return _disc_closing_edt(mask, radius_px)
    grown = disc_dilate(mask, radius_px)
    if grown.all():
        return grown
    return disc_erode(grown, radius_px)


def shape_measures(labels: np.ndarray, round_fraction: float = 0.2, *,
                   min_area: float | None = None, max_area: float | None = None,
                   min_axis_ratio: float | None = None, min_solidity: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Area (px), axis ratio, solidity and roundness of every label id.

    Solidity is the area over the convex hull's pixel count; roundness the fraction of
    an object left by a disc opening whose radius is ``round_fraction`` of the object's
    equivalent diameter (close to 1 for a soma, low for branching fibres and ragged
    tissue pieces). The axis ratio is the square root of the eigenvalue ratio of the
    pixel coordinates' covariance (plus 1/12 on the diagonal, a pixel's own spread),
    computed from exact integer moments in one compiled pass over the labels
    (:func:`histo_fms._numerics._moments.label_moments`). A measure is not computed for
    an object that already fails a cheaper limit given here
    (``tests/test_fast_identity.py`` keeps the reference that computes every measure
    of every object, and checks the values are equal).

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    round_fraction : float
        Radius of the roundness opening as a fraction of the equivalent diameter.
    min_area, max_area : float, optional
        An object with an area outside this range gets NaN axis ratio, solidity and
        roundness (not computed).
    min_axis_ratio : float, optional
        An object with a smaller axis ratio gets NaN solidity and roundness.
    min_solidity : float, optional
        An object with a smaller solidity gets NaN roundness.

    Returns
    -------
    area, axis_ratio, solidity, roundness : ndarray, shape (n + 1,)
        The reference's values wherever they are computed, NaN where a limit skipped
        them: a caller that accepts an object only when every measure passes its limit
        (NaN compares False) decides exactly as with the reference. Without limits
        every value is the reference's.
    """
    labels = np.asarray(labels)
    mom = label_moments(labels)  # one compiled pass: counts, boxes, moments
    n = mom.shape[0] - 1
    area = mom[:, 0].astype(float)
    area[0] = labels.size - mom[1:, 0].sum()  # as np.bincount (labels are >= 0)
    ratio = np.ones(n + 1)
    solid = np.ones(n + 1)
    rnd = np.ones(n + 1)
    if n == 0:
        return area, ratio, solid, rnd
    ids = np.arange(1, n + 1, dtype=np.int64)
    ratio[1:], solid[1:], rnd[1:] = piece_measures(
        labels, np.zeros(n, np.int64), ids, mom[1:], round_fraction, min_area=min_area,
        max_area=max_area, min_axis_ratio=min_axis_ratio, min_solidity=min_solidity)
    return area, ratio, solid, rnd


def piece_measures(labels: np.ndarray, level: np.ndarray, ids: np.ndarray, mom: np.ndarray,
                   round_fraction: float = 0.2, *, min_area: float | None = None,
                   max_area: float | None = None, min_axis_ratio: float | None = None,
                   min_solidity: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axis ratio, solidity and roundness of pieces of a stack of label images.

    The measures of :func:`shape_measures` (same gates, same values), for the pieces
    ``labels[level[j]] == ids[j]`` given their moments table rows: each step is one
    compiled call over all pieces (:mod:`histo_fms._numerics._pieces`) and one
    vectorised float operation where the reference did the same operation per piece.

    Parameters
    ----------
    labels : ndarray of int, shape (L, Y, X) or (Y, X)
        Label images.
    level, ids : ndarray of int, shape (m,)
        Level and id of each piece.
    mom : ndarray of int64, shape (m, 10)
        Each piece's row of :func:`histo_fms._numerics._moments.label_moments`.
    round_fraction, min_area, max_area, min_axis_ratio, min_solidity
        See :func:`shape_measures`.

    Returns
    -------
    axis_ratio, solidity, roundness : ndarray, shape (m,)
        As :func:`shape_measures` (NaN where a gate skipped a measure).
    """
    m = mom.shape[0]
    area = mom[:, 0].astype(float)
    ratio = np.ones(m)
    solid = np.ones(m)
    rnd = np.ones(m)
    if m == 0:
        return ratio, solid, rnd
    todo = np.ones(m, bool)
    if min_area is not None:
        todo &= area >= min_area
    if max_area is not None:
        todo &= area <= max_area
    skipped = ~todo
    ratio[skipped] = solid[skipped] = rnd[skipped] = np.nan
    todo &= area >= 3  # fewer pixels: axis ratio 1, solidity 1, roundness 1
    if not todo.any():
        return ratio, solid, rnd
    idx = np.flatnonzero(todo)
    cov = covariances(mom, idx)
    cov[:, 0, 0] += 1.0 / 12.0
    cov[:, 1, 1] += 1.0 / 12.0
    ev = np.linalg.eigvalsh(cov)  # same LAPACK call per matrix
    r = np.sqrt(np.maximum(ev[:, 0], 1e-12) / np.maximum(ev[:, 1], 1e-12))
    ratio[idx] = r
    if min_axis_ratio is not None:
        fail = ~(r >= min_axis_ratio)
        solid[idx[fail]] = rnd[idx[fail]] = np.nan
        idx = idx[~fail]
    if idx.size == 0:
        return ratio, solid, rnd
    boxes = mom[idx, 1:5]
    big = ((boxes[:, 1] - boxes[:, 0]) >= 2) & ((boxes[:, 3] - boxes[:, 2]) >= 2)
    s = np.ones(idx.size)
    hidx = idx[big]
    if hidx.size:  # convex_hull_image(labels[box] == k).sum(), all pieces in one call
        hull = _piece_hull_counts(labels, level[hidx], ids[hidx], boxes[big])
        s[big] = area[hidx] / np.maximum(hull.astype(float), 1.0)
    solid[idx] = s
    if min_solidity is not None:
        fail = ~(s >= min_solidity)
        rnd[idx[fail]] = np.nan
        idx = idx[~fail]
    if idx.size == 0:
        return ratio, solid, rnd
    rad = round_fraction * np.sqrt(4 * area[idx] / np.pi)
    use = rad >= 1
    fast = use & (rad >= EDT_MIN_RADIUS)
    if fast.any():  # the EDT opening of the padded piece, all pieces in one call
        j = idx[fast]
        r2 = np.array([float(v) ** 2 for v in rad[fast].tolist()])  # as the EDT opening's
        cnt = _piece_opening_counts(labels, level[j], ids[j], mom[j, 1:5], r2)
        rnd[j] = cnt.astype(float) / np.maximum(area[j], 1.0)
    stack = labels if labels.ndim == 3 else labels[None]
    for j, rk in zip(idx[use & ~fast].tolist(), rad[use & ~fast].tolist(), strict=True):
        y0, y1, x0, x1 = mom[j, 1:5].tolist()  # small discs: running filters
        pm = np.zeros((y1 - y0 + 2, x1 - x0 + 2), bool)  # np.pad(m, 1), faster
        pm[1:-1, 1:-1] = stack[level[j], y0:y1, x0:x1] == ids[j]
        rnd[j] = float(disc_opening(pm, rk).sum()) / max(float(area[j]), 1.0)
    return ratio, solid, rnd


def _tight_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding box of ``mask``'s pixels grown by one pixel (clipped), None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(0, int(rows[0]) - 1), min(h, int(rows[-1]) + 2)),
            slice(max(0, int(cols[0]) - 1), min(w, int(cols[-1]) + 2)))


def open_fill(mask: np.ndarray, radius_px: float, max_hole_px: float) -> np.ndarray:
    """``fill_small_holes(disc_opening(mask, radius_px), max_hole_px)`` in tight crops.

    A pixel's distance to the background, and the holes of a mask, are the same in the
    bounding box of the mask grown by one background pixel as in any larger array
    (the ring of background around the box is nearer than anything beyond it, and the
    outside is one component touching the edge); where the box meets the array edge it
    is that edge, as for the whole array.

    Parameters
    ----------
    mask : ndarray of bool
        Foreground.
    radius_px : float
        Disc radius of :func:`histo_fms.segment._objects.disc_opening`.
    max_hole_px : float
        Largest hole filled (:func:`histo_fms.segment._objects.fill_small_holes`).

    Returns
    -------
    ndarray of bool
        The opened, hole-filled mask (a new array of ``mask``'s shape).
    """
    mask = np.asarray(mask, bool)
    out = np.zeros(mask.shape, bool)
    box = _tight_box(mask)
    if box is None:
        return out  # nothing to open; the background touches the edge: no hole
    sub = disc_opening(mask[box], radius_px)  # this module's (the reference's values)
    box2 = _tight_box(sub)
    if box2 is None:
        return out
    sub = sub[box2]
    box = (slice(box[0].start + box2[0].start, box[0].start + box2[0].stop),
           slice(box[1].start + box2[1].start, box[1].start + box2[1].stop))
    out[box] = fill_small_holes(sub, max_hole_px)
    return out


def hull_pixel_count(mask: np.ndarray) -> int:
    """Count the pixels of ``skimage.morphology.convex_hull_image(mask)``.

    The hull of the pixels' edge midpoints (``offset_coordinates``), borders included,
    counted row by row in exact integer arithmetic (a compiled kernel,
    :func:`histo_fms._numerics._hull.hull_pixel_count`).

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X)
        A non-empty mask.

    Returns
    -------
    int
        Pixel centres inside or on the hull.
    """
    return _hull_pixel_count(mask)


class LevelOpenings:
    """:func:`open_fill` of ``obj & (contrast > t)`` for many levels ``t`` of one object.

    The disc opening of every threshold set is one grey-level opening of the object's
    contrast (computed once): ``opened(obj & (contrast > t)) == opening(f) > t`` with
    ``f`` the contrast on the object and ``-inf`` off it.

    Parameters
    ----------
    contrast : ndarray of float, shape (Y, X)
        The object's crop of the contrast.
    obj : ndarray of bool, same shape
        The object.
    radius_px : float
        Disc radius of the opening (< 1: none).
    """

    def __init__(self, contrast: np.ndarray, obj: np.ndarray, radius_px: float):
        self.contrast = np.asarray(contrast)
        self.obj = np.asarray(obj, bool)
        self.radius_px = float(radius_px)
        # an object filling its whole crop has no background: the reference, level by level
        self.opened = None
        if (self.radius_px >= 1 and not self.obj.all()
                and np.issubdtype(self.contrast.dtype, np.floating)):
            # NaN is in no threshold set (nan > t is False), as -inf
            inside = self.obj & ~np.isnan(self.contrast)
            f = np.where(inside, self.contrast, -np.inf).astype(self.contrast.dtype)
            self.opened = grey_disc_opening(f, self.radius_px)

    def __call__(self, t: float, max_hole_px: float) -> np.ndarray:
        """``fill_small_holes(disc_opening(obj & (contrast > t)), max_hole_px)``."""
        if self.opened is None:
            return open_fill(self.obj & (self.contrast > t), self.radius_px, max_hole_px)
        if (_NUMPY2 and type(t) is np.float64) or self.opened.dtype == np.float64:
            m, box = threshold_box(self.opened, t)  # opened > t and its box, one pass
        else:  # (a weak Python float compares in the array's dtype)
            m = self.opened > t
            box = _tight_box(m)
        if box is not None:  # (outside the box m is False already)
            m[box] = fill_small_holes(m[box], max_hole_px)
        return m

    def labels(self, levels: np.ndarray, max_hole_px: float) -> tuple[np.ndarray, np.ndarray]:
        """Labels of ``self(t, max_hole_px)`` for every level ``t`` of ``levels``.

        The compiled :func:`histo_fms._numerics._pieces.level_labels` where it computes
        the same masks (parameters and returns as there), one call per level otherwise.
        """
        levels = np.asarray(levels)
        if self.opened is not None and (
                (_NUMPY2 and levels.dtype == np.float64) or self.opened.dtype == np.float64):
            return _level_labels(self.opened, levels, max_hole_px)  # one compiled call
        labs = np.zeros((levels.size, *self.obj.shape), np.int32)
        counts = np.zeros(levels.size, np.int64)
        for i, t in enumerate(levels):
            labs[i], counts[i] = _label(self(t, max_hole_px))
        return labs, counts
