"""Parallel execution: dask clusters, and tiles with exact stitching for large images."""

from ._cluster import SYNCHRONOUS, default_workers, open_client
from ._drg_tiled import compute_context_tiled, context_and_clipping_tiled, measure_drg_tiled

__all__ = ["SYNCHRONOUS", "default_workers", "open_client", "measure_drg_tiled",
           "compute_context_tiled", "context_and_clipping_tiled"]
