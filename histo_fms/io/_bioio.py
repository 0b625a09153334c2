"""Vendor formats (Zeiss CZI, Nikon ND2, Leica LIF) through bioio and its reader plugins."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._errors import InputError
from ._image import ImageData, square_pixel_size

_PLUGIN = {".czi": "bioio-czi", ".nd2": "bioio-nd2", ".lif": "bioio-lif"}


def read_bioio(path: str | Path, *, series: int = 0, z: str | int = "max") -> ImageData:
    """Open any bioio-readable image lazily as (C, Y, X).

    Parameters
    ----------
    path : str or Path
        The image file (CZI, ND2, LIF, or anything a bioio plugin reads).
    series : int
        Scene index (``BioImage.scenes``).
    z : {"max"} or int
        Z handling: maximum projection or one plane.

    Returns
    -------
    ImageData
        Data, channel names and pixel size (``physical_pixel_sizes.X``, µm).

    Raises
    ------
    InputError
        bioio or the format's plugin is not installed, the file cannot be opened, or
        the scene does not exist.
    """
    from ._tiff import _to_cyx

    path = Path(path)
    plugin = _PLUGIN.get(path.suffix.lower(), "a bioio reader plugin")
    try:
        from bioio import BioImage
    except ImportError:
        raise InputError(path, f"reading {path.suffix} files needs bioio and {plugin}: "
                               "pip install 'histo-fms[formats]'") from None
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        im = BioImage(path)
    except Exception as exc:  # noqa: BLE001 - bioio raises many kinds
        msg = " ".join(str(exc).split())[:300]
        raise InputError(path, f"cannot open with bioio (is {plugin} installed?): {msg}"
                         ) from exc
    scenes = list(im.scenes)
    if series >= len(scenes):
        raise InputError(path, f"scene {series} requested, file has {len(scenes)}: {scenes}")
    im.set_scene(series)
    data = im.dask_data
    axes = "".join(im.dims.order).upper()
    names = [str(n) for n in (im.channel_names or [])]
    sizes = [float(v) if v is not None and np.isfinite(v) and v > 0 else None
             for v in (im.physical_pixel_sizes.X, im.physical_pixel_sizes.Y)]
    pixel_size = square_pixel_size(path, *sizes)
    arr, info = _to_cyx(path, data, axes, z)
    if len(names) != arr.shape[0]:
        names = [f"C{i}" for i in range(arr.shape[0])]
    info.update(series=series, scene=scenes[series], original_axes=axes, reader="bioio",
                other_series=[i for i in range(len(scenes)) if i != series])
    return ImageData(path=path, data=arr, channel_names=names, pixel_size_um=pixel_size,
                     metadata=info)
