"""Lipofuscin detection: small granules bright in every channel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from .._numerics._background import (
    estimate_dark_level,
    local_background,
    smooth_for_stats,
)
from .._numerics._cityblock import binary_dilation
from .._numerics._gauss import _gaussian_kernel1d, gaussian_filter
from .._numerics._local import gaussian_radius, sparse_crops
from .._numerics._quantiles import quantised_quantiles
from .._numerics._spots import spot_test_at

#: window (µm) of the running median that flat-fields each channel
LIPOFUSCIN_WINDOW_UM = 40.0


def _opening_size(max_area_um2: float, pixel_size_um: float) -> int:
    return int(2 * np.ceil(np.sqrt(max_area_um2 / np.pi) / pixel_size_um) + 1)


def _smoothed(channel: np.ndarray, dark_level: float) -> np.ndarray:
    """Dark-subtracted, lightly smoothed float32 channel."""
    d = np.clip(np.asarray(channel, np.float32) - np.float32(dark_level), 0, None)
    return gaussian_filter(d, 0.6)


def _floor(median: float, maximum: float) -> float:
    return max(0.2 * float(median), 1e-6 * float(maximum), 1e-6)


def _spots_at(channel: np.ndarray, dark_level: float, where: np.ndarray, size: int,
              floor: float, median: float, min_contrast: float) -> np.ndarray:
    """Apply the spot test of :func:`lipofuscin_flat` at ``where`` pixels only.

    Smoothing and opening are computed in crops around the pixels
    (:func:`histo_fms._numerics._local.sparse_crops`), so values equal the whole image's.
    """
    if _gaussian_kernel1d is not None:  # one compiled pass over blocks (equal values)
        return spot_test_at(channel, dark_level, where, size, floor, median, min_contrast,
                            sigma=0.6)
    out = np.zeros(np.shape(channel), bool)
    reach = 2 * (size // 2) + gaussian_radius(0.6)
    for sl, own in sparse_crops(where, reach):
        hit = _spot_test(_smoothed(channel[sl], dark_level), size, floor, median, min_contrast)
        out[sl] |= hit & own
    return out


def _spot_test(d: np.ndarray, size: int, floor: float, median: float, min_contrast: float
               ) -> np.ndarray:
    """Pixels at least ``min_contrast`` times their opening and above the median."""
    opened = ndi.grey_opening(d, size=(size, size))
    return (d > min_contrast * np.maximum(opened, floor)) & (d > median)


def lipofuscin_flat(
    channel: np.ndarray,
    *,
    dark_level: float,
    median: float,
    maximum: float,
    pixel_size_um: float,
    max_area_um2: float = 20.0,
    min_contrast: float = 1.5,
    spots: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Flat-fielded channel and granule-spot mask of one channel (local operations only).

    Parameters
    ----------
    channel : ndarray
        2-D channel.
    dark_level : float
        Camera offset subtracted first.
    median, maximum : float
        Image-wide median and maximum of the smoothed, dark-subtracted channel
        (:class:`histo_fms.drg.DrgContext`).
    pixel_size_um : float
        Pixel size in µm.
    max_area_um2 : float
        Largest granule area (sets the opening size).
    min_contrast : float
        Minimum ratio of a spot to its surroundings.
    spots : bool
        Compute the spot mask (the morphological opening); ``False`` returns None for
        it (the brightness statistics need only ``flat``).

    Returns
    -------
    flat : ndarray of float32
        The channel divided by its running median (vignetting removed).
    spot : ndarray of bool or None
        Pixels at least ``min_contrast`` times their opening and above the median.
    floor : float
        Lower bound used for the opening and the running median.
    """
    px = float(pixel_size_um)
    d = _smoothed(channel, dark_level)
    floor = _floor(median, maximum)
    spot = (_spot_test(d, _opening_size(max_area_um2, px), floor, median, min_contrast)
            if spots else None)
    bg = local_background(d, window_px=LIPOFUSCIN_WINDOW_UM / px, percentile=50.0)
    flat = (d / np.maximum(bg, np.float32(floor))).astype(np.float32)
    return flat, spot, floor


def detect_lipofuscin(
    channels: Sequence[np.ndarray],
    *,
    pixel_size_um: float,
    min_contrast: float = 1.5,
    quantile: float = 0.98,
    max_area_um2: float = 20.0,
    dilate_um: float = 1.0,
    dark_levels: Sequence[float | None] | None = None,
    medians: Sequence[float] | None = None,
    maxima: Sequence[float] | None = None,
    thresholds: Sequence[float] | None = None,
) -> np.ndarray:
    """Find lipofuscin granules: small spots bright in every channel at once.

    In each channel (dark-subtracted, lightly smoothed) a pixel is a "spot" when it
    is at least ``min_contrast`` times the channel's morphological opening (the
    image with structures smaller than a granule removed) and above the channel's
    median. It is "bright" when above the channel's ``quantile`` after division by a
    ~40 µm running median (so vignetting does not matter). Lipofuscin is where every
    channel shows a spot and every channel (with three or more channels: all but
    one, as the neuron marker is bright in every neuron anyway) is bright, in
    connected components of at most ``max_area_um2``. Specific stains rarely
    coincide in all channels (neurons are dark for the SGC marker and IgG; rings are
    dark for the neuron marker), so granules stand out even on a positive ring or
    inside a bright neuron.

    The image-wide values (dark levels, medians, maxima and brightness thresholds)
    can be given, e.g. from a whole section's :class:`histo_fms.drg.DrgContext`; then
    everything else is local and a tile gives the whole image's mask away from its
    edges.

    Parameters
    ----------
    channels : sequence of ndarray
        Two or more 2-D channels of one section (fewer: an empty mask is returned).
    pixel_size_um : float
        Pixel size in µm.
    min_contrast : float
        Minimum ratio of a spot to its surroundings (the opening), in every channel.
    quantile : float
        Brightness quantile (0-1) of the flat-fielded channel a spot must exceed.
    max_area_um2 : float
        Largest granule area in µm²; also sets the opening size.
    dilate_um : float
        Dilation of the mask in µm (covers the blurred halo).
    dark_levels : sequence of float or None, optional
        Camera offsets per channel (estimated when None).
    medians, maxima : sequence of float, optional
        Image-wide median and maximum of each smoothed, dark-subtracted channel
        (computed from the channels when None).
    thresholds : sequence of float, optional
        Brightness thresholds of the flat-fielded channels (the ``quantile`` of each
        whole channel; computed when None).

    Returns
    -------
    ndarray of bool
        Lipofuscin mask.
    """
    chans = [np.asarray(c) for c in channels]  # converted one at a time
    shape = chans[0].shape if chans else (0, 0)
    out = np.zeros(shape, bool)
    if len(chans) < 2 or min(shape) < 3:
        return out
    px = float(pixel_size_um)
    stats = []
    n_bright = np.zeros(shape, np.int8)
    for k, c in enumerate(chans):
        dl = None if dark_levels is None else dark_levels[k]
        if dl is None:
            dl = estimate_dark_level(c)
        if medians is None or maxima is None:
            g = smooth_for_stats(c)
            med = max(quantised_quantiles(g, [0.5])[0] - float(dl), 0.0)
            mx = float(g.max()) - float(dl)
        else:
            med, mx = float(medians[k]), float(maxima[k])
        if mx <= 0:
            return out
        flat, _, _ = lipofuscin_flat(c, dark_level=float(dl), median=med, maximum=mx,
                                     pixel_size_um=px, max_area_um2=max_area_um2,
                                     min_contrast=min_contrast, spots=False)
        thr = (quantised_quantiles(flat, [quantile])[0] if thresholds is None
               else float(thresholds[k]))
        n_bright += flat > thr
        stats.append((float(dl), med, mx))
    del flat
    # all channels (with 3 or more: all but one) among their brightest pixels (the
    # neuron marker is bright in every neuron anyway), and a spot in every channel:
    # the (costly) spot test runs only where the cheap brightness test passed
    need = len(chans) if len(chans) < 3 else len(chans) - 1
    spots = n_bright >= need
    size = _opening_size(max_area_um2, px)
    for c, (dl, med, mx) in zip(chans, stats, strict=True):
        if not spots.any():
            return out
        spots = _spots_at(c, dl, spots, size, _floor(med, mx), med, min_contrast)
    lab, _ = ndi.label(spots)
    area = np.bincount(lab.ravel()) * px * px
    ok = area <= max_area_um2
    ok[0] = False
    out = ok[lab]
    it = int(round(dilate_um / px))
    if it > 0 and out.any():
        out = binary_dilation(out, it)
    return out
