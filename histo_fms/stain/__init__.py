"""Bright-field colour deconvolution: optical density, stain vectors, stain maps.

Pure functions on numpy arrays (no IO): a bright-field RGB image is turned into optical
density by the Beer-Lambert law against the slide's white level, the stain vectors are
named (``"hdab"``, ``"hed"``), given, or estimated per image (Macenko's method), and the
image is separated into one concentration map per stain with
:func:`skimage.color.separate_stains`.
"""

from ._deconvolution import (
    GLASS_OD,
    NAMED_STAINS,
    StainSeparation,
    deconvolve,
    estimate_stain_vectors,
    estimate_white_level,
    optical_density,
    resolve_stains,
    sample_step,
    separate,
    stain_matrix,
    tissue_mask,
    vector_angle_deg,
)

__all__ = [
    "GLASS_OD",
    "NAMED_STAINS",
    "StainSeparation",
    "deconvolve",
    "estimate_stain_vectors",
    "estimate_white_level",
    "optical_density",
    "resolve_stains",
    "sample_step",
    "separate",
    "stain_matrix",
    "tissue_mask",
    "vector_angle_deg",
]
