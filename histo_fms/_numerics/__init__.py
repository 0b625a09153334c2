"""Shared numerics of the pure-compute packages (private).

Exact quantiles and per-label order statistics (``_quantiles``), block-grid background
maps and dark levels (``_background``), local crops, distances and feature
transforms (``_local``, ``_edt``), and compiled kernels equal to their scipy /
scikit-image references (numba, imported on first use: ``_jit``).
``histo_fms.drg``, ``histo_fms.skin``, ``histo_fms.segment`` and ``histo_fms.parallel``
use them; this package imports no other part of histo_fms.
"""
