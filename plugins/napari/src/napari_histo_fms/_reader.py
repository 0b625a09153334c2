"""Readers: microscope images (channels as layers) and histo-fms results folders.

Both return ``None`` (never raise) for paths they cannot read, so napari tries the
next reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._layers import LayerData, image_layer_data, session_layer_data

#: Reviewer name recorded if someone edits a session opened only for viewing.
VIEWER = "napari-viewer"


def _single(path: Any) -> str | None:
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        return str(path)
    except Exception:  # noqa: BLE001
        return None


def get_image_reader(path: str | list[str]) -> Callable[..., list[LayerData] | None] | None:
    """Return a reader for a microscope image (OME-TIFF/TIFF, OME-Zarr, CZI, ND2, LIF).

    Parameters
    ----------
    path : str or list of str
        Path(s) napari asks about.

    Returns
    -------
    callable or None
        The reader, or None when the path is no image histo-fms opens.
    """
    try:
        from histo_fms.io import is_image_file, read_image

        p = _single(path)
        if p is None or not is_image_file(p) or not Path(p).exists():
            return None
        if Path(p).is_dir() and (Path(p) / "labels").is_dir() and not (
                Path(p) / ".zattrs").exists() and not (Path(p) / "zarr.json").exists():
            return None
        read_image(p)  # lazy: header only; fails for files we cannot read
    except Exception:  # noqa: BLE001 - a reader never raises for foreign paths
        return None
    return read_image_layers


def read_image_layers(path: str | list[str]) -> list[LayerData] | None:
    """Read an image as one layer per channel (µm scale).

    Parameters
    ----------
    path : str or list of str
        The image.

    Returns
    -------
    list of LayerDataTuple or None
        Layers, or None on failure.
    """
    try:
        p = _single(path)
        return image_layer_data(p) if p else None
    except Exception:  # noqa: BLE001
        return None


def find_result(path: str | Path) -> tuple[Path, str] | None:
    """Resolve a path to ``(results_dir, stem)``.

    Accepts a results folder (its first image), a per-image folder ``OUT/STEM``, its
    ``reviewed`` folder, or ``OUT/run.json``.

    Parameters
    ----------
    path : str or Path
        Candidate path.

    Returns
    -------
    tuple of (Path, str) or None
        The results folder and image stem, or None.
    """
    from histo_fms.review import result_stems

    p = Path(path)
    if p.is_file() and p.name == "run.json":
        p = p.parent
    if not p.is_dir():
        return None
    if p.name == "reviewed":
        p = p.parent
    if (p / "run.json").is_file():
        stems = result_stems(p)
        return (p, stems[0]) if stems else None
    if (p.parent / "run.json").is_file() and p.name in result_stems(p.parent):
        return p.parent, p.name
    return None


def get_results_reader(path: str | list[str]) -> Callable[..., list[LayerData] | None] | None:
    """Return a reader for a histo-fms results folder (or ``run.json``).

    Parameters
    ----------
    path : str or list of str
        Path(s) napari asks about.

    Returns
    -------
    callable or None
        The reader, or None.
    """
    try:
        p = _single(path)
        if p is None or find_result(p) is None:
            return None
        json.loads((find_result(p)[0] / "run.json").read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001
        return None
    return read_results


def read_results(path: str | list[str]) -> list[LayerData] | None:
    """Read one image's results: image channels, labels, crossings and lines, in µm.

    The reviewed state is shown where a review exists.

    Parameters
    ----------
    path : str or list of str
        Results folder, ``OUT/STEM`` or ``run.json``.

    Returns
    -------
    list of LayerDataTuple or None
        Layers, or None on failure.
    """
    try:
        from histo_fms.review import ReviewSession

        p = _single(path)
        found = find_result(p) if p else None
        if found is None:
            return None
        session = ReviewSession.open(found[0], found[1], VIEWER)
        layers = session_layer_data(session)
        for _, kw, _ in layers:
            kw.setdefault("metadata", {}).setdefault(
                "histo_fms", {"results_dir": str(found[0]), "stem": found[1]})
        return layers
    except Exception:  # noqa: BLE001
        return None
