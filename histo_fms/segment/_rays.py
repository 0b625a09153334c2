"""Somata enclosed by a broken SGC sheath, found by casting rays from candidate centres."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull

from .._numerics._local import distance_float32


def star_reach_px(max_radius_px: float, behind_px: float) -> int:
    """How far (px) from its centre :func:`sheath_stars` looks: its rays' reach.

    Parameters
    ----------
    max_radius_px : float
        Largest soma radius (px).
    behind_px : float
        Its ``behind_px``.

    Returns
    -------
    int
        Distance in pixels.
    """
    return int(np.ceil(2.2 * (float(max_radius_px) + 2.0) + 3.0 * float(behind_px))) + 1


def _longest_run(open_: np.ndarray) -> np.ndarray:
    """Longest circular run of True along axis 1 of a (n, k) bool array."""
    n, k = open_.shape
    if n == 0:
        return np.zeros(0, int)
    best = np.zeros(n, int)
    run = np.zeros(n, int)
    for j in range(2 * k):  # twice round: runs that wrap
        o = open_[:, j % k]
        run = np.where(o, run + 1, 0)
        best = np.maximum(best, run)
    return np.minimum(best, k)


def _fill_open(radius: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """Replace open rays' radii by circular linear interpolation of the closed ones."""
    out = radius.copy()
    k = radius.shape[1]
    idx = np.arange(k)
    for i in np.flatnonzero(open_.any(axis=1)):
        closed = ~open_[i]
        xs = idx[closed]
        out[i, open_[i]] = np.interp(idx[open_[i]], xs, radius[i, closed], period=k)
    return out


def sheath_stars(wall: np.ndarray, contrast: np.ndarray, *, min_radius_px: float,
                 max_radius_px: float, max_texture: float, n_rays: int = 32,
                 max_open: float = 0.25, max_gap: float = 0.125,
                 min_solidity: float = 0.85, min_axis_ratio: float = 0.5,
                 min_ellipse: float = 0.85, max_overlap: float = 0.2,
                 objects: np.ndarray | None = None, behind_px: float = 0.0,
                 max_behind: float = 2 / 3, max_covered: float = 0.6) -> np.ndarray:
    """Soma-shaped regions that a sheath with gaps encloses, as star-shaped polygons.

    A soma's satellite-glial sheath is seldom a closed line on a real section: under
    widefield blur and with NF-poor somata (dark holes in a ring of glia) the
    thresholded sheath and its ridge lines leave gaps, so no hole of the sheath mask
    is enclosed. Here every local maximum of the distance to the sheath whose distance
    lies between ``min_radius_px`` and ``max_radius_px`` is a candidate centre; from it
    ``n_rays`` rays are cast to the first sheath pixel, at most ``2.2`` times the
    centre's distance away (a soma is at most twice as long as wide). A candidate is a
    soma when its sheath is closed but for gaps: at most ``max_open`` of the rays
    escape and no run of escaping rays spans more than ``max_gap`` of the circle; the
    polygon of the hits (escaping rays interpolated from their neighbours) must be
    convex-like (``min_solidity``), not elongated (``min_axis_ratio``, from its second
    moments), close to the ellipse of the same moments (IoU at least ``min_ellipse``: a
    soma's section is an ellipse, while a pocket of interstitium between three or four
    sheathed somata is bounded by their outer arcs, which bow into it) and homogeneous
    in the neuron channel (10-90 % range of ``contrast`` below ``max_texture``, like
    :func:`histo_fms.segment._classical.sheath_enclosed`). Given the ``objects``
    found so far, a candidate is also dropped when behind more than ``max_behind`` of
    the sheath its rays hit (past the sheath band, within ``behind_px``; rays beside
    a gap, which meet the sheath's end obliquely, are not counted) lies an object:
    that sheath is the outside of its neighbours' sheaths, and the candidate the pocket
    of interstitium they leave between them (its outline, bounded by their outer arcs,
    can still be round enough). A soma pressed among detected neighbours
    on more than two thirds of its outline is lost to this rule; it is usually
    bright enough to be found without the sheath.
    Overlapping candidates are resolved greedily, the most closed and then the widest
    first; one overlapping an accepted polygon by more than ``max_overlap`` of its area
    is dropped, and an accepted one keeps the pixels it shares with a later one.

    Parameters
    ----------
    wall : ndarray of bool
        SGC sheath pixels (thresholded sheath and faint sheath lines).
    contrast : ndarray of float
        Neuron-channel local contrast.
    min_radius_px, max_radius_px : float
        Radius range of a soma (px).
    max_texture : float
        Largest neuron-contrast range within a candidate.
    n_rays : int
        Rays per candidate.
    max_open, max_gap : float
        Largest fraction of escaping rays, and of the circle spanned by one run of them.
    min_solidity, min_axis_ratio, min_ellipse : float
        Shape limits of the polygon.
    max_overlap : float
        Largest overlap with an accepted polygon (fraction of the candidate's area).
    objects : ndarray of int, optional
        Objects found so far (labels); None: no neighbour test.
    behind_px : float
        How far past the end of the sheath band an object counts as behind it (px);
        0: no neighbour test.
    max_behind : float
        Largest fraction of the hit rays with an object behind their sheath.
    max_covered : float
        Candidates covered by ``objects`` on more than this fraction are skipped
        (they would neither be added nor replace a fragment, see
        :func:`histo_fms.segment._classical._add_enclosed`).

    Returns
    -------
    ndarray of int32
        Candidate regions labelled 1..m. Each depends only on the sheath and the
        objects within ``2.2 * (max_radius_px + 2) + 3 * behind_px`` of its centre (its
        rays' reach) and on the candidates overlapping it.
    """
    wall = np.asarray(wall, bool)
    shape = wall.shape
    out = np.zeros(shape, np.int32)
    if not wall.any() or wall.all():
        return out
    cap = float(max_radius_px) + 2.0
    # the distance to the sheath, capped so it is local
    d = distance_float32(~wall)
    np.minimum(d, np.float32(cap), out=d)
    size = max(3, int(2 * np.floor(min_radius_px) + 1))
    peaks = (d == ndi.maximum_filter(d, size=size, mode="nearest")) & (d >= min_radius_px)
    peaks &= d <= max_radius_px
    # one centre per plateau: its first pixel in raster order
    plab, npk = ndi.label(peaks, structure=np.ones((3, 3), bool))
    if npk == 0:
        return out
    flat = np.flatnonzero(plab.ravel())
    first = np.full(npk + 1, -1, np.int64)
    order = np.argsort(plab.ravel()[flat], kind="stable")
    lab_sorted = plab.ravel()[flat][order]
    starts = np.r_[0, np.flatnonzero(np.diff(lab_sorted)) + 1]
    first[lab_sorted[starts]] = flat[order][starts]
    cy, cx = np.divmod(first[1:], shape[1])
    r0 = d[cy, cx].astype(np.float64)

    # cast the rays: step 0.5 px up to 2.2 x the centre's distance, and on past the
    # sheath there to see what lies behind it
    ang = 2 * np.pi * np.arange(n_rays) / n_rays
    dy, dx = np.sin(ang), np.cos(ang)
    # past the sheath: a band of up to 2 x behind_px, then behind_px
    steps = np.arange(1.0, star_reach_px(max_radius_px, behind_px), 0.5)
    hit = np.full((cy.size, n_rays), np.nan)
    behind = np.zeros((cy.size, n_rays), bool)
    chunk = max(1, 4_000_000 // (n_rays * steps.size))
    idx = np.arange(steps.size)
    wflat = wall.ravel()
    oflat = None if objects is None else (np.asarray(objects) > 0).ravel()
    for s in range(0, cy.size, chunk):
        sl = slice(s, s + chunk)
        yy = np.rint(cy[sl, None, None] + dy[None, :, None] * steps[None, None, :]).astype(np.int32)
        xx = np.rint(cx[sl, None, None] + dx[None, :, None] * steps[None, None, :]).astype(np.int32)
        inside = (yy >= 0) & (yy < shape[0]) & (xx >= 0) & (xx < shape[1])
        flat = (np.clip(yy, 0, shape[0] - 1).astype(np.int64) * shape[1]
                + np.clip(xx, 0, shape[1] - 1))
        del yy, xx
        w = wflat[flat] & inside
        reach = steps[None, None, :] <= 2.2 * r0[sl, None, None]
        wr = w & reach
        any_hit = wr.any(axis=2)
        j = np.argmax(wr, axis=2)
        hit[sl] = np.where(any_hit, steps[j], np.nan)
        if oflat is not None and behind_px > 0:
            # the first free sample past the sheath band, and an object within
            # ``behind_px`` of it: the sheath is that object's, seen from outside
            free = ~w & (idx[None, None, :] > j[..., None]) & inside
            j2 = np.argmax(free, axis=2)
            o = oflat[flat] & inside
            win = (idx[None, None, :] >= j2[..., None]) & (
                steps[None, None, :] <= steps[j2][..., None] + behind_px)
            behind[sl] = any_hit & free.any(axis=2) & (o & win).any(axis=2)
    open_ = np.isnan(hit)
    ok = (open_.mean(axis=1) <= max_open) & (_longest_run(open_) <= max_gap * n_rays)
    if not ok.any():
        return out
    cy, cx, r0, hit, open_, behind = cy[ok], cx[ok], r0[ok], hit[ok], open_[ok], behind[ok]
    # rays beside a gap meet the sheath's end obliquely and leave it into the gap:
    # they are not counted
    edge = open_ | np.roll(open_, 1, axis=1) | np.roll(open_, -1, axis=1)
    theirs = (behind & ~edge).sum(axis=1) / np.maximum((~edge).sum(axis=1), 1)
    radius = _fill_open(np.nan_to_num(hit), open_) - 0.5
    # polygon area and its convex hull's (solidity); second moments (axis ratio)
    vy = cy[:, None] + dy[None, :] * radius
    vx = cx[:, None] + dx[None, :] * radius
    area = 0.5 * np.abs(np.sum(vx * np.roll(vy, -1, 1) - np.roll(vx, -1, 1) * vy, axis=1))
    score = 1.0 - open_.mean(axis=1)
    ok = ((area >= np.pi * min_radius_px**2) & (area <= np.pi * max_radius_px**2)
          & (theirs <= max_behind))
    keep = [i for i in np.flatnonzero(ok)
            if area[i] >= min_solidity * ConvexHull(np.c_[vx[i], vy[i]]).volume]
    if not keep:
        return out
    keep = np.asarray(keep)
    # most closed first, then the widest; ties by position (deterministic)
    rank = np.lexsort((cx[keep], cy[keep], -r0[keep], -score[keep]))
    m = 0
    contrast = np.asarray(contrast)
    for i in keep[rank]:
        y0 = max(int(np.floor(vy[i].min())), 0)
        x0 = max(int(np.floor(vx[i].min())), 0)
        y1 = min(int(np.ceil(vy[i].max())) + 1, shape[0])
        x1 = min(int(np.ceil(vx[i].max())) + 1, shape[1])
        rr, cc = _star_pixels(cy[i], cx[i], radius[i], (y0, y1, x0, x1))
        if rr.size == 0:
            continue
        if objects is not None and np.count_nonzero(objects[rr, cc]) > max_covered * rr.size:
            continue  # an object covers it: it would neither be added nor replace one
        ratio, fit = _ellipse_fit(rr, cc)
        if ratio < min_axis_ratio or fit < min_ellipse:
            continue
        lo, hi = np.quantile(contrast[rr, cc], [0.1, 0.9])
        if hi - lo >= max_texture:
            continue
        # an accepted polygon lies in the foreground mask, so one that suppresses
        # another is in its cluster (what makes exact tiles check it)
        if np.count_nonzero(out[rr, cc]) > max_overlap * rr.size:
            continue
        free = out[rr, cc] == 0
        m += 1
        out[rr[free], cc[free]] = m
    return out


def _star_pixels(cy: int, cx: int, radius: np.ndarray, box: tuple[int, int, int, int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pixels within a star-shaped outline around ``(cy, cx)``.

    ``radius`` is given on equally spaced rays (the first along +x, turning from +x
    towards +y), linearly interpolated in angle between them; ``box`` bounds the search.
    """
    y0, y1, x0, x1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1]
    ry, rx = yy - cy, xx - cx
    rho = np.hypot(ry, rx)
    k = radius.size
    theta = np.mod(np.arctan2(ry, rx), 2 * np.pi) * (k / (2 * np.pi))
    r = np.interp(theta, np.arange(k + 1), np.r_[radius, radius[0]])
    inside = rho <= r
    return yy[inside], xx[inside]


def _ellipse_fit(rr: np.ndarray, cc: np.ndarray) -> tuple[float, float]:
    """Axis ratio of a pixel set and its IoU with the ellipse of the same moments."""
    if rr.size < 3:
        return 0.0, 0.0
    p = np.vstack([rr, cc]).astype(float)
    p -= p.mean(axis=1, keepdims=True)
    cov = p @ p.T / rr.size
    ev = np.linalg.eigvalsh(cov)
    if ev[0] <= 0:
        return 0.0, 0.0
    # the ellipse with these moments has semi-axes 2 sqrt(eigenvalue)
    inside = np.einsum("in,ij,jn->n", p, np.linalg.inv(cov), p) <= 4.0
    inter = float(np.count_nonzero(inside))
    area_e = 4.0 * np.pi * float(np.sqrt(ev[0] * ev[1]))
    return float(np.sqrt(ev[0] / ev[1])), inter / (rr.size + area_e - inter)
