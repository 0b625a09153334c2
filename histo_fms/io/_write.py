"""Atomic writers for results: tables, JSON, polylines and OME-Zarr label images."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InputError, OutputError, is_write_error

#: Name of the commit journal a :func:`transaction` writes into its root folder.
JOURNAL = ".commit.json"


def _output_error(exc: OSError, path: Path) -> OutputError:
    if isinstance(exc, OutputError):
        return exc
    return OutputError(path, f"cannot write ({exc.strerror or exc})")


def _backup_of(path: Path) -> Path:
    return path.with_name(f".{path.name}.backup")


def _discard(path: Path) -> None:
    """Delete a folder that is no longer needed.

    It is first renamed to a trash name, so a half-deleted folder is never mistaken for
    a copy worth restoring.
    """
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    trash = path.with_name(f".{path.name.lstrip('.')}.trash-{tag}")
    try:
        os.replace(path, trash)
    except OSError:
        trash = path
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)


def _swap_dir(new: Path, path: Path) -> None:
    """Replace folder ``path`` by the complete folder ``new``.

    One complete copy always exists under ``path`` or its backup name (put back by
    :func:`restore_backups`).
    """
    backup = _backup_of(path)
    if path.exists() or path.is_symlink():
        if backup.exists():  # an older copy from an interrupted swap; path is complete
            _discard(backup)
        _swap_rename(path, backup)
        _swap_rename(new, path)
        _discard(backup)
    else:
        _swap_rename(new, path)


def _swap_rename(src: Path, dst: Path) -> None:
    os.replace(src, dst)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Works for files and directories. A crash or exception leaves the previous content
    of ``path`` (if any) untouched and removes the temporary. A folder is swapped by
    renaming the old one to ``.NAME.backup``, the new one to ``NAME``, then deleting
    the backup: at every moment one complete copy exists, and :func:`restore_backups`
    puts a backup back when a crash left no ``NAME``.

    Parameters
    ----------
    path : str or Path
        The final destination.

    Yields
    ------
    Path
        Where to write.

    Raises
    ------
    OutputError
        The destination cannot be written (full disk, read-only, no permission).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise _output_error(exc, path) from exc
    target = tmp / path.name
    try:
        try:
            yield target
        except OSError as exc:
            if is_write_error(exc, tmp):
                raise _output_error(exc, path) from exc
            raise
        try:
            if target.is_dir():
                _swap_dir(target, path)
            else:
                with open(target, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(target, path)
        except OSError as exc:
            raise _output_error(exc, path) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def restore_backups(folder: str | Path) -> list[Path]:
    """Finish or undo folder swaps an interrupted run left in ``folder``.

    A backup ``.NAME.backup`` (or ``.NAME.old-PID`` of earlier versions) whose ``NAME``
    is missing is the only complete copy: it is renamed back. One whose ``NAME`` exists
    is the replaced copy of a finished swap and is deleted.

    Parameters
    ----------
    folder : str or Path
        The folder to repair (not recursive).

    Returns
    -------
    list of Path
        The paths restored from a backup.
    """
    folder = Path(folder)
    restored: list[Path] = []
    if not folder.is_dir():
        return restored
    for p in sorted(folder.iterdir()):
        name = p.name
        if not name.startswith("."):
            continue
        if name.endswith(".backup"):
            orig = name[1:-len(".backup")]
        elif ".old-" in name and name.rsplit(".old-", 1)[1].isdigit():
            orig = name[1:].rsplit(".old-", 1)[0]
        else:
            continue
        final = folder / orig
        if final.exists():
            _discard(p)
        else:
            os.replace(p, final)
            restored.append(final)
    return restored


def recover_folder(folder: str | Path) -> list[Path]:
    """Repair what an interrupted run left in one folder.

    Rolls forward a committed :func:`transaction` (its journal), restores folder
    backups (:func:`restore_backups`) and removes temporaries (``.NAME.*.tmp``, trash,
    uncommitted staged files), none of which is ever the only copy of anything. Call it
    only while no other process writes into the folder (a run holds its lock).

    Parameters
    ----------
    folder : str or Path
        The folder (not recursive, except the journal's files).

    Returns
    -------
    list of Path
        The paths restored from a backup.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    recover_commit(folder)
    restored = restore_backups(folder)
    for p in folder.iterdir():
        n = p.name
        if n.startswith(".") and (n.endswith(".tmp") or ".trash-" in n or ".staged-" in n):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    return restored


class Transaction:
    """Files written under one folder, made visible together by :meth:`commit`.

    While a :func:`transaction` is active in this thread, :func:`write_table` and
    :func:`write_json` (and the writers built on them) write each file under ``root``
    to a staged name ``.NAME.staged-ID`` beside it. :meth:`commit` then writes the
    journal ``root/.commit.json`` (the commit point) and renames every staged file onto
    its name; a crash after the journal is rolled forward by :func:`recover_commit`,
    one before it leaves every old file in place.

    Parameters
    ----------
    root : str or Path
        The folder whose files (at any depth) are staged.
    """

    def __init__(self, root: str | Path):
        self.root = Path(os.path.abspath(root))
        self.id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.staged: dict[Path, Path] = {}

    def covers(self, path: str | Path) -> bool:
        """Tell whether a file is staged by this transaction (it lies under ``root``)."""
        return Path(os.path.abspath(path)).is_relative_to(self.root)

    def stage(self, path: str | Path) -> Path:
        """Return the staged name for ``path`` and remember it."""
        p = Path(os.path.abspath(path))
        s = p.with_name(f".{p.name}.staged-{self.id}")
        self.staged[p] = s
        return s

    def current(self, path: str | Path) -> Path:
        """Return where the content of ``path`` is now (its staged file, if any)."""
        return self.staged.get(Path(os.path.abspath(path)), Path(path))

    def abort(self) -> None:
        """Remove the staged files; every file keeps its old content."""
        for s in self.staged.values():
            s.unlink(missing_ok=True)
        self.staged.clear()

    def commit(self) -> None:
        """Write the journal, then rename every staged file onto its name."""
        if not self.staged:
            return
        files = [[str(s.relative_to(self.root)), str(p.relative_to(self.root))]
                 for p, s in self.staged.items()]
        journal = self.root / JOURNAL
        with atomic_path(journal) as tmp:
            tmp.write_text(json.dumps({"id": self.id, "files": files}), encoding="utf-8")
        _fsync_dir(self.root)
        _apply_journal(self.root, files)
        journal.unlink()
        self.staged.clear()


_ACTIVE: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "histo_fms_transaction", default=None)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _apply_journal(root: Path, files: list) -> None:
    for staged, final in files:
        s = root / staged
        if s.exists():
            try:
                _commit_rename(s, root / final)
            except OSError as exc:
                raise _output_error(exc, root / final) from exc


def _commit_rename(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def recover_commit(root: str | Path) -> bool:
    """Roll forward a commit an interrupted run left in ``root`` (see :class:`Transaction`).

    Staged files that no journal names were never committed (their old files are
    current) and are removed.

    Parameters
    ----------
    root : str or Path
        The transaction's folder.

    Returns
    -------
    bool
        True when a journal was found and applied.
    """
    root = Path(root)
    journal = root / JOURNAL
    found = journal.is_file()
    if found:
        files = json.loads(journal.read_text(encoding="utf-8"))["files"]
        _apply_journal(root, files)
        journal.unlink()
    for d in [root, *(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
        for s in d.glob(".*.staged-*"):
            if s.is_file():
                s.unlink(missing_ok=True)
    return found


@contextlib.contextmanager
def transaction(root: str | Path) -> Iterator[Transaction]:
    """Stage every table and JSON file written under ``root``; commit them as one step.

    Parameters
    ----------
    root : str or Path
        The folder (e.g. a run's output folder).

    Yields
    ------
    Transaction
        The transaction (:meth:`Transaction.current` tells where a staged file is).

    Examples
    --------
    >>> with transaction("results"):  # doctest: +SKIP
    ...     write_table(df, "results/a/neurons.csv")  # staged
    ...     write_json(run, "results/run.json")  # staged
    >>> # both are now in place, renamed as one step
    """
    tx = Transaction(root)
    token = _ACTIVE.set(tx)
    try:
        yield tx
    except BaseException:
        _ACTIVE.reset(token)
        tx.abort()
        raise
    _ACTIVE.reset(token)
    try:
        tx.commit()
    except BaseException:
        if not (tx.root / JOURNAL).exists():
            tx.abort()
        raise


def _destination(path: Path) -> Path:
    tx = _ACTIVE.get()
    if tx is not None and tx.covers(path):
        return tx.stage(path)
    return path


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
    with atomic_path(_destination(path)) as tmp:
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
    with atomic_path(_destination(path)) as tmp:
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
    import zarr

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


@contextlib.contextmanager
def labels_zarr_writer(
    layers: Mapping[str, str | np.dtype],
    shape: tuple[int, int],
    path: str | Path,
    *,
    pixel_size_um: float,
    chunk: int = 1024,
) -> Iterator[dict[str, Any]]:
    """Create label images like :func:`write_labels_zarr` and fill them region by region.

    For whole-slide results: the arrays are created empty (chunks never written cost
    nothing on disk) and the caller assigns regions, e.g. ``arrays["fibres"][y0:y1,
    x0:x1] = labels``; the folder replaces ``path`` atomically when the block ends.

    Parameters
    ----------
    layers : mapping of str to dtype
        Name -> dtype of each label image.
    shape : tuple of int
        (Y, X) of every label image.
    path : str or Path
        Destination ``.zarr`` directory.
    pixel_size_um : float
        Pixel size in µm.
    chunk : int
        Chunk edge in pixels.

    Yields
    ------
    dict of str to zarr.Array
        Name -> writable array.
    """
    import zarr

    path = Path(path)
    with atomic_path(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        root.attrs["labels"] = list(layers)
        lab_root = root.create_group("labels")
        lab_root.attrs["labels"] = list(layers)
        arrays = {}
        for name, dtype in layers.items():
            g = lab_root.create_group(name)
            g.attrs.update(label_group_attrs(name, pixel_size_um))
            arrays[name] = g.create_array("0", shape=tuple(shape), dtype=np.dtype(dtype),
                                          chunks=tuple(min(chunk, s) for s in shape),
                                          fill_value=0)
        yield arrays


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
    import zarr

    with _unreadable_labels(path):
        root = zarr.open_group(str(path), mode="r")
        names = root.attrs.get("labels", [])
        return {n: np.asarray(root[f"labels/{n}/0"][...]) for n in names}


@contextlib.contextmanager
def _unreadable_labels(path: str | Path) -> Iterator[None]:
    """Turn any failure to read a labels group into one :class:`InputError` naming it."""
    p = Path(path)
    try:
        yield
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # zarr, JSON, codec and file errors: the store is damaged
        if not p.exists():
            raise  # missing, not damaged: callers tell the two apart
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(p, f"cannot read the label images ({type(exc).__name__}: {why}); "
                            "the folder is damaged or incomplete: re-run this image",
                         shown=f"{p.parent.name}/{p.name}") from exc


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
    import zarr

    with _unreadable_labels(path):
        root = zarr.open_group(str(path), mode="r")
        first = root.attrs["labels"][0]
        ms = root[f"labels/{first}"].attrs["multiscales"][0]
        px = float(ms["datasets"][0]["coordinateTransformations"][0]["scale"][-1])
    if not (np.isfinite(px) and px > 0):
        raise InputError(path, f"recorded pixel size {px!r} µm is not a positive number",
                         shown=f"{Path(path).parent.name}/{Path(path).name}")
    return px
