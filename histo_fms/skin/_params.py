"""Parameters of the skin IENFD pipeline (the keys of the ``skin`` section of a config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SkinParams:
    """Parameters of the IENFD pipeline: epidermis, fibre tracing and crossing counting.

    All lengths are in µm; the field names are the config keys.

    Attributes
    ----------
    fibre_sigmas_um : tuple of float
        Scales (Gaussian sigmas) of the multi-scale ridge filter that enhances fibres;
        intraepidermal fibres are 0.5-1.5 µm wide.
    fibre_low_snr, fibre_high_snr : float
        Hysteresis thresholds of the ridge response, in robust standard deviations
        above its median over the tissue: pixels above ``fibre_high_snr`` seed a
        fibre, which grows through connected pixels above ``fibre_low_snr`` (so dim
        stretches between varicosities stay connected).
    gap_bridge_um : float
        Fibre ends closer than this to another traced fibre are joined (bridges
        out-of-focus gaps along beaded fibres). 0 disables bridging.
    min_fibre_length_um : float
        Traced pieces with a shorter skeleton are discarded as noise.
    min_penetration_um : float
        A fibre counts only when it reaches at least this far into the epidermis,
        measured from the DEJ.
    shallow_entry_um : float
        A traced piece that reaches less than this into the epidermis counts only when it
        crosses the DEJ steeply (see ``max_entry_obliquity``): the DEJ is placed to a few
        µm, so a fibre running along it weaves across the drawn line without entering.
    max_entry_obliquity : float
        Such a shallow piece's centre line may be at most this many µm long per µm of
        depth it spans (3: a crossing at about 20° or steeper, skeleton spurs allowed); a
        longer one runs along the DEJ and is not counted.
    entry_tolerance_um : float
        A traced piece reaching at least ``shallow_entry_um`` into the epidermis whose
        lower end stops at most this far short of the DEJ counts once, at that end: the
        DEJ is drawn to a µm or two, and a fibre whose dermal part is too faint to trace
        (out of the section's plane) otherwise ended just above it uncounted. Fragments
        ending higher up do not count. 0: a piece must reach the drawn DEJ.
    dermal_extent_um : float
        A fibre counts only when it is also seen at least this far on the dermal side
        of the DEJ (it crosses, rather than starting inside the epidermis).
    crossing_band_um : float
        Fibre parts deeper than this below the DEJ are cut off before grouping, so
        fibres joined only in the dermis (sub-epidermal plexus) count separately
        while branches joined inside the epidermis count once.
        Must exceed ``dermal_extent_um``.
    merge_distance_um : float
        Entry points of one intraepidermal fibre closer than this along the DEJ are
        one crossing (skeleton spurs, a fibre hugging the DEJ while entering).
    tissue_smoothing_um : float
        Gaussian sigma for the tissue / background mask.
    epidermis_smoothing_um : float
        Gaussian sigma of the nuclear (or autofluorescence) texture that marks the
        epidermis when no membrane channel is given.
    max_stratum_corneum_um : float
        Largest stratum corneum thickness: tissue between the dense epidermal band and
        the slide background within this distance is taken as stratum corneum.
    dej_search_um : float
        With a membrane (collagen IV) channel, the ridge response is scaled by its
        strength within this distance of the nuclear (texture) estimate; the ridge
        itself is searched over the whole depth range.
    membrane_sigma_um : float
        Unused (kept for old configs).
    membrane_width_um : float
        Width of the basement-membrane line; the ridge filter's scale.
    nucleus_diameter_um : float
        Keratinocyte nucleus size: the scale of the nuclear-density texture whose lower
        edge is the DEJ without a membrane channel.
    max_epidermis_thickness_um : float
        The DEJ is searched at most this far below the epidermal surface.
    dej_edge_window_um : float
        Depth window above / below a candidate DEJ point over which nuclear density is
        compared (dense above, sparse below).
    dej_column_smoothing_um : float
        Smoothing of the texture along the section before the edge is taken.
    dej_max_slope : float
        Smoothness bound of the DEJ path: largest change of depth per µm along the
        section, µm/µm (rete ridges are steep; 3 is about 72°; collagen IV is
        searched over the whole depth range, the fibre-channel level edge too).
    dej_step_cost : float
        Cost per µm of depth change of the path (per µm along the section the path
        gains at most 1 from a perfect edge); larger values give a straighter DEJ.
    dej_nuclear_weight : float
        With collagen IV: weight of the nuclear edge beside the membrane ridge (bridges
        gaps in the membrane along the keratinocyte layer).
    dej_autofluorescence_weight : float
        Weight of the fibre channel's diffuse epidermal brightness edge (fibres, fibres
        running side by side and bundles removed; only the lower edge of the bright
        region joined to the epidermis) beside the nuclear edge, scaled down where that
        step is unclear; 0 disables it.
    min_epidermis_length_um : float
        Shortest epidermal surface accepted; less raises ``NoEpidermisError``.
    min_epidermis_thickness_um : float
        Together with ``min_epidermis_length_um``: the dense band must cover at least
        their product in area (scattered dermal nuclei do not make an epidermis).
    min_epidermis_contrast : float
        The epidermal texture (nuclei) must be at least this many times brighter than
        the dermis (above the dark level), else ``NoEpidermisError``.
    min_signal_ratio : float
        An optional collagen IV (``membrane``) or nuclear channel is used only when its
        structure stands above its pixel noise: its signal ratio
        (:func:`histo_fms._numerics._noise.channel_signal_ratio`; white noise 0.27,
        real stains 20-35) must reach this. Below it (camera noise only: the wrong
        channel, a failed stain) it is left out, as if absent, and the section is
        flagged ``membrane_no_signal`` / ``nuclei_no_signal``. 0 always uses them.
    polyline_smoothing_um : float
        Gaussian smoothing of the surface and DEJ polylines along their length.
    polyline_step_um : float
        Vertex spacing of the output polylines.
    """

    fibre_sigmas_um: tuple[float, ...] = (0.5, 0.75, 1.0)
    fibre_low_snr: float = 4.0
    fibre_high_snr: float = 10.0
    gap_bridge_um: float = 2.5
    min_fibre_length_um: float = 4.0
    min_penetration_um: float = 1.0
    shallow_entry_um: float = 4.0
    max_entry_obliquity: float = 3.0
    entry_tolerance_um: float = 2.0
    dermal_extent_um: float = 1.0
    crossing_band_um: float = 2.0
    merge_distance_um: float = 3.0
    tissue_smoothing_um: float = 2.0
    epidermis_smoothing_um: float = 4.0
    max_stratum_corneum_um: float = 40.0
    dej_search_um: float = 20.0
    membrane_sigma_um: float = 0.5
    membrane_width_um: float = 1.5
    nucleus_diameter_um: float = 7.0
    max_epidermis_thickness_um: float = 200.0
    dej_edge_window_um: float = 8.0
    dej_column_smoothing_um: float = 3.0
    dej_max_slope: float = 3.0
    dej_step_cost: float = 0.05
    dej_nuclear_weight: float = 0.3
    dej_autofluorescence_weight: float = 1.0
    min_epidermis_length_um: float = 50.0
    min_epidermis_thickness_um: float = 10.0
    min_epidermis_contrast: float = 1.5
    min_signal_ratio: float = 1.0
    polyline_smoothing_um: float = 3.0
    polyline_step_um: float = 1.0

    def __post_init__(self) -> None:
        sig = tuple(float(s) for s in self.fibre_sigmas_um)
        if not sig or min(sig) <= 0:
            raise ValueError("fibre_sigmas_um must be a non-empty sequence of positive numbers")
        object.__setattr__(self, "fibre_sigmas_um", sig)
        if self.fibre_low_snr > self.fibre_high_snr:
            raise ValueError("fibre_low_snr must not exceed fibre_high_snr")
        if self.crossing_band_um <= self.dermal_extent_um:
            raise ValueError("crossing_band_um must exceed dermal_extent_um")
        for name in ("min_penetration_um", "dermal_extent_um", "gap_bridge_um",
                     "shallow_entry_um", "max_entry_obliquity", "entry_tolerance_um",
                     "min_fibre_length_um", "min_epidermis_length_um", "min_signal_ratio"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("tissue_smoothing_um", "epidermis_smoothing_um", "dej_search_um",
                     "membrane_sigma_um", "polyline_step_um", "membrane_width_um",
                     "nucleus_diameter_um", "max_epidermis_thickness_um",
                     "dej_edge_window_um", "dej_column_smoothing_um", "dej_max_slope"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
