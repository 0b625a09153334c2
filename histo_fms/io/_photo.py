"""JPEG / PNG photographs (e.g. bright-field sections photographed at 40x)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._errors import InputError
from ._image import ImageData


def read_photo(path: str | Path) -> ImageData:
    """Read a JPEG or PNG photograph as a (C, Y, X) image.

    Photographs carry no trustworthy pixel size: give it with ``--pixel-size`` (or
    ``pixel_size_um:`` in the config).

    Parameters
    ----------
    path : str or Path
        The ``.jpg`` / ``.jpeg`` / ``.png`` file.

    Returns
    -------
    ImageData
        RGB photographs have channels ``R, G, B`` (alpha dropped) and ``metadata["rgb"]``
        set; grey ones a single channel ``C0``. ``pixel_size_um`` is None.

    Raises
    ------
    InputError
        Missing, empty or unreadable file.
    """
    import dask.array as da
    import imageio.v3 as iio

    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file (0 bytes)")
    try:
        arr = np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001 - any decoder error is a bad file
        raise InputError(path, f"not a readable image (corrupt or truncated?): {exc}") from exc
    info: dict = {"original_shape": tuple(arr.shape), "format": path.suffix.lower().lstrip(".")}
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        data = np.moveaxis(arr[..., :3], -1, 0)
        names = ["R", "G", "B"]
        info["rgb"] = True
    elif arr.ndim == 2:
        data, names = arr[None], ["C0"]
    else:
        raise InputError(path, f"unsupported photograph layout {arr.shape}")
    return ImageData(path=path, data=da.from_array(np.ascontiguousarray(data)),
                     channel_names=names, pixel_size_um=None, metadata=info)
