"""Thin bright lines (satellite-glial sheaths between touching somata) by Hessian ridges."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


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
    hyy = ndi.gaussian_filter(g, s, order=(2, 0))
    hxx = ndi.gaussian_filter(g, s, order=(0, 2))
    hxy = ndi.gaussian_filter(g, s, order=(1, 1))
    half = np.float32(0.5)
    mean = half * (hyy + hxx)
    dev = np.sqrt((half * (hyy - hxx)) ** 2 + hxy**2)
    l1, l2 = mean - dev, mean + dev
    return (np.maximum(-l1, 0) - np.maximum(-l2, 0)) * np.float32(s * s)


def sheath_lines(contrast: np.ndarray, sigma_px: float, threshold: float,
                 min_length_px: float = 0.0, *, neuron: np.ndarray | None = None,
                 neuron_valley: float | None = None) -> np.ndarray:
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
    lines = ridge_strength(contrast, sigma_px) > threshold
    if neuron is not None and neuron_valley is not None:
        lines &= ridge_strength(-np.asarray(neuron, np.float32), sigma_px) > neuron_valley
    if min_length_px > 0 and lines.any():
        lab, n = ndi.label(lines, structure=np.ones((3, 3), bool))
        size = np.bincount(lab.ravel(), minlength=n + 1)
        ok = size >= min_length_px * 2 * max(float(sigma_px), 1.0)
        ok[0] = False
        lines = ok[lab]
    return lines
