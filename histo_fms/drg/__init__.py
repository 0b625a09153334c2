"""DRG: neurons, SGC rings and IgG on them; pure functions on numpy arrays.

The main entry point is :func:`measure_drg`; its pieces (:func:`make_rings`,
:func:`measure_rings`, :func:`measure_neurons`, :func:`detect_lipofuscin`) work on
given labels for tiling and review. Image-wide statistics are one explicit input,
a :class:`DrgContext` (:func:`compute_context`); given it, everything is local, so a
tile with :func:`required_margin_px` of margin measures its neurons exactly as the
whole section does. Calling is separate: :func:`calibrate_threshold`
on control sections, then :func:`call_igg` and :func:`summarize_section`.
"""

from .._numerics._background import estimate_dark_level
from ._calibrate import (
    Calibration,
    calibrate,
    calibrate_threshold,
    call_igg,
    percent_interval,
    summarize_section,
    wilson_interval,
)
from ._context import DrgContext, NoSignalError, compute_context, required_margin_px
from ._lipofuscin import detect_lipofuscin
from ._measure import (
    TABLE_COLUMNS,
    DrgResult,
    measure_drg,
    measure_neurons,
    measure_rings,
    size_class,
)
from ._params import DrgParams
from ._rings import make_background_bands, make_rings

__all__ = [
    "DrgParams",
    "DrgResult",
    "DrgContext",
    "NoSignalError",
    "compute_context",
    "required_margin_px",
    "TABLE_COLUMNS",
    "measure_drg",
    "measure_neurons",
    "measure_rings",
    "make_rings",
    "make_background_bands",
    "detect_lipofuscin",
    "estimate_dark_level",
    "size_class",
    "Calibration",
    "calibrate",
    "calibrate_threshold",
    "percent_interval",
    "wilson_interval",
    "call_igg",
    "summarize_section",
]
