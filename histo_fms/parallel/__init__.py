"""Parallel execution: dask clusters, and tiles with exact stitching for large images."""

from ._cluster import SYNCHRONOUS, default_workers, open_client

__all__ = ["SYNCHRONOUS", "default_workers", "open_client"]
