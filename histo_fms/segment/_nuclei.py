"""Split objects that hold several neuron nuclei (somata pressed into one outline)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .._numerics._quantiles import label_quantiles


def split_at_nuclei(labels: np.ndarray, contrast: np.ndarray, *, min_area_px: float,
                    max_area_px: float, nucleus_area_px: float, min_separation_px: float,
                    fraction: float, quantile: float = 0.9, min_nucleus_ratio: float = 0.2,
                    max_open: float = 0.0, min_open_solidity: float = 0.85
                    ) -> np.ndarray:
    """Divide each object enclosing two or more dark nuclei between them.

    A neuron soma has one nucleus; in the neuron marker (neurofilament, β-III-tubulin)
    it is a dark hole in the bright cytoplasm. Somata pressed together without a
    visible sheath between them are one outline with several such holes. Within each
    object of at least ``2 * min_area_px`` pixels, the nuclei are the connected regions
    darker than ``fraction`` times the object's ``quantile`` contrast that lie wholly
    inside it (not touching its outline: an indentation is not a nucleus; see
    ``max_open``) and have at
    least ``nucleus_area_px`` pixels. With two or more nuclei, each pair at least
    ``min_separation_px`` apart (centre distance less both equivalent radii: the
    cytoplasm of two somata lies between them, not a dark patch in one soma's
    cytoplasm beside its nucleus), each pixel of the object goes to the nearest nucleus.
    Only objects of at most ``max_area_px`` (the largest soma's area) are looked into,
    and the split is kept only when every part has at least ``min_area_px`` pixels, a
    nucleus of a nucleus' size for it (equivalent diameter at least
    ``min_nucleus_ratio`` of the part's) lying in its middle (within half its
    equivalent radius of its centroid): dark holes in a tissue-sized object
    (interstitium, a nerve root) do not cut it into soma-sized pieces.

    Parameters
    ----------
    labels : ndarray of int
        Label image (holes already filled).
    contrast : ndarray of float
        Neuron-channel local contrast.
    min_area_px : float
        Smallest soma area (px).
    max_area_px : float
        Largest object looked into (px).
    nucleus_area_px : float
        Smallest nucleus area (px).
    min_separation_px : float
        Smallest gap between two nuclei (px, edge to edge as equivalent discs).
    fraction : float
        A pixel is nucleus when its contrast is below this times the object's level.
    quantile : float
        Quantile (0-1) of an object's contrast taken as its level.
    min_nucleus_ratio : float
        Smallest nucleus / part equivalent-diameter ratio.
    max_open : float
        When above 0, a dark patch may meet the object's outline on up to this fraction
        of the ring of pixels just outside it (a nucleus behind a rim thinned away by
        the outline refinement) if it is round (solidity at least
        ``min_open_solidity``); 0: a patch touching the outline is never a nucleus.
    min_open_solidity : float
        Smallest solidity of a patch that meets the outline.

    Returns
    -------
    ndarray of int32
        Labels; the parts of a split object after the last id (the first part keeps
        the object's id).
    """
    labels = np.asarray(labels, np.int32)
    n = int(labels.max())
    if n == 0:
        return labels
    area = np.bincount(labels.ravel(), minlength=n + 1)
    level = label_quantiles(contrast, labels, quantile, n)
    out = labels.copy()
    nxt = n
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or not 2 * min_area_px <= area[k] <= max_area_px:
            continue
        sl = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in sl)
        obj = labels[sl] == k
        dark = obj & (contrast[sl] < fraction * level[k])
        if not dark.any():
            continue
        lab, m = ndi.label(dark)
        if m < 2:
            continue
        size = np.bincount(lab.ravel(), minlength=m + 1)
        ok = size >= nucleus_area_px
        if max_open > 0:
            # the ring just outside each dark patch: a nucleus is (almost) wholly
            # surrounded by its cytoplasm, an indentation opens to the outside
            ring_owner = ndi.grey_dilation(lab, size=(3, 3)) * (lab == 0)
            tot = np.bincount(ring_owner.ravel(), minlength=m + 1)
            out_ = np.bincount(ring_owner[~obj], minlength=m + 1)
            opened = out_ > 0
            ok &= out_ <= max_open * np.maximum(tot, 1)
            if (ok & opened).any():
                # one that reaches the outline must be round: a nucleus, not a groove
                # or the dim cytoplasm of a lobe
                from ._fast import shape_measures

                _, _, so, _ = shape_measures(np.where((ok & opened)[lab], lab, 0))
                solid = np.zeros(m + 1)
                solid[: so.size] = np.nan_to_num(so)
                ok &= ~opened | (solid >= min_open_solidity)
        else:
            rim = ndi.binary_dilation(~obj) & obj  # the object's outline pixels
            ok[np.unique(lab[rim])] = False
        ok[0] = False
        ids = np.flatnonzero(ok)
        if ids.size < 2:
            continue
        cy, cx = (np.asarray(v) for v in zip(*ndi.center_of_mass(dark, lab, ids), strict=True))
        rad = np.sqrt(size[ids] / np.pi)
        gap = np.hypot(cy[:, None] - cy[None], cx[:, None] - cx[None]) - rad[:, None] - rad
        # dark patches closer than a cytoplasm's width belong to one soma: group them
        group = np.arange(ids.size)
        for i, j in zip(*np.nonzero(np.triu(gap < min_separation_px, 1)), strict=True):
            gi, gj = group[i], group[j]
            group[group == max(gi, gj)] = min(gi, gj)
        if np.unique(group).size < 2:
            continue
        lut = np.zeros(m + 1, np.int64)
        lut[ids] = ids[group]  # each patch -> the first patch of its group
        ids = np.unique(ids[group])
        nuc = lut[lab]
        _, (iy, ix) = ndi.distance_transform_edt(nuc == 0, return_indices=True)
        part = np.where(obj, nuc[iy, ix], 0)
        parts = np.bincount(part.ravel(), minlength=m + 1)[ids]
        nuc_area = np.bincount(nuc.ravel(), minlength=m + 1)[ids]
        if parts.min() < min_area_px or np.any(nuc_area < min_nucleus_ratio**2 * parts):
            continue
        # each nucleus lies in the middle of its part (not a hole near a cut edge)
        py, px_ = (np.asarray(v) for v in zip(*ndi.center_of_mass(obj, part, ids),
                                              strict=True))
        ny, nx = (np.asarray(v) for v in zip(*ndi.center_of_mass(nuc > 0, nuc, ids),
                                             strict=True))
        if np.any(np.hypot(py - ny, px_ - nx) > 0.5 * np.sqrt(parts / np.pi)):
            continue
        sub = out[sl]
        for j, p in enumerate(ids.tolist()):
            if j == 0:
                continue
            nxt += 1
            sub[part == p] = nxt
    return out


def nucleus_pockets(labels: np.ndarray, holes: np.ndarray, *, nucleus_area_px: float,
                    max_fraction: float = 0.5, min_share: float = 0.9,
                    min_solidity: float = 0.8, sgc_pos: np.ndarray | None = None,
                    max_sgc: float = 0.05) -> np.ndarray:
    """Dark regions enclosed by one object's cytoplasm that are its nucleus.

    In the neuron marker a soma's nucleus is a dark hole in its bright cytoplasm.
    Where the cytoplasm rim is thin or dim on one side (a large or eccentric nucleus)
    an outline drawn at a fraction of the soma's own level runs round the nucleus and
    leaves a crescent, which then fails the soma shape checks or is cut like the notch
    between two touching somata. ``holes`` are the pixels the foreground's hole
    filling added (dark regions wholly enclosed by tissue above threshold); a
    connected piece of them is a nucleus of the object ``k`` when

    * at least ``min_share`` of it lies in ``k`` (a gap between several somata is
      shared out among them by the watershed; a nucleus lies in one soma);
    * it has at least ``nucleus_area_px`` pixels and at most ``max_fraction`` of
      ``k``'s area (a nucleus is smaller than its soma);
    * it is round (solidity at least ``min_solidity``; interstitium between somata
      is bounded by their convex sides and is not);
    * given ``sgc_pos``, at most ``max_sgc`` of it is SGC-positive (satellite glia wrap
      the soma; none lie inside it).

    Parameters
    ----------
    labels : ndarray of int
        Objects before their outline refinement.
    holes : ndarray of bool
        Pixels added by filling the foreground's holes.
    nucleus_area_px : float
        Smallest nucleus area (px).
    max_fraction : float
        Largest nucleus / object area ratio.
    min_share : float
        Smallest fraction of the pocket inside its object.
    min_solidity : float
        Smallest pocket solidity.
    sgc_pos : ndarray of bool, optional
        SGC-positive pixels.
    max_sgc : float
        Largest SGC-positive fraction of a pocket.

    Returns
    -------
    ndarray of int32
        The object id of each nucleus pocket pixel, 0 elsewhere.
    """
    from ._fast import shape_measures

    labels = np.asarray(labels, np.int32)
    out = np.zeros(labels.shape, np.int32)
    pock, m = ndi.label(holes & (labels > 0))
    if m == 0:
        return out
    n = int(labels.max())
    area = np.bincount(labels.ravel(), minlength=n + 1)
    size = np.bincount(pock.ravel(), minlength=m + 1)
    # the object holding most of each pocket, and how much of it
    sel = pock > 0
    key = pock[sel].astype(np.int64) * (n + 1) + labels[sel]
    uk, cnt = np.unique(key, return_counts=True)
    pk, lk = np.divmod(uk, n + 1)
    order = np.lexsort((-cnt, pk))
    first = np.ones(order.size, bool)
    first[1:] = pk[order][1:] != pk[order][:-1]
    owner = np.zeros(m + 1, np.int64)
    share = np.zeros(m + 1)
    owner[pk[order][first]] = lk[order][first]
    share[pk[order][first]] = cnt[order][first] / size[pk[order][first]]
    ok = ((share >= min_share) & (size >= nucleus_area_px)
          & (size <= max_fraction * area[owner]))
    ok[0] = False
    if sgc_pos is not None and ok.any():
        pos = np.bincount(pock.ravel(), weights=sgc_pos.ravel(), minlength=m + 1)
        ok &= pos <= max_sgc * np.maximum(size, 1)
    if ok.any():
        _, _, s, _ = shape_measures(np.where(ok[pock], pock, 0))
        solid = np.zeros(m + 1)
        solid[: s.size] = np.nan_to_num(s)
        ok &= solid >= min_solidity
    lut = np.where(ok, owner, 0).astype(np.int32)
    return np.where(labels == lut[pock], lut[pock], 0).astype(np.int32)
