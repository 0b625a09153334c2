"""The output folder of a run: checked before computing, locked, one measurement config.

A run holds ``OUT/run.lock`` (pid, host, start time) while it works; a second live run
into the folder refuses, a lock left by a dead process on the same host is taken over.
Each completed section records its outputs' sizes and SHA-256 in ``OUT/STEM/status.json``
so a resume trusts only outputs that are intact.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .io import OutputError

try:  # POSIX advisory locks; elsewhere the lock relies on the recorded pid
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "run.lock"
STATUS_FILE = "status.json"


class FolderBusy(OutputError):
    """Another live run holds the output folder's lock."""


class FolderConflict(ValueError):
    """The output folder holds results of a different measurement config."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def check_output_folder(out: str | Path) -> Path:
    """Make sure results can be written to ``out`` before anything is computed.

    Parameters
    ----------
    out : str or Path
        The output folder (created when missing).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    OutputError
        ``out`` is a file, cannot be created, or is not writable.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(out, "output path is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(out, f"cannot create the output folder ({exc.strerror or exc})") \
            from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(out, f"output folder is not writable ({exc.strerror or exc})") \
            from exc
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # pragma: no cover
        return True
    return True


class FolderLock:
    """Hold ``OUT/run.lock`` for the duration of a run.

    The file records ``pid``, ``host``, ``started`` and ``command``; on POSIX it is also
    held with ``flock``, released by the kernel when the process dies. A lock whose
    holder is gone (same host) is taken over with a note through ``say``; one held by a
    live run, or recorded by another host, makes :meth:`acquire` raise
    :class:`FolderBusy`.

    Parameters
    ----------
    out : str or Path
        The output folder.
    say : callable, optional
        Where to report a stale lock taken over.
    """

    def __init__(self, out: str | Path, say: Callable[[str], None] | None = None):
        self.out = Path(out)
        self.path = self.out / LOCK_FILE
        self.say = say
        self._fd: int | None = None
        self.took_over: dict | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            raw = b""
            while chunk := os.read(fd, 65536):
                raw += chunk
            return json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (OSError, ValueError):
            return {}

    def _busy(self, holder: dict, why: str) -> FolderBusy:
        who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
               f"started {holder.get('started', '?')}")
        return FolderBusy(self.out, f"{why} ({who}); wait for it to finish or use another "
                                    f"--out folder")

    def acquire(self) -> None:
        """Take the lock or raise :class:`FolderBusy`."""
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(),
              "command": list(sys.argv)}
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputError(self.out, f"cannot create {LOCK_FILE} "
                                            f"({exc.strerror or exc})") from exc
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    holder = self._read(fd)
                    os.close(fd)
                    raise self._busy(holder, "in use by another histo-fms run") from None
                try:  # the file may have been replaced or removed while we waited
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
            holder = self._read(fd)
            if holder:
                same_host = holder.get("host") == me["host"]
                pid = int(holder.get("pid") or 0)
                if not same_host:
                    os.close(fd)
                    raise self._busy(holder, f"locked by a run on another host; if that run "
                                             f"has ended, delete {self.path}")
                if fcntl is None and pid != me["pid"] and _pid_alive(pid):
                    os.close(fd)
                    raise self._busy(holder, "in use by another histo-fms run")
                self.took_over = holder
                if self.say is not None:
                    self.say(f"note: {self.out}: took over the lock of an earlier run that "
                             f"ended without releasing it (pid {pid}, started "
                             f"{holder.get('started', '?')})")
            data = (json.dumps(me, indent=2) + "\n").encode("utf-8")
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, data)
            os.fsync(fd)
            self._fd = fd
            return
        raise FolderBusy(self.out, "could not take the lock (it keeps changing)")

    def release(self) -> None:
        """Remove the lock file and let go of it."""
        if self._fd is None:
            return
        try:
            if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def file_record(path: str | Path) -> dict[str, Any]:
    """Return ``{"bytes": size, "sha256": digest}`` of a file or folder (all its files).

    Parameters
    ----------
    path : str or Path
        File or folder.

    Returns
    -------
    dict
        Total size in bytes and SHA-256 (a folder's hash covers its files' relative
        names and contents, sorted).
    """
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    size = 0
    for f in files:
        if p.is_dir():
            h.update(f.relative_to(p).as_posix().encode())
        with open(f, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
                size += len(block)
    return {"bytes": size, "sha256": h.hexdigest()}


def output_records(outdir: Path, names: Iterable[str]) -> dict[str, dict]:
    """Return :func:`file_record` of each named output of a section folder."""
    return {n: file_record(outdir / n) for n in names}


def damaged_output(outdir: Path, status: Mapping[str, Any], names: Iterable[str]) -> str | None:
    """Say which output of a section no longer matches its record, or None if all do.

    Parameters
    ----------
    outdir : Path
        The section folder ``OUT/STEM``.
    status : mapping
        Its ``status.json``.
    names : iterable of str
        The outputs that must exist.

    Returns
    -------
    str or None
        A short reason, or None when every output is intact.
    """
    rec = status.get("outputs")
    if not isinstance(rec, dict):
        return "status.json records no output hashes"
    for n in names:
        p = outdir / n
        r = rec.get(n)
        if not p.exists():
            return f"{n} is missing"
        if not isinstance(r, dict):
            return f"status.json records no hash of {n}"
        if not p.is_dir() and p.stat().st_size != r.get("bytes"):
            return f"{n} has changed size since it was written"
        if file_record(p) != {"bytes": r.get("bytes"), "sha256": r.get("sha256")}:
            return f"{n} has changed since it was written"
    return None


def read_status(outdir: Path) -> dict | None:
    """Read ``OUT/STEM/status.json`` (None when missing or unreadable)."""
    try:
        st = json.loads((outdir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return st if isinstance(st, dict) else None


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, Mapping):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


def describe_difference(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """Return ``key: old -> new; ...`` for two measurement configs (dotted keys)."""
    if old is None:
        return "the earlier config is not recorded"
    a, b = _flat(old), _flat(new)
    diffs = [f"{k}: {a.get(k, '(absent)')!r} -> {b.get(k, '(absent)')!r}"
             for k in sorted(set(a) | set(b)) if a.get(k, "(absent)") != b.get(k, "(absent)")]
    if not diffs:
        return "recorded by another histo-fms version"
    more = f"; and {len(diffs) - 6} more" if len(diffs) > 6 else ""
    return "; ".join(diffs[:6]) + more


def config_conflict(out: Path, cfg_hash: str, measurement: Mapping[str, Any]) -> str | None:
    """Say how the folder's earlier results were measured differently, or None.

    Parameters
    ----------
    out : Path
        The output folder.
    cfg_hash : str
        This run's :meth:`~histo_fms.config.PipelineConfig.measurement_hash`.
    measurement : mapping
        This run's :meth:`~histo_fms.config.PipelineConfig.measurement_config`.

    Returns
    -------
    str or None
        A one-line description (what differs, which sections), or None when every
        completed section and ``run.json`` used this measurement config.
    """
    from .config import measurement_view

    old_view: Mapping[str, Any] | None = None
    sections: list[str] = []
    try:
        run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = None
    run_differs = False
    if isinstance(run, dict) and run.get("config_hash") not in (None, cfg_hash):
        run_differs = True
        if isinstance(run.get("config"), dict):
            old_view = measurement_view(run["config"])
    for d in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        st = read_status(d)
        if st is None or st.get("config_hash") in (None, cfg_hash):
            continue
        sections.append(d.name)
        if old_view is None and isinstance(st.get("measurement"), dict):
            old_view = st["measurement"]
    if not sections and not run_differs:
        return None
    where = (f"sections {', '.join(sections[:5])}{' ...' if len(sections) > 5 else ''}"
             if sections else "run.json")
    return (f"holds results measured with a different config ({where}; "
            f"{describe_difference(old_view, measurement)}); use --overwrite to re-measure "
            f"into it, or another --out folder")
