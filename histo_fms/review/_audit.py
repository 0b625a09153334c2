"""Append-only audit log (JSON lines) and small helpers shared by the review model."""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def utc_now() -> str:
    """Return the current UTC time as an ISO 8601 string with microseconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and NaN to plain JSON values, recursively.

    Parameters
    ----------
    obj : object
        Nested dicts, lists, tuples, numpy values.

    Returns
    -------
    object
        The same structure with only JSON types (NaN -> None).
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    try:  # pandas NA and friends
        import pandas as pd

        if pd.isna(obj):
            return None
    except (TypeError, ValueError):
        pass
    return str(obj)


class AuditLog:
    """An append-only JSON-lines log; each line is flushed and (by default) fsynced.

    Parameters
    ----------
    path : str or Path
        The ``.jsonl`` file (created on the first append).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, entry: dict, *, durable: bool = True) -> dict:
        """Append one entry (made JSON-safe) and return it.

        Parameters
        ----------
        entry : dict
            The record.
        durable : bool
            fsync the line (else a journal holding the record makes it durable).

        Returns
        -------
        dict
            The record as written.
        """
        rec = to_jsonable(entry)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(rec, ensure_ascii=False, sort_keys=False)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        return rec

    def tail(self, n: int) -> list[dict]:
        """Return the last ``n`` entries, reading only the end of the log.

        Parameters
        ----------
        n : int
            How many entries.

        Returns
        -------
        list of dict
            The entries in order (as :meth:`read` gives them: torn lines skipped).
        """
        if n <= 0 or not self.path.is_file():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            pos = fh.tell()
            data = b""
            while pos > 0 and data.count(b"\n") <= n + 1:
                step = min(pos, 1 << 16)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
        lines = data.split(b"\n")
        if pos > 0:
            lines = lines[1:]  # (the first may be cut)
        out = []
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line.decode("utf-8")))
            except ValueError:
                continue
        return out[-n:]

    def read(self) -> list[dict]:
        """Return every entry; a torn last line (crash mid-write) is skipped.

        Returns
        -------
        list of dict
            The entries in order.
        """
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
