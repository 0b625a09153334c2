"""histo-fms: DRG satellite-glia IgG and skin IENFD histology pipelines."""

__version__ = "0.1.0"
