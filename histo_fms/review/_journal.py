"""Edits journalled at once with one fsync, label chunks written in the background.

A label edit of a whole section rewrites (compresses) one or more zarr chunks of
``reviewed/labels.zarr``: tens of milliseconds each, too slow for every edit on the
GUI thread; and the small files an edit changes (its diff in ``history/``, the undo
stacks, ``overrides.json``, the audit line) cost one fsync each when saved durably. With
background saves each edit is one record of ``reviewed/labels_journal.bin``: its exact
label pixels (flat indices and new values) and the bytes of every small file it
changed, appended and fsynced (**one fsync per edit**) after those files were written
(atomically, not fsynced) and before the edit returns. One background thread then
writes copies of the whole label chunks the pixels fall in (whole chunks: zarr writes
them without reading the old ones), in order, and makes them and the edit's files
durable (fsync, off the GUI thread). Once every journalled edit is durable the next
edit starts the journal afresh (the GUI thread truncates it as part of that edit's own
append: the background thread never touches the journal and holds no lock while it
writes, so an edit never waits for a chunk save).

On reopening, the journal is replayed: the files of its records are written back
(durably; the audit lines a power loss dropped are appended again), and its pixels over
the chunks on disk (each chunk file is replaced atomically, so every chunk holds the
labels of some moment after the journal began): each record sets absolute values, so
replaying all records in order gives exactly the state after the last journalled edit,
whatever was flushed before a crash. A record torn by a crash during its append is
ignored (its edit's files were written before it, and the review's interrupted-save
check restores that edit).
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import struct
import threading
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

JOURNAL = "labels_journal.bin"
_MAGIC = b"HFJ1"  # label pixels only (earlier versions)
_HEAD = struct.Struct("<4sQI")  # magic, number of pixels, crc32 of the payload
_MAGIC2 = b"HFJ2"  # label pixels, files and the audit record of one edit
_HEAD2 = struct.Struct("<4sQIQI")  # magic, pixels, meta length, blob length, crc32


def write_file(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """Write a file atomically (a temporary beside it, renamed over it).

    Parameters
    ----------
    path : str or Path
        Destination.
    data : bytes
        Content.
    durable : bool
        fsync the content before the rename (else the journal record holding the
        same bytes makes the write durable).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def fsync_paths(paths: Iterable[str | Path], *, folders: Iterable[str | Path] = ()) -> None:
    """Make files durable (those that exist), then the folders holding them and ``folders``."""
    dirs = {Path(f) for f in folders}
    for p in paths:
        p = Path(p)
        dirs.add(p.parent)
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:  # gone (a chunk zarr deleted as empty, a replaced temporary)
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for d in dirs:
        try:
            fd = os.open(d, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover - e.g. a file system without folder fsync
            pass
        finally:
            os.close(fd)


class JournalEntry:
    """One journal record: label pixels, files (relative path -> bytes), audit record."""

    __slots__ = ("idx", "new", "files", "audit")

    def __init__(self, idx: np.ndarray, new: np.ndarray, files: dict[str, bytes] | None = None,
                 audit: dict | None = None):
        self.idx, self.new = idx, new
        self.files = dict(files or {})
        self.audit = audit


class LabelJournal:
    """An append-only, fsynced journal of edits (label pixels, small files, audit record).

    Parameters
    ----------
    path : Path
        The journal file (created on the first append).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.count = sum(1 for _ in self.entries()) if self.path.is_file() else 0

    def append(self, idx: np.ndarray, new: np.ndarray, *,
               files: dict[str, bytes] | None = None, audit: dict | None = None,
               truncate: bool = False) -> int:
        """Append one edit and fsync it (the only fsync of the edit); return the records.

        Parameters
        ----------
        idx : ndarray of int
            Flat pixel indices (may be empty).
        new : ndarray of int
            The values written there (int32).
        files : dict of str to bytes, optional
            Files of the review folder the edit wrote (path relative to the journal's
            folder -> content), restored from here after a crash.
        audit : dict, optional
            The edit's audit record (JSON values), appended again if a crash lost it.
        truncate : bool
            Start the journal afresh with this record (every earlier one is durable).

        Returns
        -------
        int
            Records in the journal, this one included.
        """
        idx = np.ascontiguousarray(idx, np.int64)
        new = np.ascontiguousarray(new, np.int32)
        if idx.shape != new.shape:
            raise ValueError("journal: indices and values differ in length")
        files = files or {}
        table, blob, pos = [], [], 0
        for name, data in files.items():
            table.append([str(name), pos, len(data)])
            blob.append(bytes(data))
            pos += len(data)
        meta = json.dumps({"files": table, "audit": audit}, ensure_ascii=False).encode()
        payload = idx.tobytes() + new.tobytes() + meta + b"".join(blob)
        head = _HEAD2.pack(_MAGIC2, idx.size, len(meta), pos, zlib.crc32(payload))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb" if truncate else "ab") as fh:
            fh.write(head + payload)
            fh.flush()
            os.fsync(fh.fileno())
        self.count = 1 if truncate else self.count + 1
        return self.count

    def entries(self) -> Iterator[JournalEntry]:
        """Yield the complete records in order (a torn or damaged tail ends them)."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        pos = 0
        while pos + _HEAD.size <= len(data):
            magic = data[pos:pos + 4]
            if magic == _MAGIC:
                _, n, crc = _HEAD.unpack_from(data, pos)
                start, meta_len, blob_len = pos + _HEAD.size, 0, 0
            elif magic == _MAGIC2 and pos + _HEAD2.size <= len(data):
                _, n, meta_len, blob_len, crc = _HEAD2.unpack_from(data, pos)
                start = pos + _HEAD2.size
            else:
                return
            end = start + 12 * n + meta_len + blob_len
            if end > len(data):
                return
            payload = data[start:end]
            if zlib.crc32(payload) != crc:
                return
            idx = np.frombuffer(payload, np.int64, n)
            new = np.frombuffer(payload, np.int32, n, offset=8 * n)
            files, audit = {}, None
            if magic == _MAGIC2:
                try:
                    meta = json.loads(payload[12 * n:12 * n + meta_len].decode())
                except ValueError:
                    return
                base = 12 * n + meta_len
                files = {name: payload[base + off:base + off + ln]
                         for name, off, ln in meta.get("files", [])}
                audit = meta.get("audit")
            yield JournalEntry(idx, new, files, audit)
            pos = end

    def records(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the label writes (flat indices, new values) of the records, in order."""
        for e in self.entries():
            if e.idx.size:
                yield e.idx, e.new

    def read(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return every complete record's label write (records without pixels left out)."""
        return list(self.records())

    def reset(self) -> None:
        """Empty the journal (every record is durable in the files it describes)."""
        if self.path.exists():
            with open(self.path, "r+b") as fh:
                fh.truncate(0)
                fh.flush()
                os.fsync(fh.fileno())
        self.count = 0


def replay_files(folder: str | Path) -> int:
    """Write back the files of a journal's records (durably); return how many records.

    Each record's files are rewritten in order (the last record's version wins), except
    ``overrides.json`` and the undo stacks when the state on disk is newer (a recompute
    after the record, or a later edit killed while journalling); audit records a crash
    lost are appended to ``audit.jsonl`` again. The
    journal itself is left as it is (its label pixels are replayed by the session).

    Parameters
    ----------
    folder : str or Path
        The review folder (``OUT/STEM/reviewed``) holding the journal.

    Returns
    -------
    int
        Records replayed.
    """
    folder = Path(folder)
    journal = LabelJournal(folder / JOURNAL)
    entries = list(journal.entries())
    if not any(e.files or e.audit for e in entries):
        return 0
    latest: dict[str, bytes] = {}
    for e in entries:
        for name, data in e.files.items():
            if Path(name).is_absolute() or ".." in Path(name).parts:
                continue  # (never outside the review folder)
            if name.startswith("history/edit_"):
                write_file(folder / name, data)  # each edit's diff: its own file
            else:
                latest[name] = data
    # the state on disk is newer than the last record's when a later edit wrote its
    # files but was killed while journalling them (its diff then completes the labels):
    # the undo stacks and overrides.json stay as that edit left them (unless unreadable)
    newer = "overrides.json" in latest and _newer_on_disk(folder / "overrides.json",
                                                         latest["overrides.json"])
    for name, data in latest.items():
        path = folder / name
        if newer and name in ("overrides.json", "history/stack.json") and _readable(path):
            continue
        write_file(path, data)
    audits = [e.audit for e in entries if e.audit]
    if audits:
        _append_missing(folder / "audit.jsonl", audits)
    fsync_paths([], folders=[folder / "history", folder])  # (the renames durable)
    return len(entries)


def _newer_on_disk(path: Path, data: bytes) -> bool:
    """Whether the review state on disk is later than a record's (more edits, recompute)."""
    try:
        disk = json.loads(path.read_text(encoding="utf-8"))
        rec = json.loads(data.decode())
        key_disk = (int(disk.get("n_edits", 0)), str(disk.get("updated", "")))
        key_rec = (int(rec.get("n_edits", 0)), str(rec.get("updated", "")))
    except (OSError, ValueError, AttributeError, TypeError):
        return False
    return key_disk > key_rec


def _readable(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _append_missing(path: Path, records: list[dict]) -> None:
    """Append the audit records that ``path`` lacks (matched by seq, time and kind)."""
    def key(r):
        return (r.get("seq"), r.get("time"), r.get("kind"))

    have, raw = set(), b""
    if path.is_file():
        raw = path.read_bytes()
        for line in raw.splitlines():
            try:
                have.add(key(json.loads(line)))
            except (ValueError, AttributeError):
                continue
    todo = [r for r in records if key(r) not in have]
    if not todo:
        return
    with open(path, "ab") as fh:
        if raw and not raw.endswith(b"\n"):
            fh.write(b"\n")  # (a line torn by the crash stays alone, skipped on reading)
        for r in todo:
            fh.write(json.dumps(r, ensure_ascii=False).encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def chunk_boxes(idx: np.ndarray, shape: tuple[int, int], chunks: tuple[int, int]
                ) -> list[tuple[slice, slice]]:
    """Return the chunks (as slices) that some flat pixel indices fall in.

    Parameters
    ----------
    idx : ndarray of int
        Flat indices into an image of ``shape``.
    shape : (int, int)
        Image shape.
    chunks : (int, int)
        Chunk shape.

    Returns
    -------
    list of (slice, slice)
    """
    idx = np.asarray(idx, np.int64)
    if not idx.size:
        return []
    ys, xs = np.divmod(idx, shape[1])
    cy, cx = int(chunks[0]), int(chunks[1])
    keys = np.unique((ys // cy) * (shape[1] // cx + 1) + xs // cx)
    out = []
    for k in keys.tolist():
        by, bx = divmod(int(k), shape[1] // cx + 1)
        out.append((slice(by * cy, min((by + 1) * cy, shape[0])),
                    slice(bx * cx, min((bx + 1) * cx, shape[1]))))
    return out


class BackgroundSaver:
    """Write label chunks on one background thread and make each edit durable there.

    The GUI thread journals each edit (:meth:`submit`: one fsync); the thread writes the
    edit's label chunks and fsyncs them and the edit's files. When every journalled edit
    is durable, the next :meth:`submit` starts the journal afresh. The thread never
    touches the journal and holds the lock only for bookkeeping (no disk access under
    it), so an edit never waits for a chunk save.

    Parameters
    ----------
    journal : LabelJournal
        The journal the edits are appended to.
    prepare : callable
        Called once on the thread before the first write (e.g. copy the automatic
        ``labels.zarr``); returns ``write(box, data)``, which stores one region and
        returns the paths of the files it wrote (fsynced before the journal may be
        started afresh), or None.
    """

    def __init__(self, journal: LabelJournal,
                 prepare: Callable[[], Callable[[tuple[slice, slice], np.ndarray], object]]):
        self.journal = journal
        self._prepare = prepare
        self._write: Callable | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0
        #: records ever appended by this saver, and how many of them are durable
        self._appended = 0
        self._durable = 0
        #: the journal holds only durable records (from an earlier session, replayed)
        self._fresh = journal.count == 0
        self.error: BaseException | None = None
        self._paused = threading.Event()
        self._paused.set()
        self._spare: list[np.ndarray] = []  # buffers written already (no new pages)
        self._thread = threading.Thread(target=self._run, name="histo-fms label saver",
                                        daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        atexit.register(lambda: ref() is not None and ref().close())

    def copy_of(self, region: np.ndarray) -> np.ndarray:
        """Return a copy of a label region in a reused buffer (for :meth:`submit`)."""
        with self._lock:
            buf = next((b for b in self._spare if b.shape == region.shape
                        and b.dtype == region.dtype), None)
            if buf is not None:
                self._spare.remove(buf)
        if buf is None:
            buf = np.empty_like(region)
        np.copyto(buf, region)
        return buf

    def submit(self, idx: np.ndarray, new: np.ndarray,
               regions: list[tuple[tuple[slice, slice], np.ndarray]], *,
               files: dict[str, bytes] | None = None, audit: dict | None = None,
               paths: Iterable[str | Path] = ()) -> None:
        """Journal one edit (one fsync) and queue its chunks and files for the thread.

        Parameters
        ----------
        idx, new : ndarray
            The edit's pixels (flat indices, values written; may be empty).
        regions : list of (box, data)
            Copies of the label regions holding those pixels (every pixel the edit
            changed lies in one of them), as they are after the edit (see
            :meth:`copy_of`).
        files : dict of str to bytes, optional
            The files the edit wrote (relative to the journal's folder), already on disk
            but not fsynced: their bytes go into the record.
        audit : dict, optional
            The edit's audit record (appended to the log, not fsynced).
        paths : iterable of path
            Files to fsync on the thread (those of ``files`` and the audit log).
        """
        with self._lock:
            # every record in the journal is durable: this one starts it afresh
            truncate = self._durable == self._appended and self._pending == 0 and (
                self._fresh or self._appended > 0) and self.error is None
            self._appended += 1
            upto = self._appended
            self._pending += 1
        try:
            self.journal.append(idx, new, files=files, audit=audit, truncate=truncate)
        except BaseException:
            with self._lock:
                self._pending -= 1
                self._appended -= 1
            raise
        if truncate:
            self._fresh = True
        self._queue.put((regions, list(paths), upto))

    def _gather(self) -> tuple[list, bool]:
        """Wait for edits; return those queued (first one blocking) and whether to stop.

        After an edit the thread waits until no edit came for :attr:`settle` seconds
        (at most :attr:`max_wait`): the edit's own redraw runs first, and the edits of
        a quick series are written together (a chunk several of them changed once).
        """
        import time

        items = [self._queue.get()]
        end = time.monotonic() + self.max_wait
        while items[-1] is not None:
            left = min(self.settle, end - time.monotonic())
            if left <= 0:
                break
            try:
                items.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        stop = items[-1] is None
        return [i for i in items if i is not None], stop

    #: seconds without a new edit before the queued chunks are written, and the most
    #: an edit's chunks wait (the journal holds the edits meanwhile)
    settle = 0.2
    max_wait = 2.0

    def _run(self) -> None:
        while True:
            items, stop = self._gather()
            self._paused.wait()
            if items:
                # the latest copy of each chunk (it holds every earlier queued edit's pixels)
                latest: dict = {}
                for regions, _, _ in items:
                    for box, data in regions:
                        latest[(box[0].start, box[0].stop, box[1].start, box[1].stop)] = (
                            box, data)
                paths = [p for _, ps, _ in items for p in ps]
                written: list = []
                try:
                    if latest and self._write is None:
                        self._write = self._prepare()
                    for box, data in latest.values():
                        got = self._write(box, data)
                        if got:
                            written.extend(got)
                    fsync_paths(list(dict.fromkeys(paths)) + written)
                except BaseException as exc:  # noqa: BLE001 - kept; the journal keeps them
                    self.error = exc
                with self._lock:
                    self._spare = (self._spare + [d for r, _, _ in items
                                                  for _, d in r])[-4:]
                    self._pending -= len(items)
                    if self.error is None:
                        self._durable = max(self._durable, max(u for _, _, u in items))
                    self._idle.notify_all()
            if stop:
                return

    @property
    def busy(self) -> bool:
        """Whether some edits are not in the label chunks yet."""
        with self._lock:
            return self._pending > 0

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued region is written and durable; empty the journal.

        Returns
        -------
        bool
            False when ``timeout`` passed first.

        Raises
        ------
        RuntimeError
            A write failed (the journal still holds the edits).
        """
        self._paused.set()
        with self._lock:
            ok = self._idle.wait_for(lambda: self._pending == 0, timeout)
            clean = ok and self.error is None and self._durable == self._appended
        if self.error is not None:
            raise RuntimeError(f"saving the labels failed ({self.error}); the edits are in "
                               f"{self.journal.path}: reopen the image to restore them")
        if clean and (self._fresh or self._appended > 0) and self.journal.count:
            with self._lock:
                if self._pending or self._durable != self._appended:
                    return ok  # (an edit came in meanwhile: the next one starts afresh)
                self.journal.reset()  # (the calling thread's own; no edit appends now)
            self._fresh = True
        return ok

    def close(self) -> None:
        """Write what is queued, then stop the thread.

        Raises
        ------
        RuntimeError
            A write failed (the journal still holds the edits; reopening restores them).
        """
        if not self._thread.is_alive():
            return
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=60)

    def pause(self) -> None:
        """Hold the writes (tests: edits stay in the journal only)."""
        self._paused.clear()
