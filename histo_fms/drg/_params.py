"""Parameters of the DRG pipeline (the keys of the ``drg`` section of a pipeline config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DrgParams:
    """Parameters of the DRG SGC-ring IgG measurement.

    All lengths are in µm; the field names are the config keys.

    Attributes
    ----------
    ring_width_um : float
        Outer distance of the SGC ring from the neuron outline (ring = band between
        the outline and this distance, clipped so rings never overlap).
    min_diameter_um : float
        Segmented objects with a smaller equivalent diameter are discarded.
    max_diameter_um : float
        Largest expected neuron; sets segmentation background windows and is the
        minimum tile margin for tiled processing.
    size_class_bounds_um : tuple of float
        ``(small_max, large_min)``: diameter < small_max is "small", > large_min
        "large", otherwise "medium".
    background_width_um : float
        Width of the local-background band beyond the ring.
    background_percentile : float
        Percentile of the background band's IgG taken as local background (50 =
        median).
    min_background_area_um2 : float
        Fewer background-band pixels than this: fall back to a smooth tissue-wide
        background map.
    background_tissue_range : tuple of float
        Background pixels must lie within this range of multiples of a smooth
        large-scale reference level (running 30th percentile over ``background_reference_um``):
        below is empty slide, above are IgG-bright structures (vessels, capsule).
    background_reference_um : float
        Window of the large-scale background reference.
    bright_structure_um : float
        IgG-bright structures (above the upper ``background_tissue_range`` factor) at
        least this thick are vessels or capsule, not SGC sheaths: they are left out of
        the rings. Keep it above twice the thickest SGC sheath; 0 disables.
    exclude_sgc_negative_bright : bool
        With an SGC channel: leave out of the ring the IgG-bright pixels (above the
        upper ``background_tissue_range`` factor) that are SGC-negative (vessels,
        capsule next to a neuron), and the 1 µm around them (their blurred glow).
    vessel_reach_um : float
        With ``exclude_sgc_negative_bright``: the IgG-bright pixels connected to such
        an SGC-negative structure within this distance (a vessel lying along the
        sheath, SGC-positive where it overlaps it) are left out of the ring too. 0
        keeps only the 1 µm around the SGC-negative pixels.
    ring_guard_um : float
        Ring pixels within this distance of a neighbour's ring or soma are left out
        of the IgG measurement: where two rings meet, bright IgG of one sheath blurs
        into the other ring. 0 disables.
    restrict_ring_to_sgc : bool
        Measure only the ring pixels that are SGC-marker positive (needs an SGC
        channel).
    sheath_fraction : float
        With an SGC channel: measure IgG on the sheath proper, the ring pixels whose
        SGC-marker excess over its local background is at least this fraction of the
        ring's peak (95th percentile) excess, so that a thin sheath is not diluted by
        the tissue in the rest of the ``ring_width_um`` annulus. 0 measures the whole
        annulus.
    ring_statistic : {"trimmed", "median", "mean"}
        Statistic of the ring pixels' IgG (less the glow) whose excess over the
        background is the ring's IgG. ``"trimmed"`` (default): the mean of the pixels
        between the ring's 10th and 90th percentiles, which IgG-bright specks, vessel
        ends or another sheath's glow on a small part of the ring do not move, while a
        bound patch on a third of the ring still counts; ``"median"``: more robust,
        but blind to patches on less than half the ring; ``"mean"``: the former
        measurement.
    illumination_sigma_um : float, optional
        The ring's excess is divided by the illumination level at the neuron: the
        ordinary-tissue IgG (the background pixels) averaged with a Gaussian of this
        sigma, so that uneven illumination (vignetting, a large-scale gradient) cancels
        while the local texture of the tissue around one neuron does not rescale its
        ring. None (default): the sigma of the smooth tissue-background fallback map,
        ``max(20, 2 * (ring_width_um + background_width_um))``; 0 divides by the local
        ``background`` itself (the former measurement).
    glow_correction : bool
        Subtract from the ring the blurred glow of the neuron's own (cytoplasmic) IgG,
        fitted per neuron on the soma's outer ``glow_depth_um`` and the background
        band (see :func:`histo_fms.drg.measure_rings`).
    glow_sigma_um : float or tuple of float
        Spread (Gaussian sigma) of that glow, the optical blur across the outline; with
        several values each neuron uses the one that fits its pixels best (the blur is
        not known in advance).
    glow_depth_um : float
        Depth of the soma rim used to fit the glow.
    igg_coverage_factor : float
        A ring pixel counts as IgG-covered when above this multiple of its local
        background.
    sgc_coverage_factor : float
        Same for the SGC marker (relative to its own local background).
    min_signal_ratio : float
        A channel is used only when its structure stands above its pixel noise: its
        signal ratio in the section's context (:attr:`DrgContext.sgc_signal_ratio`,
        :attr:`DrgContext.neuron_signal_ratio`: 99.5th minus 50th percentile of the
        lightly smoothed channel, over the interquartile range of its pixel-scale
        residual; white noise of any level gives 0.27) must reach this. Below it (a
        channel of camera noise only: the wrong channel, or a failed stain) the SGC
        channel is left out of the classical segmentation, the lipofuscin mask and the
        ring measurement, ``sgc_coverage`` is left empty and the section is flagged
        ``sgc_no_signal`` (with ``restrict_ring_to_sgc`` the section is an error); a
        neuron channel below it is an error (:class:`NoSignalError`): no neuron
        can be found on noise. 0 turns the check off.
    dark_level : float, optional
        Camera offset (counts) subtracted from every channel; estimated per channel
        (a low percentile of the smoothed image) when not given.
    reject_lipofuscin : bool
        Mask lipofuscin (pixels bright in every channel) out of rings and background.
    lipofuscin_min_contrast : float
        A pixel is a granule candidate in a channel when at least this multiple of its
        surroundings (morphological opening); lipofuscin must be one in every channel.
    lipofuscin_quantile : float
        ... and above this brightness quantile (0-1) of the flat-fielded channel.
    lipofuscin_max_area_um2 : float
        Bright-in-all-channels components larger than this are not lipofuscin.
    lipofuscin_dilate_um : float
        Dilation of the lipofuscin mask (covers the blurred halo).
    segmentation_backend : str
        Neuron segmentation backend (``"classical"``, or ``"cellpose"`` when installed).
    segmentation_options : dict
        Extra keyword options for the backend.
    """

    ring_width_um: float = 4.0
    min_diameter_um: float = 10.0
    max_diameter_um: float = 60.0
    size_class_bounds_um: tuple[float, float] = (25.0, 35.0)
    background_width_um: float = 8.0
    background_percentile: float = 50.0
    min_background_area_um2: float = 25.0
    background_tissue_range: tuple[float, float] = (0.3, 2.0)
    background_reference_um: float = 100.0
    bright_structure_um: float = 11.0
    exclude_sgc_negative_bright: bool = True
    vessel_reach_um: float = 4.0
    ring_guard_um: float = 1.0
    restrict_ring_to_sgc: bool = False
    sheath_fraction: float = 0.5
    ring_statistic: str = "trimmed"
    illumination_sigma_um: float | None = None
    glow_correction: bool = True
    glow_sigma_um: float | tuple[float, ...] = 0.35
    glow_depth_um: float = 3.0
    igg_coverage_factor: float = 1.5
    sgc_coverage_factor: float = 2.0
    min_signal_ratio: float = 1.0
    dark_level: float | None = None
    reject_lipofuscin: bool = True
    lipofuscin_min_contrast: float = 1.5
    lipofuscin_quantile: float = 0.98
    lipofuscin_max_area_um2: float = 20.0
    lipofuscin_dilate_um: float = 1.0
    segmentation_backend: str = "classical"
    segmentation_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bounds = tuple(float(b) for b in self.size_class_bounds_um)
        object.__setattr__(self, "size_class_bounds_um", bounds)
        rng = tuple(float(b) for b in self.background_tissue_range)
        object.__setattr__(self, "background_tissue_range", rng)
        if len(rng) != 2 or not 0 <= rng[0] < rng[1]:
            raise ValueError("background_tissue_range must be two increasing factors")
        opts = dict(self.segmentation_options or {})
        if self.segmentation_backend == "classical":
            from ..segment._classical import check_options

            opts = check_options(opts)
        object.__setattr__(self, "segmentation_options", opts)
        if len(bounds) != 2 or not bounds[0] <= bounds[1]:
            raise ValueError("size_class_bounds_um must be two increasing diameters")
        for name in ("ring_width_um", "max_diameter_um", "background_width_um",
                     "igg_coverage_factor", "sgc_coverage_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.min_diameter_um < self.max_diameter_um:
            raise ValueError("need 0 <= min_diameter_um < max_diameter_um")
        if not self.min_signal_ratio >= 0:
            raise ValueError("min_signal_ratio must be >= 0")
        if not self.vessel_reach_um >= 0:
            raise ValueError("vessel_reach_um must be >= 0")
        if not 0 <= self.sheath_fraction < 1:
            raise ValueError("sheath_fraction must be in [0, 1)")
        sig = self.glow_sigma_um
        sig = tuple(float(x) for x in sig) if isinstance(sig, (list, tuple)) else float(sig)
        object.__setattr__(self, "glow_sigma_um", sig)
        if not all(x > 0 for x in (sig if isinstance(sig, tuple) else (sig,))) or sig == ():
            raise ValueError("glow_sigma_um must be positive")
        if self.ring_statistic not in ("median", "mean", "trimmed"):
            raise ValueError("ring_statistic must be 'median', 'trimmed' or 'mean'")
        if self.illumination_sigma_um is not None and not self.illumination_sigma_um >= 0:
            raise ValueError("illumination_sigma_um must be >= 0")
        if not self.glow_depth_um > 0:
            raise ValueError("glow_depth_um must be positive")
        if not 0 <= self.background_percentile <= 100:
            raise ValueError("background_percentile must be in [0, 100]")
        if not 0 < self.lipofuscin_quantile < 1:
            raise ValueError("lipofuscin_quantile must be in (0, 1)")
        if not self.lipofuscin_min_contrast > 1:
            raise ValueError("lipofuscin_min_contrast must be > 1")


def _smooth_sigma_px(p: DrgParams, px: float) -> float:
    """Sigma (px) of the smooth tissue-background fallback map."""
    return max(20.0, 2 * (p.ring_width_um + p.background_width_um)) / px


def _illumination_sigma_px(p: DrgParams, px: float) -> float:
    """Sigma (px) of the illumination-level map (0: none, the local background)."""
    if p.illumination_sigma_um is None:
        return _smooth_sigma_px(p, px)
    return float(p.illumination_sigma_um) / px
