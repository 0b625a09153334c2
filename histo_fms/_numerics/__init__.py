"""Shared numerics of the pure-compute packages (private).

Exact quantiles and per-label order statistics (``_quantiles``), block-grid background
maps and dark levels (``_background``), and local crops, distances and feature
transforms (``_local``). ``histo_fms.drg``, ``histo_fms.segment`` and
``histo_fms.parallel`` use them; this package imports no other part of histo_fms.
"""
