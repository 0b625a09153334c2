"""Dark level and large-scale background estimates shared by segmentation and DRG."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from ._edt import feature_transform
from ._gauss import gaussian_filter
from ._jit import njit
from ._quantiles import quantised_quantiles

DARK_SMOOTH_PX = 2.0


def smooth_for_stats(image: np.ndarray, smooth_px: float = DARK_SMOOTH_PX) -> np.ndarray:
    """Gaussian-smoothed float32 copy of a channel, as used for image-wide statistics.

    Parameters
    ----------
    image : ndarray
        2-D channel.
    smooth_px : float
        Gaussian sigma in pixels.

    Returns
    -------
    ndarray of float32
        The smoothed image (a plain float32 copy for tiny images).
    """
    img = np.asarray(image, dtype=np.float32)
    if smooth_px > 0 and min(img.shape) > 2:
        img = gaussian_filter(img, smooth_px)  # == ndi.gaussian_filter, compiled
    return img


def estimate_dark_level(image: np.ndarray, *, percentile: float = 0.1, smooth_px: float = 2.0
                        ) -> float:
    """Estimate the camera dark level (offset) of a channel.

    The estimate is a low percentile of the lightly smoothed image: the darkest
    structures (slide, neuron somata in the IgG channel) approximate the offset. The
    0.1 % default needs only a little empty slide in the field (a higher percentile
    lands on the dimmest tissue when the section fills the image, and biases every
    dark-subtracted ratio).
    Pass the known offset instead when the acquisition metadata has it. Values are
    quantised to 11 mantissa bits (0.05 %) first, like every image-wide statistic,
    so tiles can merge histograms exactly (:mod:`histo_fms._numerics._quantiles`).

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
    return quantised_quantiles(smooth_for_stats(img, smooth_px), [percentile / 100.0])[0]


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


def block_size(window_px: float) -> int:
    """Block edge (a power of two <= ``window_px / 8``) of :func:`local_background`.

    Parameters
    ----------
    window_px : float
        Window size in pixels.

    Returns
    -------
    int
        Block edge in pixels.
    """
    f = int(max(1, window_px / 8))
    return 1 << (f.bit_length() - 1)


def _block_grid(window_px: float, h: int, w: int) -> tuple[int, int]:
    """Block edge and window (in blocks) of :func:`local_background` for an image size."""
    f = block_size(window_px)
    while f > 1 and (h < 4 * f or w < 4 * f):  # tiny images only
        f //= 2
    return f, max(3, int(round(window_px / f)) | 1)


def local_background_radius(window_px: float) -> int:
    """Distance (px) beyond which pixels do not influence :func:`local_background`.

    Parameters
    ----------
    window_px : float
        Window size in pixels.

    Returns
    -------
    int
        Influence radius in pixels (for block grids anchored at multiples of the
        block size; masked-out areas add their extent).
    """
    f, size = _block_grid(window_px, 1 << 30, 1 << 30)
    return (size // 2 + max(1, size // 2) // 2 + 3) * f


def _box_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Box mean with reflect borders, summed directly.

    Translation-exact, unlike ``uniform_filter``'s running sum.
    """
    if size <= 1:
        return a
    wts = np.full(size, 1.0 / size)
    out = ndi.correlate1d(a.astype(np.float64), wts, axis=0, mode="reflect")
    return ndi.correlate1d(out, wts, axis=1, mode="reflect")


def local_background(
    image: np.ndarray,
    *,
    window_px: float,
    percentile: float | Sequence[float] = 30.0,
    mask: np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Large-scale background level: a running percentile, smoothly upsampled.

    The image is cut into blocks (a power of two <= ``window_px / 8``, see
    :func:`block_size`, anchored at pixel (0, 0)); each block (every second pixel of
    it in each direction for blocks of 8 px or more) and then each window of blocks
    is reduced to its ``percentile``. Masked pixels are ignored; blocks with no
    unmasked pixel take the value of the nearest block that has one. Everything is
    local and summed in a fixed order, so a tile whose origin is a multiple of the
    block size gets exactly the whole image's values farther than
    :func:`local_background_radius` (plus the extent of masked areas) from its edges.

    Parameters
    ----------
    image : ndarray
        2-D float image (dark level already subtracted).
    window_px : float
        Window size in pixels (larger than the largest object).
    percentile : float or sequence of float
        Percentile inside the window taken as background; several give one map
        each (the blocks are cut once).
    mask : ndarray of bool, optional
        Pixels to ignore.

    Returns
    -------
    ndarray of float32, or list of them
        Background level, same shape as ``image`` (NaN everywhere if every pixel is
        masked); a list when ``percentile`` is a sequence.
    """
    many = not np.isscalar(percentile)
    pcts = [float(q) for q in (percentile if many else [percentile])]
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    f, size = _block_grid(window_px, h, w)
    masked = mask is not None and bool(mask.any())
    if masked and mask.all():
        out = [np.full((h, w), np.nan, np.float32) for _ in pcts]
        return out if many else out[0]
    blocks = _cut_blocks(img, f)
    if masked:
        blocks = np.where(_cut_blocks(np.asarray(mask, bool), f), np.float32(np.nan), blocks)
        smalls = [_nan_block_percentile(blocks, q) for q in pcts]
        for k, small in enumerate(smalls):
            empty = ~np.isfinite(small)
            if empty.any() and not empty.all():
                iy, ix = feature_transform(empty)  # == ndi.distance_transform_edt's
                smalls[k] = small[iy, ix]
    else:
        smalls = list(np.percentile(blocks, pcts, axis=-1).astype(np.float32))
    del blocks
    out = []
    for q, small in zip(pcts, smalls, strict=True):
        bg = _percentile_filter(small, q, size)
        bg = _box_mean(bg, max(1, size // 2)).astype(np.float32)
        out.append(upsample_linear(bg, f, (h, w)))
    return out if many else out[0]


def _cut_blocks(a: np.ndarray, f: int) -> np.ndarray:
    """(H/f, W/f, n) samples of each f x f block (every second pixel for f >= 8)."""
    h, w = a.shape
    hh, ww = -(-h // f) * f, -(-w // f) * f
    if (hh, ww) != (h, w):
        a = np.pad(a, ((0, hh - h), (0, ww - w)), mode="reflect" if min(h, w) > 1 else "edge")
    s = 2 if f >= 8 else 1
    sub = a[::s, ::s]
    fs = f // s
    return sub.reshape(hh // f, fs, ww // f, fs).transpose(0, 2, 1, 3).reshape(
        hh // f, ww // f, fs * fs)


def _linear_index(n_small: int, n_out: int, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.clip((np.arange(n_out) + 0.5) / f - 0.5, 0, n_small - 1)
    i0 = np.floor(x).astype(np.intp)
    return i0, np.minimum(i0 + 1, n_small - 1), (x - i0).astype(np.float32)


def upsample_linear(small: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a block map by an integer factor (block centres as nodes).

    The values of ``scipy.ndimage.zoom(small, f, order=1, grid_mode=True,
    mode="nearest")`` (to float32 rounding), cropped to ``shape``, several times faster.

    Parameters
    ----------
    small : ndarray, shape (h, w)
        One value per ``f`` x ``f`` block.
    f : int
        Block edge in pixels.
    shape : tuple of int
        Output shape (at most ``(h * f, w * f)``).

    Returns
    -------
    ndarray of float32
        The upsampled map.
    """
    a = np.ascontiguousarray(small, np.float32)
    y0, y1, wy = _linear_index(a.shape[0], shape[0], f)
    x0, x1, wx = _linear_index(a.shape[1], shape[1], f)
    # one compiled pass; the float32 operations of
    #   rows = a[y0] * (1 - wy)[:, None] + a[y1] * wy[:, None]
    #   out = rows[:, x0] * (1 - wx) + rows[:, x1] * wx
    # in the same order (the same values, bit for bit)
    out = np.empty((int(shape[0]), int(shape[1])), np.float32)
    if out.size:
        _upsample(a, y0, y1, wy, (1 - wy).astype(np.float32), x0, x1, wx,
                  (1 - wx).astype(np.float32), out)
    return out


@njit(cache=True, nogil=True)
def _upsample(a, y0, y1, wy, omy, x0, x1, wx, omx, out):
    row = np.empty(a.shape[1], np.float32)
    for i in range(out.shape[0]):
        r0, r1, p, q = y0[i], y1[i], omy[i], wy[i]
        for j in range(a.shape[1]):
            row[j] = a[r0, j] * p + a[r1, j] * q
        for k in range(out.shape[1]):
            out[i, k] = row[x0[k]] * omx[k] + row[x1[k]] * wx[k]


def _percentile_filter(small: np.ndarray, percentile: float, size: int) -> np.ndarray:
    """``scipy.ndimage.percentile_filter`` (square, reflect borders), by rows of windows.

    Same values as scipy's (the order statistic of rank ``int(size**2 * p / 100)``),
    several times faster for the large windows used here.
    """
    n = size * size
    rank = min(n - 1, max(0, int(float(n) * percentile / 100.0)))
    r = size // 2
    pad = np.pad(small, r, mode="symmetric")
    out = np.empty(small.shape, small.dtype)
    rows = max(1, int(4_000_000 // max(1, n * small.shape[1])))
    for y0 in range(0, small.shape[0], rows):
        y1 = min(small.shape[0], y0 + rows)
        win = np.lib.stride_tricks.sliding_window_view(pad[y0:y1 + 2 * r], (size, size))
        win = win.reshape(y1 - y0, small.shape[1], n)
        out[y0:y1] = np.partition(win, rank, axis=-1)[..., rank]
    return out
