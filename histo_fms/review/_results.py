"""Reading a results folder (run.json, per-image outputs) for review."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..io import image_stem


def read_run(results_dir: str | Path) -> dict[str, Any]:
    """Read ``run.json`` of a results folder.

    Parameters
    ----------
    results_dir : str or Path
        A ``histo-fms run`` output folder.

    Returns
    -------
    dict
        The provenance record.

    Raises
    ------
    FileNotFoundError
        The folder has no ``run.json``.
    """
    p = Path(results_dir) / "run.json"
    if not p.is_file():
        raise FileNotFoundError(f"{results_dir}: not a histo-fms results folder (no run.json)")
    return json.loads(p.read_text(encoding="utf-8"))


def pipeline_kind(run: dict[str, Any]) -> str:
    """Return ``"drg"`` or ``"skin"`` from a run record.

    Parameters
    ----------
    run : dict
        Content of ``run.json``.

    Returns
    -------
    str
        The pipeline kind.
    """
    return str((run.get("config") or {}).get("pipeline", "drg"))


def result_stems(results_dir: str | Path) -> list[str]:
    """Return the stems of the images a run measured successfully, in run order.

    Parameters
    ----------
    results_dir : str or Path
        A results folder.

    Returns
    -------
    list of str
        Output folder names (``OUT/STEM``) that exist.
    """
    results_dir = Path(results_dir)
    run = read_run(results_dir)
    out = []
    for f in run.get("files", []):
        if f.get("status") == "failed":
            continue
        s = image_stem(f.get("image") or f.get("path", ""))
        if (results_dir / s).is_dir() and s not in out:
            out.append(s)
    return out


def file_entry(run: dict[str, Any], stem: str) -> dict[str, Any]:
    """Return the ``files`` entry of ``run.json`` for an output stem.

    Parameters
    ----------
    run : dict
        Content of ``run.json``.
    stem : str
        Output folder name.

    Returns
    -------
    dict
        The entry (``image, path, sha256, status, pixel_size_um, ...``).

    Raises
    ------
    KeyError
        No entry has this stem.
    """
    for f in run.get("files", []):
        if image_stem(f.get("image") or f.get("path", "")) == stem:
            return f
    raise KeyError(f"run.json lists no image with output name {stem!r}")


def image_path(results_dir: str | Path, entry: dict[str, Any]) -> Path | None:
    """Locate the input image of a results entry (as recorded, or relative to the folder).

    Parameters
    ----------
    results_dir : str or Path
        The results folder.
    entry : dict
        A ``files`` entry of ``run.json``.

    Returns
    -------
    Path or None
        The image path, or None when it cannot be found.
    """
    p = Path(entry.get("path", ""))
    cands = [p, Path(results_dir) / p, Path(results_dir).parent / p,
             Path(results_dir) / p.name]
    for c in cands:
        if str(c) and c.exists():
            return c
    return None


def summary_table(results_dir: str | Path, kind: str) -> pd.DataFrame:
    """Read ``OUT/drg_summary.csv`` or ``OUT/skin_summary.csv`` (empty frame if missing).

    Parameters
    ----------
    results_dir : str or Path
        The results folder.
    kind : {"drg", "skin"}
        Pipeline kind.

    Returns
    -------
    pandas.DataFrame
        The automatic per-image summary.
    """
    p = Path(results_dir) / f"{kind}_summary.csv"
    if not p.is_file():
        return pd.DataFrame()
    return schema.read_table(p, f"{kind}_summary")
