"""Label edits journalled at once, label chunks written in the background.

A label edit of a whole section rewrites (compresses) one or more zarr chunks of
``reviewed/labels.zarr``: tens of milliseconds each, too slow for every edit on the
GUI thread. With background saves the edit's exact pixels (flat indices and new values)
are appended to ``reviewed/labels_journal.bin`` and fsynced before the edit returns;
copies of the whole chunks its pixels fall in are then written by one background thread,
in order (whole chunks: zarr writes them without reading the old ones). When every
journalled edit is in the chunk files the journal is emptied.

On reopening, the journal is replayed over the chunks on disk (each chunk file is
replaced atomically, so every chunk holds the labels of some moment after the journal
began): each record sets absolute values, so replaying all records in order gives
exactly the labels after the last journalled edit, whatever was flushed before a crash.
A record torn by a crash during its append is ignored (its edit's diff is saved before
it, and the review's interrupted-save check restores that edit).
"""

from __future__ import annotations

import atexit
import os
import queue
import struct
import threading
import weakref
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

JOURNAL = "labels_journal.bin"
_MAGIC = b"HFJ1"
_HEAD = struct.Struct("<4sQI")  # magic, number of pixels, crc32 of the payload


class LabelJournal:
    """An append-only, fsynced journal of label writes (flat indices, new values).

    Parameters
    ----------
    path : Path
        The journal file (created on the first append).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.count = len(self.read()) if self.path.is_file() else 0

    def append(self, idx: np.ndarray, new: np.ndarray) -> int:
        """Append one write and fsync it; return the number of records.

        Parameters
        ----------
        idx : ndarray of int
            Flat pixel indices.
        new : ndarray of int
            The values written there (int32).

        Returns
        -------
        int
            Records in the journal, this one included.
        """
        idx = np.ascontiguousarray(idx, np.int64)
        new = np.ascontiguousarray(new, np.int32)
        if idx.shape != new.shape:
            raise ValueError("journal: indices and values differ in length")
        payload = idx.tobytes() + new.tobytes()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as fh:
            fh.write(_HEAD.pack(_MAGIC, idx.size, zlib.crc32(payload)) + payload)
            fh.flush()
            os.fsync(fh.fileno())
        self.count += 1
        return self.count

    def records(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the complete records in order (a torn or damaged tail ends them)."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        pos = 0
        while pos + _HEAD.size <= len(data):
            magic, n, crc = _HEAD.unpack_from(data, pos)
            end = pos + _HEAD.size + 12 * n
            if magic != _MAGIC or end > len(data):
                return
            payload = data[pos + _HEAD.size:end]
            if zlib.crc32(payload) != crc:
                return
            idx = np.frombuffer(payload, np.int64, n)
            new = np.frombuffer(payload, np.int32, n, offset=8 * n)
            yield idx, new
            pos = end

    def read(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return every complete record."""
        return list(self.records())

    def reset(self) -> None:
        """Empty the journal (every record is in the label chunks)."""
        if self.path.exists():
            with open(self.path, "r+b") as fh:
                fh.truncate(0)
                fh.flush()
                os.fsync(fh.fileno())
        self.count = 0


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
    """Write label chunks on one background thread; empty the journal when caught up.

    Parameters
    ----------
    journal : LabelJournal
        The journal the edits were appended to.
    prepare : callable
        Called once on the thread before the first write (e.g. copy the automatic
        ``labels.zarr``); returns ``write(box, data)``, which stores one region.
    """

    def __init__(self, journal: LabelJournal,
                 prepare: Callable[[], Callable[[tuple[slice, slice], np.ndarray], None]]):
        self.journal = journal
        self._prepare = prepare
        self._write: Callable | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0
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
               regions: list[tuple[tuple[slice, slice], np.ndarray]]) -> None:
        """Journal one edit (fsynced) and queue copies of the regions it changed.

        Parameters
        ----------
        idx, new : ndarray
            The edit's pixels (flat indices, values written).
        regions : list of (box, data)
            Copies of the label regions holding those pixels (every pixel the edit
            changed lies in one of them), as they are after the edit (see
            :meth:`copy_of`).
        """
        with self._lock:
            upto = self.journal.append(idx, new)
            self._pending += 1
            self._queue.put((regions, upto))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            regions, upto = item
            self._paused.wait()
            try:
                if self._write is None:
                    self._write = self._prepare()
                for box, data in regions:
                    self._write(box, data)
            except BaseException as exc:  # noqa: BLE001 - kept; the journal keeps the edits
                self.error = exc
            with self._lock:
                self._spare = (self._spare + [d for _, d in regions])[-4:]
                self._pending -= 1
                if (self._pending == 0 and self.error is None
                        and self.journal.count == upto):
                    try:
                        self.journal.reset()
                    except OSError as exc:
                        self.error = exc
                self._idle.notify_all()

    @property
    def busy(self) -> bool:
        """Whether some edits are not in the label chunks yet."""
        with self._lock:
            return self._pending > 0

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued region is written.

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
        if self.error is not None:
            raise RuntimeError(f"saving the labels failed ({self.error}); the edits are in "
                               f"{self.journal.path}: reopen the image to restore them")
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
