"""Lazy OME-Zarr (NGFF 0.4 / 0.5) image reading and writing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._errors import InputError
from ._image import ImageData, square_pixel_size
from ._tiff import _UNIT_TO_UM
from ._write import atomic_path, label_group_attrs

if TYPE_CHECKING:
    import dask.array as da
    import zarr


def _ngff_attrs(group: zarr.Group) -> dict:
    attrs = dict(group.attrs)
    return attrs.get("ome", attrs)  # NGFF 0.5 nests everything under "ome"


def read_omezarr(path: str | Path, *, level: int = 0, z: str | int = "max") -> ImageData:
    """Open an OME-Zarr image lazily as (C, Y, X).

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` / ``.ome.zarr`` folder (the image group).
    level : int
        Multiscale level (0 = full resolution).
    z : {"max"} or int
        Z handling: maximum projection or one plane.

    Returns
    -------
    ImageData
        Data, channel names (``omero`` metadata) and pixel size (the level's scale
        transformation, in µm).

    Raises
    ------
    InputError
        Not an OME-Zarr image group, or a missing level.
    """
    import dask.array as da
    import zarr

    from ._tiff import _to_cyx

    path = Path(path)
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001
        raise InputError(path, f"not a readable zarr group ({exc})") from exc
    attrs = _ngff_attrs(group)
    ms = attrs.get("multiscales")
    if not ms:
        raise InputError(path, "no OME-Zarr 'multiscales' metadata")
    ms = ms[0]
    datasets = ms.get("datasets", [])
    if level >= len(datasets):
        raise InputError(path, f"level {level} requested, image has {len(datasets)}")
    ds = datasets[level]
    axes = ms.get("axes") or [{"name": n} for n in "tczyx"[-group[ds["path"]].ndim:]]
    names = [a["name"] if isinstance(a, dict) else str(a) for a in axes]
    arr = da.from_zarr(group[ds["path"]])
    scale = None
    for t in ds.get("coordinateTransformations", []):
        if t.get("type") == "scale":
            scale = t["scale"]
    sizes: dict[str, float | None] = {"x": None, "y": None}
    for name in sizes:
        if scale is not None and name in names:
            ix = names.index(name)
            ax = axes[ix] if isinstance(axes[ix], dict) else {}
            factor = _UNIT_TO_UM.get(str(ax.get("unit", "micrometer")).lower())
            if factor is not None:
                sizes[name] = float(scale[ix]) * factor
    pixel_size = square_pixel_size(path, sizes["x"], sizes["y"])
    ch_names: list[str] = []
    omero = attrs.get("omero", {})
    for c in omero.get("channels", []):
        ch_names.append(str(c.get("label", "")))
    axes_str = "".join(n.upper() for n in names)
    arr, info = _to_cyx(path, arr, axes_str, z)
    if len(ch_names) != arr.shape[0] or not all(ch_names):
        ch_names = [f"C{i}" for i in range(arr.shape[0])]
    info.update(level=level, original_axes=axes_str)
    return ImageData(path=path, data=arr, channel_names=ch_names, pixel_size_um=pixel_size,
                     metadata=info)


def write_omezarr(
    image: np.ndarray | da.Array,
    path: str | Path,
    *,
    channel_names: list[str],
    pixel_size_um: float,
    levels: int = 1,
    chunk: int = 1024,
    labels: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a (C, Y, X) image as an OME-Zarr (NGFF 0.4, zarr v2) image, atomically.

    Parameters
    ----------
    image : ndarray or dask array
        (C, Y, X) data; dask arrays are written chunk by chunk.
    path : str or Path
        Destination ``.ome.zarr`` folder.
    channel_names : list of str
        One name per channel (``omero`` metadata).
    pixel_size_um : float
        Pixel size in µm of level 0.
    levels : int
        Number of resolution levels (each 2x downsampled).
    chunk : int
        Chunk edge in pixels (one channel per chunk).
    labels : dict of str to ndarray, optional
        Label images to store in the image's ``labels`` group.

    Returns
    -------
    Path
        ``path``.
    """
    import dask.array as da
    import zarr

    path = Path(path)
    arr = image if isinstance(image, da.Array) else da.from_array(np.asarray(image))
    if arr.ndim != 3:
        raise ValueError(f"expected (C, Y, X), got shape {arr.shape}")
    with atomic_path(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        datasets = []
        level = arr
        for i in range(levels):
            if i:
                level = da.coarsen(np.mean, level, {1: 2, 2: 2}, trim_excess=True).astype(
                    arr.dtype)
            ch = (1, min(chunk, level.shape[1]), min(chunk, level.shape[2]))
            z = root.create_array(str(i), shape=level.shape, dtype=level.dtype, chunks=ch,
                                  fill_value=0)
            level.rechunk(ch).to_zarr(z)
            s = pixel_size_um * 2**i
            datasets.append({"path": str(i), "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, s, s]}]})
        root.attrs["multiscales"] = [{
            "version": "0.4",
            "axes": [{"name": "c", "type": "channel"},
                     {"name": "y", "type": "space", "unit": "micrometer"},
                     {"name": "x", "type": "space", "unit": "micrometer"}],
            "datasets": datasets,
        }]
        lo, hi = 0, int(np.iinfo(arr.dtype).max) if arr.dtype.kind in "ui" else 1
        root.attrs["omero"] = {"version": "0.4", "channels": [
            {"label": n, "active": True, "window": {"start": lo, "end": hi, "min": lo,
                                                     "max": hi}} for n in channel_names]}
        if labels:
            lab = root.create_group("labels")
            lab.attrs["labels"] = list(labels)
            for name, a in labels.items():
                a = np.asarray(a)
                a = a.astype(np.uint8) if a.dtype == bool else a
                g = lab.create_group(name)
                g.attrs.update(label_group_attrs(name, pixel_size_um))
                d = g.create_array("0", shape=a.shape, dtype=a.dtype,
                                   chunks=(min(chunk, a.shape[0]), min(chunk, a.shape[1])),
                                   fill_value=0)
                d[...] = a
    return path
