"""Atomic writers for results: tables, JSON, polylines and OME-Zarr label images."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Works for files and directories. A crash or exception leaves the previous content
    of ``path`` (if any) untouched and removes the temporary.

    Parameters
    ----------
    path : str or Path
        The final destination.

    Yields
    ------
    Path
        Where to write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if target.is_dir():
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
                os.replace(target, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(target, path)
        else:
            with open(target, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as CSV atomically, with a stable float format.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : str or Path
        Destination ``.csv``.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically (numpy scalars and arrays allowed).

    Parameters
    ----------
    obj : object
        JSON-serialisable content.
    path : str or Path
        Destination.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    return path


def write_polylines(lines: Mapping[str, np.ndarray | None], path: str | Path) -> Path:
    """Write named polylines in µm as JSON: ``{"units": "µm", "lines": {name: [[y, x], ...]}}``.

    Parameters
    ----------
    lines : mapping of str to (N, 2) array
        Name -> vertices (y, x) in µm. ``None`` entries are written as empty lists.
    path : str or Path
        Destination ``.json``.

    Returns
    -------
    Path
        ``path``.
    """
    out = {
        "units": "µm",
        "axes": ["y", "x"],
        "lines": {
            k: ([] if v is None else np.round(np.asarray(v, float), 4).tolist())
            for k, v in lines.items()
        },
    }
    return write_json(out, path)


def read_polylines(path: str | Path) -> dict[str, np.ndarray]:
    """Read polylines written by :func:`write_polylines`.

    Parameters
    ----------
    path : str or Path
        The ``.json`` file.

    Returns
    -------
    dict of str to (N, 2) ndarray
        Name -> vertices (y, x) in µm.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {k: np.asarray(v, float).reshape(-1, 2) for k, v in data["lines"].items()}


def label_group_attrs(name: str, pixel_size_um: float) -> dict:
    """Return the NGFF 0.4 attributes of one 2-D label image group (single scale, µm).

    Parameters
    ----------
    name : str
        Label image name.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    dict
        ``multiscales`` and ``image-label`` attributes; the data is array ``0``.
    """
    return {
        "multiscales": [{
            "version": "0.4",
            "name": name,
            "axes": [{"name": "y", "type": "space", "unit": "micrometer"},
                     {"name": "x", "type": "space", "unit": "micrometer"}],
            "datasets": [{"path": "0", "coordinateTransformations": [
                {"type": "scale", "scale": [pixel_size_um, pixel_size_um]}]}],
        }],
        "image-label": {"version": "0.4", "source": {"image": "../../"}},
    }


def write_labels_zarr(
    labels: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    pixel_size_um: float,
    chunk: int = 1024,
) -> Path:
    """Write label images as an OME-Zarr (NGFF 0.4) ``labels`` group, atomically.

    The layout is ``path/labels/NAME/0`` with ``multiscales`` and ``image-label``
    metadata and a physical scale in µm, which napari-ome-zarr and QuPath's OME-Zarr
    reader open. Boolean masks are stored as uint8 labels.

    Parameters
    ----------
    labels : mapping of str to ndarray
        Name -> 2-D integer (or boolean) label image.
    path : str or Path
        Destination ``.zarr`` directory.
    pixel_size_um : float
        Pixel size in µm, written as the coordinate transformation.
    chunk : int
        Chunk edge in pixels.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        root.attrs["labels"] = list(labels)
        lab_root = root.create_group("labels")
        lab_root.attrs["labels"] = list(labels)
        for name, arr in labels.items():
            arr = np.asarray(arr)
            if arr.dtype == bool:
                arr = arr.astype(np.uint8)
            g = lab_root.create_group(name)
            g.attrs.update(label_group_attrs(name, pixel_size_um))
            ds = g.create_array("0", shape=arr.shape, dtype=arr.dtype,
                                chunks=tuple(min(chunk, s) for s in arr.shape) or None,
                                fill_value=0)
            ds[...] = arr
    return path


def read_labels_zarr(path: str | Path) -> dict[str, np.ndarray]:
    """Read label images written by :func:`write_labels_zarr`.

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` directory.

    Returns
    -------
    dict of str to ndarray
        Name -> label image.
    """
    root = zarr.open_group(str(path), mode="r")
    names = root.attrs.get("labels", [])
    return {n: np.asarray(root[f"labels/{n}/0"][...]) for n in names}


def read_labels_scale(path: str | Path) -> float:
    """Return the pixel size (µm) recorded in a labels group written by this module.

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` directory.

    Returns
    -------
    float
        Pixel size in µm.
    """
    root = zarr.open_group(str(path), mode="r")
    first = root.attrs["labels"][0]
    ms = root[f"labels/{first}"].attrs["multiscales"][0]
    return float(ms["datasets"][0]["coordinateTransformations"][0]["scale"][-1])
