"""The in-memory description of an opened microscope image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import InputError

if TYPE_CHECKING:
    import dask.array as da

#: largest relative difference between a file's X and Y pixel sizes still read as square
#: pixels (rounding in writers' metadata); above it the file is refused, because every
#: area, diameter and density would be wrong by the aspect ratio
SQUARE_PIXEL_RTOL = 0.01


def square_pixel_size(path: Path, x_um: float | None, y_um: float | None) -> float | None:
    """Return the pixel size of a file whose metadata give X and Y sizes (µm).

    Parameters
    ----------
    path : Path
        The file (named in the error).
    x_um, y_um : float or None
        Pixel size along X and Y in µm, ``None`` where the file gives none.

    Returns
    -------
    float or None
        The X size (or the Y size when only that is known); ``None`` when neither is.

    Raises
    ------
    InputError
        X and Y differ by more than ``SQUARE_PIXEL_RTOL``: histo-fms measures in square
        pixels, so such a file must be resampled first.
    """
    if x_um is None:
        return y_um
    if y_um is not None and x_um > 0 and y_um > 0 and \
            abs(x_um - y_um) > SQUARE_PIXEL_RTOL * max(x_um, y_um):
        raise InputError(
            path,
            f"pixels are not square ({x_um:.4g} µm in X, {y_um:.4g} µm in Y); histo-fms "
            "measures in square pixels: resample the image to square pixels first",
        )
    return x_um


@dataclass
class ImageData:
    """A lazily read 2-D multichannel image and its metadata.

    Attributes
    ----------
    path : Path
        The file it came from.
    data : dask.array.Array
        Pixel data, axes (C, Y, X). Z stacks are already projected (see the reader).
    channel_names : list of str
        One name per channel (``C0``, ``C1``, ... when the file names none).
    pixel_size_um : float or None
        Pixel size in µm from the file's metadata, ``None`` when the file has none.
    metadata : dict
        Reader-specific extras (original axes, scene, z handling, ...).
    """

    path: Path
    data: da.Array
    channel_names: list[str]
    pixel_size_um: float | None
    metadata: dict = field(default_factory=dict)

    @property
    def shape_yx(self) -> tuple[int, int]:
        """Return the (Y, X) size in pixels."""
        return int(self.data.shape[-2]), int(self.data.shape[-1])
