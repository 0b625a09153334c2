"""How far a channel's structure stands above its pixel noise (a noise-only channel check).

A channel that records camera noise only (the wrong channel mapped to a role, a failed or
omitted stain) is not blank, so no constant-channel check sees it; a method that looks
for lines or rings in it finds them everywhere. The *signal ratio* tells such a channel
apart: the spread (99.5th minus 50th percentile) of the channel smoothed with a Gaussian
of ``DARK_SMOOTH_PX`` (2 px), over the interquartile range of its pixel-scale residual
(the channel less that smoothed copy, mostly noise). For white noise of standard
deviation s the smoothed copy keeps ``s / (2 sqrt(pi) 2) = 0.141 s`` and the residual
``0.98 s``, so the ratio is ``2.576 x 0.141 / (1.349 x 0.98) = 0.27`` at any noise level;
stained structure (sheaths, membranes, nuclei) raises the spread far more than the
residual (10-65 on every real and phantom stain measured).

Both quantile sets are :func:`histo_fms._numerics._quantiles.quantised_quantiles`, so a
tiled pass that sums key histograms gives the same ratio (see
``histo_fms.parallel.compute_context_tiled``).
"""

from __future__ import annotations

import numpy as np

from ._background import smooth_for_stats
from ._quantiles import quantised_quantiles

#: quantiles (0-1) of the smoothed channel whose difference is its spread
SPREAD_QUANTILES = (0.5, 0.995)
#: quantiles (0-1) of the pixel-scale residual (its noise scale)
NOISE_QUANTILES = (0.25, 0.75)


def signal_ratio(spread: float, residual_quartiles: tuple[float, float]) -> float:
    """Return the signal ratio from a channel's spread and its residual's quartiles.

    Parameters
    ----------
    spread : float
        99.5th minus 50th percentile of the smoothed channel.
    residual_quartiles : tuple of float
        25th and 75th percentiles of the channel less its smoothed copy.

    Returns
    -------
    float
        ``spread / IQR`` (``inf`` when the residual has no spread but the channel does,
        0 for a constant channel).
    """
    iqr = float(residual_quartiles[1]) - float(residual_quartiles[0])
    if iqr > 0:
        return float(spread) / iqr
    return float("inf") if spread > 0 else 0.0


def residual(image: np.ndarray, smoothed: np.ndarray) -> np.ndarray:
    """Return the pixel-scale residual of a channel (float32): it less its smoothed copy."""
    return np.asarray(image, np.float32) - np.asarray(smoothed, np.float32)


def channel_signal_ratio(image: np.ndarray) -> float:
    """Return how far a 2-D channel's structure stands above its pixel noise.

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        The channel (any real dtype).

    Returns
    -------
    float
        The signal ratio (module docstring): about 0.27 for white noise, 0 for a
        constant or empty channel.

    Examples
    --------
    >>> import numpy as np
    >>> noise = np.random.default_rng(0).poisson(100.0, (256, 256))
    >>> round(channel_signal_ratio(noise), 1)
    0.3
    """
    a = np.asarray(image)
    if a.size == 0:
        return 0.0
    g = smooth_for_stats(a)
    lo, hi = quantised_quantiles(g, list(SPREAD_QUANTILES))
    r = residual(a, g)
    del g
    return signal_ratio(hi - lo, tuple(quantised_quantiles(r, list(NOISE_QUANTILES))))


def no_signal_message(role: str, ratio: float | None = None,
                      threshold: float | None = None) -> str:
    """Return one line telling that a channel role shows no structure above its noise.

    Parameters
    ----------
    role : str
        The channel role (``"sgc"``, ``"membrane"``, ``"nuclei"``).
    ratio, threshold : float, optional
        Its signal ratio and the minimum it missed, when known.

    Returns
    -------
    str
        The line (no file name: the caller prefixes it).
    """
    fig = "" if ratio is None else f"signal ratio {ratio:.2f}"
    if threshold is not None:
        fig += ("; " if fig else "") + f"minimum {threshold:g}"
    fig = f" ({fig}; white noise gives 0.27)" if fig else ""
    return (f"the {role} channel shows no structure above its pixel noise{fig}: the wrong "
            f"channel for the {role} role, or a failed stain?")
