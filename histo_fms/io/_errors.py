"""Exceptions raised for bad input files, with one-line messages naming the file."""

from __future__ import annotations

import errno
from pathlib import Path


class InputError(ValueError):
    """A problem with one input file: the message names the file and the problem.

    Parameters
    ----------
    path : str or Path
        The offending file.
    problem : str
        What is wrong, in one line.
    shown : str, optional
        How the file is named in the message (default its name; e.g. ``STEM/labels.zarr``
        where every section has a ``labels.zarr``).
    """

    def __init__(self, path: str | Path, problem: str, *, shown: str | None = None):
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{shown or self.path.name}: {self.problem}")


class OutputError(OSError):
    """The output folder cannot be used or written (not a folder, unwritable, disk full).

    A batch stops on it (unlike an :class:`InputError`, which fails one file): what was
    complete is kept and a re-run resumes.

    Parameters
    ----------
    path : str or Path
        The folder or file that cannot be written.
    problem : str
        What is wrong, in one line.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"

    def __reduce__(self) -> tuple:  # picklable across dask workers
        return (type(self), (str(self.path), self.problem))


#: errno values that can only mean the destination cannot take a write
WRITE_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EFBIG")
                         if hasattr(errno, n))


def is_write_error(exc: BaseException, under: Path | None = None) -> bool:
    """Tell whether an exception means the destination cannot be written.

    Parameters
    ----------
    exc : BaseException
        The exception.
    under : Path, optional
        A folder being written: a permission error on a file inside it counts too.

    Returns
    -------
    bool
        True for a full disk, quota, read-only file system, or (under ``under``) a
        permission error.
    """
    if isinstance(exc, OutputError):
        return True
    if not isinstance(exc, OSError):
        return False
    if exc.errno in WRITE_ERRNOS:
        return True
    if under is not None and exc.errno in (errno.EACCES, errno.EPERM) and exc.filename:
        try:
            Path(exc.filename).resolve().relative_to(Path(under).resolve())
            return True
        except ValueError:
            return False
    return False
