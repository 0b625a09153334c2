"""The in-memory description of an opened microscope image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dask.array as da


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
