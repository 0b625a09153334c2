"""Somata inside merged objects: the threshold levels at which a region looks like a soma.

An object that is too large, too ragged or not convex enough to be one soma (two or
more somata pressed together without a visible sheath line, or somata fused with the
axon-rich interstitium around them) is thresholded again at a series of levels of its
own neuron-channel contrast. The connected pieces at each level form a tree (a piece at
a higher level lies inside one at a lower level); a piece is *soma-like* when its area,
solidity, roundness and axis ratio are those of a soma. Walking the tree from the top,
a soma-like piece replaces the soma-like pieces it contains, unless it contains two or
more of them and is itself not convex (a neck between them): then they stay apart. A
single elongated soma is convex and is therefore never cut; two touching somata are
cut only where each is a soma on its own at some level.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from .._numerics._cityblock import binary_dilation
from .._numerics._local import distance_float32
from .._numerics._pieces import stack_moments
from ._fast import LevelOpenings, piece_measures

#: most pixels of threshold-level labels held at once by :func:`soma_regions`
_STACK_PX = 1 << 24


def soma_regions(contrast: np.ndarray, obj: np.ndarray, *, min_area_px: float,
                 max_area_px: float, open_px: float, min_solidity: float,
                 min_roundness: float, min_axis_ratio: float, split_solidity: float,
                 ring_px: float = 0.0, prominence: float = 0.0,
                 quantiles: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
                 ) -> np.ndarray:
    """Soma-like regions of one object, chosen over threshold levels of its contrast.

    Parameters
    ----------
    contrast : ndarray of float, shape (Y, X)
        Neuron-channel local contrast (a crop around the object).
    obj : ndarray of bool, same shape
        The object.
    min_area_px, max_area_px : float
        Area range of a soma.
    open_px : float
        Radius (px) of the disc opening applied at every level (fibres, puncta).
    min_solidity, min_roundness, min_axis_ratio : float
        Shape a region needs to count as a soma (see
        :func:`histo_fms.segment._fast.shape_measures`).
    split_solidity : float
        A soma-like region containing two or more soma-like regions is kept whole
        only if its solidity is at least this (convex: no neck between them).
    ring_px, prominence : float
        A region that does not fill the object is soma-like only if the object's
        median contrast within ``ring_px`` around it is below ``1 - prominence`` times
        the region's own (a soma stands out of what it is fused with; a piece of a
        uniform fibre bundle cut out by noise at a high level does not).
    quantiles : tuple of float
        Levels, as quantiles of the object's contrast (each keeps about ``1 - q`` of
        its area).

    Returns
    -------
    ndarray of int32
        The chosen regions, labelled 1..m (0 elsewhere); disjoint.
    """
    obj = np.asarray(obj, bool)
    sel = np.zeros(obj.shape, np.int32)
    if obj.sum() < min_area_px:
        return sel
    vals = contrast[obj]
    q = np.quantile(vals, quantiles)
    lo, hi = float(q[0]), float(np.quantile(vals, 0.99))
    # quantile levels (area fractions) and evenly spaced levels (a small soma in a
    # large bright object separates only near the top of its range)
    levels = np.unique(np.concatenate([q, lo + (hi - lo) * np.linspace(0, 0.9, 10)]))
    nsel = 0
    opened = LevelOpenings(contrast, obj, open_px)  # disc_opening + fill_small_holes, fast
    order = levels[::-1]  # highest level first: children before parents
    step = max(1, _STACK_PX // max(obj.size, 1))  # levels labelled at once (memory bound)
    r = int(round(ring_px))
    for c0 in range(0, order.size, step):
        # fill_small_holes(disc_opening(obj & (contrast > t))) of each level, labelled,
        # and the shape measures of all their pieces: a few compiled calls
        labs, counts = opened.labels(order[c0:c0 + step], max_area_px)
        mom, lev, ids = stack_moments(labs, counts)
        area = mom[:, 0].astype(float)
        ratio, solid, rnd = piece_measures(labs, lev, ids, mom, min_area=min_area_px,
                                           max_area=max_area_px,
                                           min_axis_ratio=min_axis_ratio,
                                           min_solidity=min_solidity)
        good = ((area >= min_area_px) & (area <= max_area_px) & (solid >= min_solidity)
                & (rnd >= min_roundness) & (ratio >= min_axis_ratio))
        ends = np.cumsum(counts)
        for li in np.unique(lev[good]).tolist():
            n = int(counts[li])
            lo = int(ends[li]) - n
            ok = np.zeros(n + 1, bool)
            ok[1:] = good[lo:lo + n]
            so = np.ones(n + 1)
            so[1:] = solid[lo:lo + n]
            lab = labs[li]
            # selected regions inside each piece (levels are nested: one pixel tells)
            both = (lab > 0) & (sel > 0)
            pairs = np.unique(lab[both].astype(np.int64) * (nsel + 1) + sel[both])
            pk, sk = np.divmod(pairs, nsel + 1)
            nchild = np.bincount(pk, minlength=n + 1)
            for k in np.flatnonzero(ok).tolist():
                if nchild[k] >= 2 and so[k] < split_solidity:
                    continue  # a neck between somata that are somata on their own
                y0, y1, x0, x1 = mom[lo + k - 1, 1:5].tolist()
                if prominence > 0 and ring_px >= 1:
                    # the ring round the piece lies within ``r`` of its box
                    by = slice(max(0, y0 - r - 1), min(lab.shape[0], y1 + r + 1))
                    bx = slice(max(0, x0 - r - 1), min(lab.shape[1], x1 + r + 1))
                    piece = lab[by, bx] == k
                    ring = binary_dilation(piece, r) & obj[by, bx] & ~piece
                    if ring.sum() >= 0.1 * piece.sum():
                        cb = contrast[by, bx]
                        if np.median(cb[ring]) >= (1 - prominence) * np.median(cb[piece]):
                            continue
                if nchild[k]:
                    sel[np.isin(sel, sk[pk == k])] = 0
                nsel += 1
                sel[y0:y1, x0:x1][lab[y0:y1, x0:x1] == k] = nsel
    if nsel == 0:
        return sel
    ids = np.unique(sel)
    ids = ids[ids > 0]
    remap = np.zeros(nsel + 1, np.int32)
    remap[ids] = np.arange(1, ids.size + 1, dtype=np.int32)
    return remap[sel]


def split_merged(labels: np.ndarray, contrast: np.ndarray, candidates: np.ndarray, *,
                 min_area_px: float, max_area_px: float, open_px: float,
                 min_solidity: float, min_roundness: float, min_axis_ratio: float,
                 split_solidity: float, grow_px: float, edge_fraction: float,
                 replace: np.ndarray, prominence: float = 0.15) -> np.ndarray:
    """Replace candidate objects by the soma-like regions found in them.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    contrast : ndarray of float
        Neuron-channel local contrast.
    candidates : ndarray of bool, shape (n + 1,)
        Objects to look into (by id).
    min_area_px, max_area_px, open_px, min_solidity, min_roundness, min_axis_ratio,
    split_solidity
        See :func:`soma_regions`.
    grow_px : float
        Regions are grown back within their object by at most this (px), over pixels
        above ``edge_fraction`` of the region's own 90th-percentile contrast (a region
        found at a high level lies inside the soma's outline).
    edge_fraction : float
        See above.
    replace : ndarray of bool, shape (n + 1,)
        Objects replaced even by a single region (they fail the shape checks as they
        are); the others are replaced only when split into two or more.
    prominence : float
        See :func:`soma_regions` (its ring is ``grow_px`` wide).

    Returns
    -------
    ndarray of int32
        Labels: unchanged objects keep their ids, the regions get ids after the last.
    """
    labels = np.asarray(labels, np.int32)
    out = labels.copy()
    nxt = int(labels.max())
    h, w = labels.shape
    pad = int(np.ceil(grow_px)) + 2
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or not candidates[k]:
            continue
        y0, y1 = max(0, sl[0].start - pad), min(h, sl[0].stop + pad)
        x0, x1 = max(0, sl[1].start - pad), min(w, sl[1].stop + pad)
        obj = labels[y0:y1, x0:x1] == k
        c = contrast[y0:y1, x0:x1]
        reg = soma_regions(c, obj, min_area_px=min_area_px, max_area_px=max_area_px,
                           open_px=open_px, min_solidity=min_solidity,
                           min_roundness=min_roundness, min_axis_ratio=min_axis_ratio,
                           split_solidity=split_solidity, ring_px=grow_px,
                           prominence=prominence)
        m = int(reg.max())
        if m == 0 or (m == 1 and not replace[k]):
            continue
        level = np.array([0.0] + [float(np.quantile(c[reg == j], 0.9))
                                  for j in range(1, m + 1)])
        near = distance_float32(reg == 0) <= grow_px
        grown = watershed(-c, reg, mask=obj & near)
        grown = np.where(c > edge_fraction * level[grown], grown, 0)
        grown = np.where(reg > 0, reg, grown)
        sub = out[y0:y1, x0:x1]
        sub[obj] = 0
        new = grown > 0
        sub[new] = grown[new] + nxt
        nxt += m
    return out
