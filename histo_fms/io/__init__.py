"""Reading microscope exports and writing results, atomically.

Everything that touches files lives here; the analysis packages (:mod:`histo_fms.drg`,
:mod:`histo_fms.skin`) never do.
"""

from ._bioio import read_bioio
from ._channels import resolve_channels, resolve_channels_report
from ._errors import InputError
from ._image import ImageData
from ._ometiff_write import write_ome_tiff
from ._omezarr import read_omezarr, write_omezarr
from ._read import image_stem, is_image_file, read_image, require_pixel_size
from ._samples import match_sample, read_sample_sheet
from ._tiff import read_tiff
from ._write import (
    atomic_path,
    read_labels_scale,
    read_labels_zarr,
    read_polylines,
    write_json,
    write_labels_zarr,
    write_polylines,
    write_table,
)

__all__ = [
    "ImageData",
    "InputError",
    "atomic_path",
    "image_stem",
    "is_image_file",
    "read_bioio",
    "read_image",
    "read_omezarr",
    "write_omezarr",
    "read_labels_scale",
    "read_labels_zarr",
    "read_polylines",
    "read_sample_sheet",
    "match_sample",
    "read_tiff",
    "require_pixel_size",
    "resolve_channels",
    "resolve_channels_report",
    "write_json",
    "write_labels_zarr",
    "write_ome_tiff",
    "write_polylines",
    "write_table",
]
