"""Statistics: agreement between raters or methods, and group comparisons per animal."""

from ._agreement import bland_altman, icc_a1

__all__ = ["bland_altman", "icc_a1"]
