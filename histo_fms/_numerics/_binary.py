"""scipy's binary hole filling and disc opening of 2-D masks, from the compiled kernels."""

from __future__ import annotations

import numpy as np

from ._label import fill_small_holes
from ._morph import disc_dilate, disc_erode


def binary_fill_holes(mask: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_fill_holes(mask)`` of a 2-D mask (default structure).

    A hole is a 4-connected background component that touches no array edge
    (:func:`histo_fms._numerics._label.fill_small_holes` without a size limit): one
    labelling pass instead of scipy's iterated dilation from the border.

    Parameters
    ----------
    mask : ndarray, shape (Y, X)
        Foreground (non-zero).

    Returns
    -------
    ndarray of bool
        The mask with its holes filled.
    """
    return fill_small_holes(mask, np.inf)


def binary_opening_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """``scipy.ndimage.binary_opening(mask, skimage.morphology.disk(radius))``.

    The disc ``dy**2 + dx**2 <= radius**2`` of :func:`skimage.morphology.disk`; beyond
    the array edge scipy's erosion sees background (``border_value=0``), so the mask is
    padded with background by ``radius`` first. Erosion and dilation are the running
    min / max over the disc's columns (:mod:`._morph`).

    Parameters
    ----------
    mask : ndarray, shape (Y, X)
        Foreground (non-zero).
    radius : int
        Disc radius in pixels (>= 1).

    Returns
    -------
    ndarray of bool
        The opened mask.
    """
    r = int(radius)
    m = np.asarray(mask) != 0
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {m.shape}")
    if r < 1 or not m.any():
        return m.copy() if r < 1 else np.zeros(m.shape, bool)
    padded = np.pad(m, r + 1)
    out = disc_dilate(disc_erode(padded, r), r)
    return np.ascontiguousarray(out[r + 1:-(r + 1), r + 1:-(r + 1)])
