"""Shared imaging model for phantoms: blur, vignetting, shot and read noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def vignetting(shape: tuple[int, int], strength: float, rng: np.random.Generator) -> np.ndarray:
    """Return a smooth multiplicative illumination field in ``(1 - strength, 1]``.

    The field falls off radially from a randomly shifted optical centre, as
    widefield and tiled confocal images do.
    """
    h, w = shape
    cy = h / 2 + rng.uniform(-0.2, 0.2) * h
    cx = w / 2 + rng.uniform(-0.2, 0.2) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - cy) / h) ** 2 + ((xx - cx) / w) ** 2
    r2 /= r2.max()
    return (1.0 - strength * r2).astype(np.float32)


def acquire(
    signal: np.ndarray,
    rng: np.random.Generator,
    *,
    psf_sigma_px: float = 1.0,
    illumination: np.ndarray | None = None,
    photons_per_unit: float = 40.0,
    read_noise: float = 3.0,
    offset: float = 100.0,
    gain: float = 1.0,
) -> np.ndarray:
    """Simulate a camera image of a non-negative 2-D ``signal``.

    Parameters
    ----------
    signal : ndarray
        Expected fluorophore density, arbitrary units (0 = dark).
    rng : numpy.random.Generator
        Random source.
    psf_sigma_px : float
        Gaussian PSF sigma in pixels.
    illumination : ndarray, optional
        Multiplicative illumination field (see :func:`vignetting`).
    photons_per_unit : float
        Photons detected per unit of signal.
    read_noise : float
        Gaussian read noise standard deviation, in counts.
    offset : float
        Camera offset (dark level), in counts.
    gain : float
        Counts per photon.

    Returns
    -------
    ndarray of uint16
        The simulated image.
    """
    s = ndi.gaussian_filter(signal.astype(np.float32), psf_sigma_px)
    if illumination is not None:
        s = s * illumination
    photons = rng.poisson(np.clip(s, 0, None) * photons_per_unit).astype(np.float32)
    img = photons * gain + offset + rng.normal(0, read_noise, size=s.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 65535).astype(np.uint16)
