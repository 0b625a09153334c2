"""Thin bright lines (satellite-glial sheaths between touching somata) by Hessian ridges."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .._numerics._cityblock import binary_dilation
from .._numerics._gauss import gaussian_filter


def ridge_strength(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Scale-normalised strength of bright lines (not spots): ``(|l1| - |l2|) * sigma**2``.

    ``l1 <= l2`` are the eigenvalues of the Hessian of ``image`` smoothed with a
    Gaussian of ``sigma_px``, counted where negative (bright curvature): across a
    bright line about ``2 * sigma_px`` wide ``l1`` is strongly negative and ``l2``
    near 0, whatever its direction; a bright spot (a granule, a noise speck) curves
    down in both directions and gives about 0, as do flat regions. A line of height
    ``A`` (in the units of ``image``) as wide as the Gaussian gives about ``0.35 * A``.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        Image (e.g. the SGC channel's local contrast).
    sigma_px : float
        Gaussian scale in pixels (at least 1).

    Returns
    -------
    ndarray of float32
        Ridge strength, 0 where the image is not curved like a bright line. Each value
        depends only on pixels within ``4 * sigma_px``.
    """
    g = np.asarray(image, np.float32)
    s = max(float(sigma_px), 1.0)
    hyy = gaussian_filter(g, s, order=(2, 0))
    hxx = gaussian_filter(g, s, order=(0, 2))
    hxy = gaussian_filter(g, s, order=(1, 1))
    half = np.float32(0.5)
    mean = half * (hyy + hxx)
    dev = np.sqrt((half * (hyy - hxx)) ** 2 + hxy**2)
    l1, l2 = mean - dev, mean + dev
    return (np.maximum(-l1, 0) - np.maximum(-l2, 0)) * np.float32(s * s)


def sheath_lines(contrast: np.ndarray, sigma_px: float, threshold: float,
                 min_length_px: float = 0.0, *, neuron: np.ndarray | None = None,
                 neuron_valley: float | None = None,
                 strength: np.ndarray | None = None) -> np.ndarray:
    """Pixels on bright lines: ridge strength above ``threshold``, in lines long enough.

    Parameters
    ----------
    contrast : ndarray, shape (Y, X)
        SGC-channel local contrast.
    sigma_px : float
        Ridge scale (px), about half the line width.
    threshold : float
        Smallest ridge strength (:func:`ridge_strength`, in contrast units).
    min_length_px : float
        8-connected line pieces covering less than ``min_length_px`` times their
        width (``2 * sigma_px``) are dropped (noise gives short ridges; a sheath
        between two somata runs along them). 0 keeps all.

    Returns
    -------
    ndarray of bool
        Line pixels. Given the contrast, each value depends only on pixels within
        ``4 * sigma_px + min_length_px * 2 * sigma_px``.
    """
    if strength is None:
        strength = ridge_strength(contrast, sigma_px)
    lines = strength > threshold
    if neuron is not None and neuron_valley is not None:
        lines &= ridge_strength(-np.asarray(neuron, np.float32), sigma_px) > neuron_valley
    if min_length_px > 0 and lines.any():
        lab, n = ndi.label(lines, structure=np.ones((3, 3), bool))
        size = np.bincount(lab.ravel(), minlength=n + 1)
        ok = size >= min_length_px * 2 * max(float(sigma_px), 1.0)
        ok[0] = False
        lines = ok[lab]
    return lines


def split_at_faint_sheath(labels: np.ndarray, ridge: np.ndarray, *, min_area_px: float,
                          neck_px: float, band_px: float, relative: float, floor: float,
                          max_axis_ratio: float) -> np.ndarray:
    """Split elongated objects along a faint SGC sheath line that crosses them.

    Somata pressed together often show only a thin, faint sheath between them (after
    widefield blur its ridge strength is a fraction of that of the sheath around them)
    and their union is convex, so neither the sheath threshold nor a neck in the
    distance transform separates them; but the union is more elongated than a soma.
    In each object with an axis ratio below ``max_axis_ratio`` the pixels whose ridge
    strength is above ``t = max(relative * s, floor)``, ``s`` the 90th percentile of
    the ridge strength in the band ``band_px`` wide just outside the object (its own
    sheath), are taken out; where what is left has two or more maxima of its distance
    transform with a dynamic of at least ``neck_px`` (a line across the object, even
    with a gap where it meets the outline), the object is divided among them by a
    watershed on the ridge strength. Two regions stay apart only where the median
    ridge strength on the line between them is above ``t``; a region smaller than
    ``min_area_px`` joins the neighbour it shares most line with. A nucleus has no
    SGC signal, so a soma is never cut through it.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    ridge : ndarray of float
        Ridge strength of the SGC contrast (:func:`ridge_strength`).
    min_area_px : float
        Smallest soma area (px).
    neck_px : float
        Smallest dynamic of a distance-transform maximum (px).
    band_px : float
        Width of the band outside an object whose ridge strength sets its level (px).
    relative : float
        Fraction of the object's own sheath strength a crossing line must reach.
    floor : float
        Smallest ridge strength of a crossing line (noise).
    max_axis_ratio : float
        Only objects more elongated than this (minor / major axis) are looked into.

    Returns
    -------
    ndarray of int32
        Labels: unchanged objects keep their ids, split ones get new ids after the last.
    """
    from skimage.segmentation import find_boundaries, watershed

    from .._numerics._extrema import h_maxima  # skimage's h_maxima, compiled
    from .._numerics._local import distance_float32
    from ._fast import shape_measures

    labels = np.asarray(labels, np.int32)
    out = labels.copy()
    nxt = int(labels.max())
    if nxt == 0:
        return out
    h, w = labels.shape
    area = np.bincount(labels.ravel())
    # axis ratios only (solidity and roundness are not needed: skipped, NaN)
    ratio = shape_measures(labels, min_area=2 * min_area_px, min_axis_ratio=np.inf)[1]
    pad = int(np.ceil(band_px)) + 2
    bi = max(1, int(round(band_px)))
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None or area[k] < 2 * min_area_px or ratio[k] >= max_axis_ratio:
            continue
        y0, y1 = max(0, sl[0].start - pad), min(h, sl[0].stop + pad)
        x0, x1 = max(0, sl[1].start - pad), min(w, sl[1].stop + pad)
        obj = labels[y0:y1, x0:x1] == k
        r = ridge[y0:y1, x0:x1]
        band = binary_dilation(obj, bi) & ~obj
        if not band.any():
            continue
        t = max(relative * float(np.quantile(r[band], 0.9)), floor)
        dist = distance_float32(obj & (r <= t))
        peaks = h_maxima(np.round(dist / max(neck_px, 1e-6) * 4).astype(np.int32), 4) > 0
        cores, nc = ndi.label(peaks & obj, structure=np.ones((3, 3), bool))
        if nc < 2:
            continue
        reg = watershed(r, cores, mask=obj)
        m = int(reg.max())
        parent = np.arange(m + 1)

        def find(i: int, parent: np.ndarray = parent) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        pairs: dict[tuple[int, int], list[float]] = {}
        for a_, b_, ra, rb in ((reg[:, :-1], reg[:, 1:], r[:, :-1], r[:, 1:]),
                               (reg[:-1, :], reg[1:, :], r[:-1, :], r[1:, :])):
            sel = (a_ != b_) & (a_ > 0) & (b_ > 0)
            for p, q, v in zip(np.minimum(a_[sel], b_[sel]).tolist(),
                               np.maximum(a_[sel], b_[sel]).tolist(),
                               np.maximum(ra[sel], rb[sel]).tolist(), strict=True):
                pairs.setdefault((p, q), []).append(v)
        for (p, q), vals in sorted(pairs.items()):
            if np.median(vals) <= t:
                parent[find(q)] = find(p)
        reg = np.array([find(i) for i in range(m + 1)])[reg]
        while True:  # a region too small for a soma joins the neighbour it borders most
            ids, size = np.unique(reg[reg > 0], return_counts=True)
            if ids.size < 2 or size.min() >= min_area_px:
                break
            i = int(ids[np.argmin(size)])
            edge = find_boundaries(reg == i, mode="outer") & (reg > 0) & (reg != i)
            if not edge.any():
                break
            reg[reg == i] = np.bincount(reg[edge]).argmax()
        ids = np.unique(reg[reg > 0])
        if ids.size < 2:
            continue
        sub = out[y0:y1, x0:x1]
        for j, i in enumerate(ids.tolist(), start=1):
            sub[reg == i] = nxt + j
        nxt += ids.size
    return out
