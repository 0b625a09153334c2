"""Image-wide statistics of a DRG section, as one explicit input of the pure functions.

Every value that depends on the whole section (camera offsets, channel medians,
lipofuscin brightness thresholds, the neuron channel's contrast spread) lives in a
:class:`DrgContext`. :func:`measure_drg` computes it with :func:`compute_context` when
none is given; a tiled run computes the very same numbers once from the whole (lazy)
section in bounded memory (``histo_fms.parallel.compute_context_tiled``) and passes
it to every tile. Everything else in the pipeline is local, so tiles see the same
values as the whole image.

The quantiles (dark level, median, spread, lipofuscin thresholds) are those of the
values quantised to 11 mantissa bits (rounded toward zero, a relative change below
0.05 %; :mod:`histo_fms._numerics._quantiles`): one histogram pass over the tiles gives
them exactly. Maxima are exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .._numerics._background import (
    block_size,
    local_background_radius,
    smooth_for_stats,
)
from .._numerics._noise import (
    NOISE_QUANTILES,
    SPREAD_QUANTILES,
    no_signal_message,
    residual,
    signal_ratio,
)
from .._numerics._quantiles import quantised_quantiles
from ..segment._classical import opening_radius_px
from ._lipofuscin import LIPOFUSCIN_WINDOW_UM, lipofuscin_flat
from ._params import DrgParams, _illumination_sigma_px, _smooth_sigma_px

ROLES = ("neuron", "igg", "sgc", "nuclei")

#: quantiles (0-1) of the smoothed channel taken by the context
DARK_QUANTILE = 0.001
#: section flag: the SGC channel has no structure above its pixel noise
SGC_NO_SIGNAL = "sgc_no_signal"


@dataclass(frozen=True)
class DrgContext:
    """Image-wide statistics of one section (by channel role).

    Attributes
    ----------
    dark_levels : dict
        Camera offset (counts) subtracted from each channel.
    medians : dict
        Median of each smoothed, dark-subtracted channel (>= 0).
    maxima : dict
        Maximum of each smoothed, dark-subtracted channel.
    lipofuscin_thresholds : dict
        Brightness threshold of each flat-fielded channel for lipofuscin (the
        ``lipofuscin_quantile`` of the whole section); empty when lipofuscin is not
        detected.
    neuron_spread : float
        99.5th minus 50th percentile of the smoothed neuron channel (floor of the
        segmentation's contrast scale).
    sgc_spread : float
        The same for the SGC channel (floor of the sheath contrast scale; 0 without one).
    highs : dict
        99.5th percentile of each smoothed channel above its dark level (the
        pixel classifier's intensity scale).
    sgc_signal_ratio : float or None
        How far the SGC channel's structure stands above its pixel noise:
        ``sgc_spread`` over the interquartile range of the channel less its smoothed
        copy (:mod:`histo_fms._numerics._noise`). White noise of any level gives
        0.27; real SGC stains 10-65. None: no SGC channel (or not measured).
    neuron_signal_ratio : float or None
        The same for the neuron channel (real neuron stains 6-55).

    Notes
    -----
    Percentiles and quantiles here are
    :func:`histo_fms._numerics._quantiles.quantised_quantiles` of the values (quantised
    to 11 mantissa bits); medians and maxima are relative to the dark level.
    """

    dark_levels: dict[str, float] = field(default_factory=dict)
    medians: dict[str, float] = field(default_factory=dict)
    maxima: dict[str, float] = field(default_factory=dict)
    lipofuscin_thresholds: dict[str, float] = field(default_factory=dict)
    neuron_spread: float = 0.0
    sgc_spread: float = 0.0
    highs: dict[str, float] = field(default_factory=dict)
    sgc_signal_ratio: float | None = None
    neuron_signal_ratio: float | None = None


class NoSignalError(ValueError):
    """A channel the measurement needs shows no structure above its pixel noise."""

    user_facing = True


def sgc_usable(context: DrgContext, params: DrgParams | None = None) -> bool:
    """Whether a section's SGC channel carries structure enough to be used.

    Parameters
    ----------
    context : DrgContext
        The section's statistics.
    params : DrgParams, optional
        Parameters (``min_signal_ratio``).

    Returns
    -------
    bool
        False when ``context.sgc_signal_ratio`` is below ``min_signal_ratio``
        (True when it was not measured, or the check is off).
    """
    p = params or DrgParams()
    r = context.sgc_signal_ratio
    return r is None or p.min_signal_ratio <= 0 or r >= p.min_signal_ratio


def section_flags(context: DrgContext, roles, params: DrgParams | None = None) -> str:
    """Return the quality flags of a DRG section (``;``-joined, blank when none).

    Parameters
    ----------
    context : DrgContext
        The section's statistics.
    roles : iterable of str
        The channel roles given.
    params : DrgParams, optional
        Parameters.

    Returns
    -------
    str
        ``sgc_no_signal`` when an SGC channel was given but is not usable
        (:func:`sgc_usable`), else ``""``.
    """
    return SGC_NO_SIGNAL if "sgc" in set(roles) and not sgc_usable(context, params) else ""


def sgc_no_signal_message(context: DrgContext, params: DrgParams | None = None) -> str:
    """Return one line telling why a section's SGC channel was left out."""
    p = params or DrgParams()
    return no_signal_message("sgc", context.sgc_signal_ratio, p.min_signal_ratio)


def check_neuron_signal(context: DrgContext, params: DrgParams | None = None) -> None:
    """Refuse a section whose neuron channel shows no structure above its pixel noise.

    Parameters
    ----------
    context : DrgContext
        The section's statistics.
    params : DrgParams, optional
        Parameters (``min_signal_ratio``; 0 turns the check off).

    Raises
    ------
    NoSignalError
        ``context.neuron_signal_ratio`` is below ``min_signal_ratio`` (but not 0: a
        constant channel is blank, and gives no neurons).
    """
    p = params or DrgParams()
    r = context.neuron_signal_ratio
    # a constant channel (ratio 0) is the blank case: 0 neurons, with its own warning
    if r is not None and p.min_signal_ratio > 0 and 0 < r < p.min_signal_ratio:
        raise NoSignalError(no_signal_message("neuron", r, p.min_signal_ratio)
                            + " (or a field of view with no tissue). No neuron can be found "
                            "on noise")


def stats_from_quantiles(quantiles: Mapping[float, float], maximum: float, *,
                         dark_level: float | None = None) -> tuple[float, float, float]:
    """Dark level, median and maximum of a channel from its smoothed-image quantiles.

    Parameters
    ----------
    quantiles : mapping
        Quantile (0-1) -> value of the smoothed channel; needs :data:`DARK_QUANTILE`
        (unless ``dark_level`` is given) and 0.5.
    maximum : float
        Maximum of the smoothed channel.
    dark_level : float, optional
        Known camera offset.

    Returns
    -------
    dark, median, maximum : float
        Offset, and median and maximum after subtracting it (median >= 0).
    """
    dark = float(quantiles[DARK_QUANTILE]) if dark_level is None else float(dark_level)
    return dark, max(float(quantiles[0.5]) - dark, 0.0), float(maximum) - dark


def lipofuscin_roles(roles, params: DrgParams) -> list[str]:
    """Channel roles used for lipofuscin detection (empty when it is off).

    Parameters
    ----------
    roles : iterable of str
        Roles present.
    params : DrgParams
        Parameters.

    Returns
    -------
    list of str
        The roles (all of them, in :data:`ROLES` order, when two or more).
    """
    r = [k for k in ROLES if k in set(roles)]
    return r if params.reject_lipofuscin and len(r) >= 2 else []


def compute_context(
    channels: Mapping[str, np.ndarray],
    *,
    pixel_size_um: float,
    params: DrgParams | None = None,
    dark_levels: Mapping[str, float] | None = None,
    lipofuscin: bool = True,
) -> DrgContext:
    """Compute the image-wide statistics of a section (numpy, whole image in memory).

    Parameters
    ----------
    channels : mapping of str to ndarray
        Channel role (``"neuron"``, ``"igg"``, ``"sgc"``, ``"nuclei"``) -> 2-D image.
    pixel_size_um : float
        Pixel size in µm.
    params : DrgParams, optional
        Pipeline parameters (defaults if None).
    dark_levels : mapping, optional
        Known camera offsets by role (else ``params.dark_level``, else estimated as
        the 0.5th percentile of the smoothed channel, quantised as in
        :func:`histo_fms._numerics._quantiles.quantised_quantiles`).
    lipofuscin : bool
        Also compute the lipofuscin thresholds (``False``: leave them to
        :func:`histo_fms.drg.detect_lipofuscin`, which computes the same values).

    Returns
    -------
    DrgContext
        The statistics; ``histo_fms.parallel.compute_context_tiled`` gives identical
        values from tiles.

    Examples
    --------
    >>> import numpy as np
    >>> ctx = compute_context({"neuron": np.full((8, 8), 100.0), "igg": np.zeros((8, 8))},
    ...                       pixel_size_um=0.5)
    >>> ctx.dark_levels["neuron"]
    100.0
    """
    p = params or DrgParams()
    given = dict(dark_levels or {})
    unknown = set(given) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown channel roles in dark_levels: {sorted(unknown)}")
    unknown = set(channels) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown channel roles: {sorted(unknown)}")
    dark, med, mx, hi = {}, {}, {}, {}
    spread = sgc_spread = 0.0
    quartiles = {}
    for role in [r for r in ROLES if r in channels]:
        g = smooth_for_stats(channels[role])
        if role in ("neuron", "sgc") and g.size:
            res = residual(channels[role], g)
            quartiles[role] = tuple(quantised_quantiles(res, list(NOISE_QUANTILES)))
            del res
        if g.size == 0:
            dark[role], med[role], mx[role], hi[role] = 0.0, 0.0, 0.0, 0.0
            continue
        qs = [DARK_QUANTILE, *SPREAD_QUANTILES]
        vals = dict(zip(qs, quantised_quantiles(g, qs), strict=True))
        known = given.get(role, p.dark_level)
        dark[role], med[role], mx[role] = stats_from_quantiles(vals, float(g.max()),
                                                               dark_level=known)
        hi[role] = max(float(vals[0.995]) - dark[role], 0.0)
        if role == "neuron":
            spread = vals[0.995] - vals[0.5]
        if role == "sgc":
            sgc_spread = vals[0.995] - vals[0.5]
    thresholds = {}
    lroles = lipofuscin_roles(channels, p) if lipofuscin else []
    if lroles and min(np.shape(channels[lroles[0]])) >= 3:
        for role in lroles:
            flat, _, _ = lipofuscin_flat(channels[role], dark_level=dark[role],
                                         median=med[role], maximum=mx[role],
                                         pixel_size_um=pixel_size_um,
                                         max_area_um2=p.lipofuscin_max_area_um2,
                                         min_contrast=p.lipofuscin_min_contrast,
                                         spots=False)
            thresholds[role] = quantised_quantiles(flat, [p.lipofuscin_quantile])[0]
    return DrgContext(dark_levels=dark, medians=med, maxima=mx,
                      lipofuscin_thresholds=thresholds, neuron_spread=float(spread),
                      sgc_spread=float(sgc_spread), highs=hi,
                      sgc_signal_ratio=(signal_ratio(sgc_spread, quartiles["sgc"])
                                        if "sgc" in quartiles else None),
                      neuron_signal_ratio=(signal_ratio(spread, quartiles["neuron"])
                                           if "neuron" in quartiles else None))


def _gauss_radius(sigma: float) -> int:
    return int(4.0 * float(sigma) + 0.5) + 1


def context_margins_px(params: DrgParams | None, pixel_size_um: float) -> tuple[int, int]:
    """Margins (px) the two tiled context passes need: smoothing, and lipofuscin flat field.

    Parameters
    ----------
    params : DrgParams, optional
        Parameters.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    tuple of int
        Margin of the channel-statistics pass and of the lipofuscin-threshold pass.
    """
    p = params or DrgParams()
    px = float(pixel_size_um)
    size = int(2 * np.ceil(np.sqrt(p.lipofuscin_max_area_um2 / np.pi) / px) + 1)
    lipo = _gauss_radius(0.6) + max(2 * (size // 2),
                                    local_background_radius(LIPOFUSCIN_WINDOW_UM / px))
    return _gauss_radius(2.0), lipo


def alignment_px(params: DrgParams | None, pixel_size_um: float) -> int:
    """Grid on which tile origins must lie so block-downsampled maps match the whole image.

    Every block map (background grids) is anchored at the array's pixel (0, 0) with
    power-of-two blocks; an outer tile region whose origin is a multiple of the
    largest block size sees the same blocks as the whole image.

    Parameters
    ----------
    params : DrgParams, optional
        Parameters.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    int
        The largest block size (a power of two), at least 8.
    """
    p = params or DrgParams()
    px = float(pixel_size_um)
    windows = [2 * p.max_diameter_um / px, LIPOFUSCIN_WINDOW_UM / px,
               p.background_reference_um / px]
    sig = max(_smooth_sigma_px(p, px), _illumination_sigma_px(p, px))
    blocks = [block_size(w) for w in windows] + [block_size(4 * sig)]
    return max(8, *blocks)


def required_margin_px(params: DrgParams | None, pixel_size_um: float) -> int:
    """Tile margin (px) so that a tile measures its own neurons exactly as the whole image.

    The pipeline is local once the :class:`DrgContext` is fixed; the margin is the sum
    of the influence radii along its longest chain of dependencies:

    * lipofuscin mask: smoothing, opening and the 40 µm running median, plus the
      largest granule (``lipofuscin_max_area_um2``, as a length in px) and its dilation;
    * segmentation foreground: inpainting and smoothing, the background windows
      (``2 * max_diameter_um``);
    * the neuron itself (``max_diameter_um``) and its ring and band beyond the core
      edge, and a cluster of touching neurons (twice ``max_diameter_um``);
    * measurement around a neuron: ring + background band (twice: nearest-neuron
      assignment), the large-scale tissue reference (``background_reference_um``),
      the bright-structure opening and the smooth tissue-background fallback map.

    Objects are then exact as long as each cluster of touching neurons within the
    measurement radius fits in the margin; :func:`histo_fms.parallel.measure_drg_tiled`
    checks this per tile and enlarges the margin of a tile that needs more.

    Parameters
    ----------
    params : DrgParams, optional
        Parameters.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    int
        Margin in pixels, a multiple of :func:`alignment_px`.
    """
    p = params or DrgParams()
    px = float(pixel_size_um)
    seg, meas = segmentation_radius_px(p, px), measurement_radius_px(p, px)
    m = seg + meas + object_reach_px(p, px) + int(np.ceil(2 * p.max_diameter_um / px))
    a = alignment_px(p, px)
    return -(-m // a) * a


def exact_tile_margins_px(params: DrgParams | None, pixel_size_um: float) -> tuple[int, int]:
    """Margins (px) of the two passes of an exact tiled run: segmentation, measurement.

    A tiled run that segments the whole section first (labels and lipofuscin mask
    written to disk, every tile checked) and then measures it with those labels needs
    only each pass's own radius, not their sum (:func:`required_margin_px`):

    * segmentation pass: :func:`segmentation_radius_px` plus room for the clusters of
      touching neurons that meet the core (four times ``max_diameter_um``: on the
      benchmark mosaic phantom the clusters of foreground, grown as the tiling check
      grows them, extend up to ~200 µm at the 99th percentile, and with twice
      ``max_diameter_um`` ~80 % of the tiles had to be run again). A tile whose clusters
      reach farther is run again with the margin it lacked; this value only sets the
      first try;
    * measurement pass (labels given, exact everywhere): the neuron's reach beyond its
      first pixel (:func:`object_reach_px`) plus :func:`measurement_radius_px`.

    Parameters
    ----------
    params : DrgParams, optional
        Parameters.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    tuple of int
        The two margins, multiples of :func:`alignment_px`.
    """
    p = params or DrgParams()
    px = float(pixel_size_um)
    a = alignment_px(p, px)
    seg = segmentation_radius_px(p, px) + int(np.ceil(4 * p.max_diameter_um / px))
    meas = object_reach_px(p, px) + measurement_radius_px(p, px)
    return -(-seg // a) * a, -(-meas // a) * a


def segmentation_radius_px(params: DrgParams, pixel_size_um: float) -> int:
    """Distance (px) from a tile edge beyond which the foreground mask is exact.

    Parameters
    ----------
    params : DrgParams
        Parameters.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    int
        Radius in pixels.
    """
    p = params
    px = float(pixel_size_um)
    opts = dict(p.segmentation_options)
    if p.segmentation_backend == "pixel_classifier":
        from ..segment._pixel_classifier import reach_px

        return reach_px(opts, px, max_diameter_um=p.max_diameter_um)
    r = 0
    if p.reject_lipofuscin:
        _, lipo = context_margins_px(p, px)
        r += lipo + int(np.ceil(p.lipofuscin_max_area_um2 / px**2)) + int(
            round(p.lipofuscin_dilate_um / px)) + 1
        r += _gauss_radius(max(1.0, 2.0 / px))  # inpainting
    r += _gauss_radius(float(opts.get("smooth_um", 0.7)) / px)
    r += local_background_radius(2 * float(opts.get("max_diameter_um", p.max_diameter_um)) / px)
    if float(opts.get("sheath_ridge", 0.05)) > 0:  # SGC sheath lines: Hessian, line length
        sig = max(float(opts.get("ridge_um", 1.0)) / px, 1.0)
        r += _gauss_radius(sig) + int(np.ceil(float(opts.get("ridge_length_um", 8.0)) / px
                                               * 2 * sig))
    r += 2 * max(1, int(round(0.5 / px))) + 1
    if float(opts.get("sheath_rays", 0.25)) > 0:
        # sheath-star candidates: rays cast up to 2.2 x the capped distance to the
        # sheath from a centre inside the candidate, and 3 x 2 µm on past the sheath
        # (segment._rays.sheath_stars)
        from ..segment._rays import star_reach_px

        max_d = float(opts.get("max_diameter_um", p.max_diameter_um))
        r += star_reach_px(0.5 * max_d / px, 2.0 / px)
    if opts.get("sheath_regrow", True):  # outlines regrown into the sheath cut
        from ..segment._classical import regrow_px

        r += int(np.ceil(regrow_px(float(opts.get("smooth_um", 0.7)), px))) + 1
    # disc opening (fibres, puncta) after the hole filling
    rad = opening_radius_px(float(opts.get("min_diameter_um", p.min_diameter_um)), px,
                            opts.get("open_um"))
    r += 2 * int(np.ceil(rad)) + 2
    return r


def measurement_radius_px(params: DrgParams, pixel_size_um: float) -> int:
    """Distance (px) around a neuron within which labels and images must be exact.

    Parameters
    ----------
    params : DrgParams
        Parameters.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    int
        Radius in pixels.
    """
    p = params
    px = float(pixel_size_um)
    wb = int(np.ceil((p.ring_width_um + p.background_width_um) / px)) + 1
    smooth = _gauss_radius(max(0.5, 0.5 / px))
    se = max(3, int(round(p.bright_structure_um / px))) if p.bright_structure_um > 0 else 0
    grow = max(1, int(round(1.0 / px)))
    bright = 2 * se + 2 * grow + 2
    # vessels followed along the sheath: erosion, then the geodesic reach
    bright += 2 * grow + int(round(p.vessel_reach_um / px))
    ref = local_background_radius(p.background_reference_um / px)
    sig = max(_smooth_sigma_px(p, px), _illumination_sigma_px(p, px))
    fallback = int(np.ceil(4.0 * sig)) + 2 * block_size(4 * sig)
    guard = int(np.ceil(p.ring_guard_um / px)) + 1
    return 2 * wb + max(smooth + ref + bright, fallback + smooth + ref) + guard


def object_reach_px(params: DrgParams, pixel_size_um: float) -> int:
    """How far (px) a neuron with its ring and band reaches beyond its first pixel.

    Parameters
    ----------
    params : DrgParams
        Parameters.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    int
        Distance in pixels.
    """
    p = params
    return int(np.ceil((p.max_diameter_um + p.ring_width_um + p.background_width_um)
                       / float(pixel_size_um))) + 1
