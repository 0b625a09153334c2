"""Lipofuscin detection: small granules bright in every channel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from ..segment._background import estimate_dark_level, local_background


def detect_lipofuscin(
    channels: Sequence[np.ndarray],
    *,
    pixel_size_um: float,
    min_contrast: float = 1.5,
    quantile: float = 0.98,
    max_area_um2: float = 20.0,
    dilate_um: float = 1.0,
    dark_levels: Sequence[float | None] | None = None,
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

    Returns
    -------
    ndarray of bool
        Lipofuscin mask.
    """
    chans = [np.asarray(c, dtype=np.float32) for c in channels]
    shape = chans[0].shape if chans else (0, 0)
    out = np.zeros(shape, bool)
    if len(chans) < 2 or min(shape) < 3:
        return out
    px = float(pixel_size_um)
    size = int(2 * np.ceil(np.sqrt(max_area_um2 / np.pi) / px) + 1)
    spots = np.ones(shape, bool)
    n_bright = np.zeros(shape, np.int16)
    for k, c in enumerate(chans):
        dl = None if dark_levels is None else dark_levels[k]
        d = np.clip(c - (estimate_dark_level(c) if dl is None else dl), 0, None)
        d = ndi.gaussian_filter(d, 0.6)
        med = float(np.median(d))
        if float(d.max()) <= 0:
            return out
        opened = ndi.grey_opening(d, size=(size, size))
        floor = max(0.2 * med, 1e-6 * float(d.max()), 1e-6)
        spot = (d > min_contrast * np.maximum(opened, floor)) & (d > med)
        bg = local_background(d, window_px=40.0 / px, percentile=50.0)
        flat = d / np.maximum(bg, floor)
        spots &= spot
        n_bright += flat > np.quantile(flat, quantile)
        if not spots.any():
            return out
    # every channel shows a spot; all channels (with 3 or more: all but one) are among
    # their brightest pixels: the neuron marker is bright in every neuron anyway
    need = len(chans) if len(chans) < 3 else len(chans) - 1
    bright = spots & (n_bright >= need)
    lab, _ = ndi.label(bright)
    area = np.bincount(lab.ravel()) * px * px
    ok = area <= max_area_um2
    ok[0] = False
    out = ok[lab]
    it = int(round(dilate_um / px))
    if it > 0 and out.any():
        out = ndi.binary_dilation(out, iterations=it)
    return out
