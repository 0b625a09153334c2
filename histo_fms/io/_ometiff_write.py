"""Write OME-TIFF files (tiled, optionally pyramidal) with channel names and pixel size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from ._write import atomic_path


def write_ome_tiff(
    image: np.ndarray,
    path: str | Path,
    *,
    channel_names: list[str],
    pixel_size_um: float,
    tile: int = 256,
    pyramid_levels: int = 0,
    compression: str | None = "zlib",
) -> Path:
    """Write a (C, Y, X) image as a tiled OME-TIFF, atomically.

    Parameters
    ----------
    image : ndarray
        (C, Y, X) pixel data.
    path : str or Path
        Destination (``.ome.tif``).
    channel_names : list of str
        One name per channel.
    pixel_size_um : float
        Pixel size in µm (``PhysicalSizeX/Y``).
    tile : int
        Tile edge in pixels (multiple of 16).
    pyramid_levels : int
        Number of 2x downsampled sub-resolution levels to add.
    compression : str or None
        TIFF compression (``"zlib"``, ``None``, ...).

    Returns
    -------
    Path
        ``path``.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"expected a (C, Y, X) image, got shape {image.shape}")
    if len(channel_names) != image.shape[0]:
        raise ValueError("one channel name per channel is required")
    metadata = {
        "axes": "CYX",
        "PhysicalSizeX": float(pixel_size_um),
        "PhysicalSizeY": float(pixel_size_um),
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeYUnit": "µm",
        "Channel": {"Name": list(channel_names)},
    }
    with atomic_path(path) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=image.nbytes > 2**31, ome=True) as tw:
            opts = dict(tile=(tile, tile), compression=compression,
                        photometric="minisblack")
            tw.write(image, subifds=pyramid_levels, metadata=metadata, **opts)
            level = image
            for _ in range(pyramid_levels):
                level = level[:, ::2, ::2]
                tw.write(level, subfiletype=1, **opts)
    return Path(path)
