"""Dark level and large-scale background estimates shared by segmentation and DRG."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def estimate_dark_level(image: np.ndarray, *, percentile: float = 0.5, smooth_px: float = 2.0
                        ) -> float:
    """Estimate the camera dark level (offset) of a channel.

    The estimate is a low percentile of the lightly smoothed image: the darkest
    structures (slide, neuron somata in the IgG channel) approximate the offset.
    Pass the known offset instead when the acquisition metadata has it.

    Parameters
    ----------
    image : ndarray
        2-D channel.
    percentile : float
        Percentile of the smoothed image taken as dark level.
    smooth_px : float
        Gaussian smoothing sigma in pixels before taking the percentile.

    Returns
    -------
    float
        The estimated dark level (0 for an empty image).
    """
    img = np.asarray(image, dtype=np.float32)
    if img.size == 0:
        return 0.0
    if smooth_px > 0 and min(img.shape) > 2:
        img = ndi.gaussian_filter(img, smooth_px)
    return float(np.percentile(img, percentile))


def _nan_block_percentile(blocks: np.ndarray, q: float) -> np.ndarray:
    """Percentile over the last axis ignoring NaN (NaN where a block is all NaN)."""
    n = np.isfinite(blocks).sum(axis=-1)
    srt = np.sort(np.where(np.isfinite(blocks), blocks, np.inf), axis=-1)
    pos = q / 100.0 * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    vlo = np.take_along_axis(srt, lo[..., None], -1)[..., 0]
    vhi = np.take_along_axis(srt, hi[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore"):
        out = vlo + (vhi - vlo) * (pos - lo)
    return np.where(n > 0, out, np.nan).astype(np.float32)


def local_background(
    image: np.ndarray,
    *,
    window_px: float,
    percentile: float = 30.0,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Large-scale background level: a running percentile, smoothly upsampled.

    The image is cut into blocks (a power of two <= ``window_px / 16``, anchored at
    pixel (0, 0)); each block and then each window of blocks is reduced to its
    ``percentile``. Masked pixels are ignored; blocks with no unmasked pixel take the
    value of the nearest block that has one. Everything is local, so a tile whose
    origin is a multiple of 64 px gets the same values as the whole image away from
    its edges.

    Parameters
    ----------
    image : ndarray
        2-D float image (dark level already subtracted).
    window_px : float
        Window size in pixels (larger than the largest object).
    percentile : float
        Percentile inside the window taken as background.
    mask : ndarray of bool, optional
        Pixels to ignore.

    Returns
    -------
    ndarray of float32
        Background level, same shape as ``image`` (NaN everywhere if every pixel is
        masked).
    """
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    f = int(max(1, min(window_px / 16, h // 4 or 1, w // 4 or 1)))
    f = 1 << (f.bit_length() - 1)
    if mask is not None and mask.any():
        if mask.all():
            return np.full((h, w), np.nan, np.float32)
        img = np.where(mask, np.nan, img)
    hh, ww = -(-h // f) * f, -(-w // f) * f
    pad = np.pad(img, ((0, hh - h), (0, ww - w)), mode="reflect" if min(h, w) > 1 else "edge")
    blocks = pad.reshape(hh // f, f, ww // f, f).transpose(0, 2, 1, 3).reshape(hh // f, ww // f, -1)
    if mask is not None and mask.any():
        small = _nan_block_percentile(blocks, percentile)
        empty = ~np.isfinite(small)
        if empty.any():
            _, (iy, ix) = ndi.distance_transform_edt(empty, return_indices=True)
            small = small[iy, ix]
    else:
        small = np.percentile(blocks, percentile, axis=-1).astype(np.float32)
    size = max(3, int(round(window_px / f)) | 1)
    bg = ndi.percentile_filter(small, percentile, size=size, mode="reflect")
    bg = ndi.uniform_filter(bg, size=max(1, size // 2), mode="reflect")
    big = ndi.zoom(bg, f, order=1, grid_mode=True, mode="nearest")[:h, :w]
    if big.shape != (h, w):  # defensive: zoom rounding
        big = np.pad(big, ((0, h - big.shape[0]), (0, w - big.shape[1])), mode="edge")
    return big.astype(np.float32)
