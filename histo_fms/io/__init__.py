"""Reading microscope exports and writing results, atomically.

Everything that touches files lives here; the analysis packages (:mod:`histo_fms.drg`,
:mod:`histo_fms.skin`) never do.
"""

from ._bioio import read_bioio
from ._channels import resolve_channels, resolve_channels_report
from ._errors import InputError, OutputError
from ._image import ImageData
from ._masks import find_reference, read_annotation, read_plane
from ._ometiff_write import write_ome_tiff
from ._omezarr import read_omezarr, write_omezarr
from ._read import image_stem, is_image_file, read_image, require_pixel_size
from ._samples import batch_column, check_calibration_batches, match_sample, read_sample_sheet
from ._tiff import read_tiff
from ._write import (
    atomic_path,
    labels_zarr_writer,
    read_labels_scale,
    read_labels_zarr,
    read_polylines,
    recover_folder,
    restore_backups,
    transaction,
    write_json,
    write_labels_zarr,
    write_polylines,
    write_table,
)

__all__ = [
    "ImageData",
    "InputError",
    "OutputError",
    "atomic_path",
    "find_reference",
    "image_stem",
    "is_image_file",
    "read_bioio",
    "read_image",
    "read_annotation",
    "read_omezarr",
    "read_plane",
    "write_omezarr",
    "read_labels_scale",
    "read_labels_zarr",
    "read_polylines",
    "read_sample_sheet",
    "match_sample",
    "batch_column",
    "check_calibration_batches",
    "read_tiff",
    "recover_folder",
    "restore_backups",
    "transaction",
    "require_pixel_size",
    "resolve_channels",
    "resolve_channels_report",
    "write_json",
    "labels_zarr_writer",
    "write_labels_zarr",
    "write_ome_tiff",
    "write_polylines",
    "write_table",
]
