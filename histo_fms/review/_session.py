"""The review session of one image: edits, autosave, audit log and recompute."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from .. import schema
from ..io import (
    read_labels_scale,
    read_labels_zarr,
    read_polylines,
    restore_backups,
    write_json,
    write_labels_zarr,
    write_polylines,
    write_table,
)
from ._audit import AuditLog, to_jsonable, utc_now
from ._geometry import points_in_regions, polyline_length_um
from ._history import HistoryMixin, small_state
from ._journal import chunk_boxes, replay_files, write_file
from ._results import file_entry, image_path, pipeline_kind, read_run, summary_table

REVIEWED = "reviewed"
AUDIT = "audit.jsonl"
OVERRIDES = "overrides.json"
SUMMARY = "summary.json"
#: Columns every in-memory crossings table of a review has (see :data:`schema.CROSSINGS`).
CROSSING_COLUMNS = ["y_um", "x_um", "fibre_id", "source", "excluded"]


class ReviewError(ValueError):
    """An edit that cannot be applied (unknown neuron, wrong pipeline, ...)."""


class ReviewSession(HistoryMixin):
    """Review of one image's results: edits, autosaved, audited, and recomputed.

    Open with :meth:`ReviewSession.open`. Every edit method changes the in-memory
    state, writes it atomically under ``OUT/STEM/reviewed/`` and appends one record to
    ``OUT/STEM/reviewed/audit.jsonl``; the automatic outputs in ``OUT/STEM/`` are never
    written. :meth:`recompute` writes the reviewed tables and summaries.

    Attributes
    ----------
    results_dir : Path
        The results folder (``OUT``).
    stem : str
        Output name of the image (``OUT/STEM``).
    reviewer : str
        Who edits (recorded with every edit).
    kind : {"drg", "skin"}
        Pipeline of the results.
    pixel_size_um : float
        Pixel size of the label images, in µm.
    labels : dict of str to ndarray
        Current label images (``neurons``, ``rings`` or ``epidermis``, ``fibres``).
    table : pandas.DataFrame
        Current per-neuron table (DRG; reviewed once recomputed, else automatic).
    crossings : pandas.DataFrame
        Current crossings (skin): ``y_um, x_um, fibre_id, source, excluded``.
    polylines : dict of str to ndarray
        Current ``dej`` and ``surface`` (µm, y/x).
    blind_code : str or None
        Neutral case code when opened from a blinded queue (recorded in the audit).
    """

    def __init__(self, results_dir: Path, stem: str, reviewer: str, *, run: dict,
                 blind_code: str | None = None):
        if not str(reviewer).strip():
            raise ReviewError("a reviewer name is required")
        self.results_dir = Path(results_dir)
        self.stem = stem
        self.reviewer = str(reviewer).strip()
        self.run = run
        self.kind = pipeline_kind(run)
        self.blind_code = blind_code
        self.auto_dir = self.results_dir / stem
        self.dir = self.auto_dir / REVIEWED
        self.audit = AuditLog(self.dir / AUDIT)
        if not self.auto_dir.is_dir():
            raise FileNotFoundError(f"{self.auto_dir}: no such results folder")
        self._load()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, results_dir: str | Path, stem: str, reviewer: str, *,
             blind_code: str | None = None) -> ReviewSession:
        """Open (or resume) the review of one image.

        Parameters
        ----------
        results_dir : str or Path
            The results folder of a run (holding ``run.json``).
        stem : str
            The image's output folder name.
        reviewer : str
            Reviewer name or initials.
        blind_code : str, optional
            Neutral case code when opened from a :class:`ReviewQueue`.

        Returns
        -------
        ReviewSession
            The session, with every earlier edit of this image restored.

        Examples
        --------
        >>> s = ReviewSession.open("results", "drg_m1", "AB")  # doctest: +SKIP
        >>> s.delete_neuron(4)  # doctest: +SKIP
        >>> s.recompute()  # doctest: +SKIP
        """
        results_dir = Path(results_dir)
        return cls(results_dir, stem, reviewer, run=read_run(results_dir),
                   blind_code=blind_code)

    def _load(self) -> None:
        restore_backups(self.dir)  # an interrupted save left the only copy as a backup
        if self.dir.is_dir():
            replay_files(self.dir)  # files of journalled edits a crash left unsaved
        auto_lab = self.auto_dir / "labels.zarr"
        rev_lab = self.dir / "labels.zarr"
        if pipeline_kind(self.run) == "drg":
            # the automatic labels stay on disk (read box by box: restore, undo checks);
            # only the edited neuron labels are held in memory, read once
            self.auto_labels = LazyLabels(auto_lab) if auto_lab.exists() else {}
            src = rev_lab if rev_lab.exists() else auto_lab
            self.labels = _open_labels_lazy(src) if src.exists() else {}
            if "neurons" in self.labels:
                self.labels["neurons"] = np.asarray(self.labels["neurons"][...], np.int32)
            self._labels_are_auto = not rev_lab.exists()
        else:
            self.auto_labels = read_labels_zarr(auto_lab) if auto_lab.exists() else {}
            self.labels = read_labels_zarr(rev_lab) if rev_lab.exists() else {
                k: v.copy() for k, v in self.auto_labels.items()}
            self._labels_are_auto = not rev_lab.exists()
        self.pixel_size_um = _pixel_size(self.run, self.stem,
                                         rev_lab if rev_lab.exists() else auto_lab)
        state = {}
        if (self.dir / OVERRIDES).is_file():
            state = json.loads((self.dir / OVERRIDES).read_text(encoding="utf-8"))
        self.calls: dict[int, bool] = {int(k): bool(v) for k, v in state.get("calls", {}).items()}
        self.excluded: set[int] = {int(i) for i in state.get("excluded", [])}
        self.excluded_regions: list[np.ndarray] = [
            np.asarray(r, float).reshape(-1, 2) for r in state.get("excluded_regions", [])]
        self.n_edits: int = int(state.get("n_edits", 0))
        self.needs_recompute: bool = bool(state.get("needs_recompute", False))
        self.labels_edited: bool = bool(state.get("labels_edited", rev_lab.exists()))
        self.polylines_edited: list[str] = list(state.get("polylines_edited", []))
        if self.kind == "drg":
            self.auto_table = _read_neurons(self.auto_dir / "neurons.csv")
            rev_tab = self.dir / "neurons.csv"
            self.table = _read_neurons(rev_tab) if rev_tab.is_file() else self.auto_table.copy()
            self.crossings = pd.DataFrame(columns=CROSSING_COLUMNS)
            self.polylines = {}
            self.auto_polylines = {}
            self.auto_crossings = pd.DataFrame(columns=CROSSING_COLUMNS)
        else:
            self.auto_table = pd.DataFrame()
            self.table = pd.DataFrame()
            pl = self.auto_dir / "polylines.json"
            self.auto_polylines = read_polylines(pl) if pl.is_file() else {}
            rpl = self.dir / "polylines.json"
            self.polylines = read_polylines(rpl) if rpl.is_file() else {
                k: v.copy() for k, v in self.auto_polylines.items()}
            self.auto_crossings = _read_crossings(self.auto_dir / "crossings.csv", "auto")
            rcr = self.dir / "crossings.csv"
            self.crossings = (_read_crossings(rcr, None) if rcr.is_file()
                              else self.auto_crossings.copy())
        self._init_history()

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "stem": self.stem,
            "pipeline": self.kind,
            "n_edits": self.n_edits,
            "needs_recompute": self.needs_recompute,
            "labels_edited": self.labels_edited,
            "polylines_edited": self.polylines_edited,
            "calls": {str(k): v for k, v in sorted(self.calls.items())},
            "excluded": sorted(self.excluded),
            "excluded_regions": [r.tolist() for r in self.excluded_regions],
            "updated": utc_now(),
        }

    def _commit(self, kind: str, params: dict, before: Any, after: Any, *,
                labels: bool = False, crossings: bool = False, polylines: bool = False,
                record: bool = True, diff: dict | None = None) -> dict:
        """Autosave the changed parts atomically, then append the audit record.

        The edit's exact diff is stored first (``reviewed/history``), so an edit
        interrupted while saving can still be undone.
        """
        try:
            self.check_fresh()
        except ReviewError:
            self._pending_px = []
            raise
        self.n_edits += 1
        was_fresh = not self.needs_recompute
        self.needs_recompute = True
        self.dir.mkdir(parents=True, exist_ok=True)
        saver = getattr(self, "_saver", None)
        journal = saver is not None and saver.error is None and self._history.deferred is not None
        if crossings:
            self._flag_excluded_crossings()
        if record:
            diff = self._record_edit(self.n_edits, kind)
        if not journal:  # (a failed background write: the diff saved before the labels)
            for name, data in self._take_deferred().items():
                write_file(self.dir / name, data)
        px = None
        if labels:
            self.labels_edited = True
            px = self._save_labels(journal=journal)
        if crossings:
            write_table(_ordered(self.crossings), self.dir / "crossings.csv")
        if polylines:
            write_polylines(self.polylines, self.dir / "polylines.json")
        rec = {"seq": self.n_edits, "time": utc_now(), "reviewer": self.reviewer,
               "image": self.stem, "case": self.blind_code, "kind": kind,
               "params": params, "before": before, "after": after}
        if diff is not None:
            rec["diff"] = diff
        rec = to_jsonable(rec)
        stale = was_fresh and (self.dir / SUMMARY).is_file()
        if not journal:
            write_json(self._state(), self.dir / OVERRIDES)
            if stale:  # the reviewed summary on disk no longer matches the edits
                write_reviewed_summary(self.results_dir, self.kind)
            return self.audit.append(rec)
        files = self._take_deferred()
        files[OVERRIDES] = (json.dumps(to_jsonable(self._state()), indent=2,
                                       ensure_ascii=False) + "\n").encode()
        # background saves: the edit's files and audit line written (not fsynced), then
        # one journal record holding them and its label pixels, fsynced: the edit is
        # durable when this returns; the chunks are written and everything fsynced by
        # the saver's thread
        for name, data in files.items():
            write_file(self.dir / name, data, durable=False)
        if stale:  # (reads needs_recompute from overrides.json, written just now)
            write_reviewed_summary(self.results_dir, self.kind)
        self.audit.append(rec, durable=False)
        idx, new, regions = px if px is not None else (np.zeros(0, np.int64),
                                                       np.zeros(0, np.int32), [])
        saver.submit(idx, new, regions, files=files, audit=rec,
                     paths=[self.dir / n for n in files] + [self.audit.path])
        if px is not None:
            self._labels_are_auto = False
        return rec

    def _take_deferred(self) -> dict[str, bytes]:
        """Return (and forget) the history files an edit saved in memory only."""
        d = self._history.deferred
        if not d:
            return {}
        out = dict(d)
        d.clear()
        return out

    def _save_labels(self, *, journal: bool = False) -> tuple | None:
        """Save the labels: only the chunks of the last edited region when possible.

        The first edit of a DRG review copies the automatic ``labels.zarr`` (its
        compressed chunk files, atomically) instead of writing the whole image; every
        edit then rewrites only the chunks its pixels fall in (each chunk file is
        replaced atomically by zarr). The edit's exact diff is saved before, so an
        interrupted save is completed on reopening (:meth:`_finish_interrupted_save`).

        With ``journal`` (background saves) nothing is written here: the edit's pixels
        and copies of the whole chunks they fall in are returned as ``(idx, new,
        regions)`` for the saver (whole chunks: zarr does not read and decompress the
        old ones first).
        """
        path = self.dir / "labels.zarr"
        box = self._last_box
        saver = getattr(self, "_saver", None)
        if saver is not None and box is not None and self._last_px is not None:
            idx, new = self._last_px
            if journal and saver.error is None:
                regions = [(b, saver.copy_of(self.neurons[b]))
                           for b in chunk_boxes(idx, self.neurons.shape, self._label_chunks)]
                return idx, new, regions
            # a background write failed: the journal keeps this edit too (replayed on
            # reopening) and the chunks are saved here, raising the disk's error if any
            saver.journal.append(idx, new)
        elif saver is not None:
            self.flush()
        if box is not None and self.kind == "drg":
            self._copy_auto_labels()
        if box is not None and path.exists():
            import zarr

            try:
                root = zarr.open_group(str(path), mode="r+")
                ds = root["labels/neurons/0"]
                ok = (tuple(ds.shape) == self.neurons.shape
                      and set(root.attrs.get("labels", [])) == set(self.labels))
            except (KeyError, OSError, ValueError):
                ok = False
            if ok:
                # whole chunks from the labels in memory: zarr then writes them without
                # reading and decompressing the old ones first
                box = _chunk_aligned(box, tuple(ds.chunks), self.neurons.shape)
                ds[box] = self.neurons[box]
                self._labels_are_auto = False
                return
        write_labels_zarr(self.labels, path, pixel_size_um=self.pixel_size_um)
        self._labels_are_auto = False

    # ------------------------------------------------------------ background saves
    def save_in_background(self) -> bool:
        """Save label edits' chunks on a background thread from now on (DRG).

        Each edit's exact label pixels and the small files it writes (its diff, the
        undo stacks, ``overrides.json``, its audit line) are appended to
        ``reviewed/labels_journal.bin`` as one record, fsynced before the edit returns
        (one fsync per edit); the zarr chunks the pixels fall in are written, and the
        files fsynced, by one background thread. Reopening replays the journal (files,
        then pixels over the chunks on disk), so an edit is never lost, even when the
        process is killed before its chunks are written. :meth:`flush` waits for the
        writes, :meth:`close` also stops the thread.

        Returns
        -------
        bool
            False when the labels cannot be saved chunk-wise (then edits save at once).
        """
        if self.kind != "drg" or "neurons" not in self.labels:
            return False
        if getattr(self, "_saver", None) is not None:
            return True
        import zarr

        from ._journal import JOURNAL, BackgroundSaver, LabelJournal

        path = self.dir / "labels.zarr"
        src = path if path.exists() else self.auto_dir / "labels.zarr"
        try:
            root = zarr.open_group(str(src), mode="r")
            ds = root["labels/neurons/0"]
            ok = (tuple(ds.shape) == self.neurons.shape
                  and set(root.attrs.get("labels", [])) == set(self.labels))
            chunks = tuple(int(c) for c in ds.chunks)
        except (KeyError, OSError, ValueError):
            ok = False
        if not ok:
            return False
        self._label_chunks = chunks

        def prepare():
            self._copy_auto_labels()
            target = zarr.open_group(str(path), mode="r+")["labels/neurons/0"]
            if tuple(target.shape) != self.neurons.shape:
                raise OSError(f"{path}: shape {target.shape} differs from the labels")

            folder = path / "labels" / "neurons" / "0"
            cy, cx = (int(c) for c in target.chunks)

            def write(box, data):
                target[box] = data
                # the chunk files written (fsynced by the saver before the journal may
                # start afresh; a chunk zarr leaves out as empty has none)
                keys = [target.metadata.encode_chunk_key((y, x))
                        for y in range(box[0].start // cy, -(-box[0].stop // cy))
                        for x in range(box[1].start // cx, -(-box[1].stop // cx))]
                return [folder / k for k in keys]
            return write

        self._saver = BackgroundSaver(LabelJournal(self.dir / JOURNAL), prepare)
        # the edits' small files are written by the edit and journalled with it (one
        # fsync per edit), made durable by the saver's thread
        self._history.deferred = {}
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every label edit is in ``reviewed/labels.zarr`` (background saves).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most.

        Returns
        -------
        bool
            False when the timeout passed first.
        """
        saver = getattr(self, "_saver", None)
        return True if saver is None else saver.flush(timeout)

    @property
    def saving(self) -> bool:
        """Whether label chunks are still being written in the background."""
        saver = getattr(self, "_saver", None)
        return saver is not None and saver.busy

    def close(self) -> None:
        """Write every pending label chunk and stop the background saver (if any)."""
        saver = getattr(self, "_saver", None)
        if saver is not None:
            self._saver = None
            for name, data in self._take_deferred().items():
                write_file(self.dir / name, data)  # (saved by no edit: an edit refused)
            self._history.deferred = None
            saver.close()  # (raises when a write failed; the journal keeps the edits)

    def _replay_journal(self) -> None:
        """Put the journalled label edits a crash left unsaved back (exactly), and save.

        Each record sets absolute values, so replaying all of them in order over the
        chunks on disk (each of some moment after the journal began) gives the labels
        after the last journalled edit.
        """
        from ._journal import JOURNAL, LabelJournal, chunk_boxes

        if self.kind != "drg" or "neurons" not in self.labels:
            return
        journal = LabelJournal(self.dir / JOURNAL)
        recs = journal.read()
        if not recs:
            if journal.path.is_file() and journal.path.stat().st_size:
                journal.reset()  # only a torn record: its edit is in the history
            return
        self._ensure_writable()
        flat = self.labels["neurons"].reshape(-1)
        for idx, new in recs:
            flat[idx] = new
        idx = np.unique(np.concatenate([r[0] for r in recs]))
        import zarr

        self._copy_auto_labels()
        ds = zarr.open_group(str(self.dir / "labels.zarr"), mode="r+")["labels/neurons/0"]
        for b in chunk_boxes(idx, self.neurons.shape, tuple(ds.chunks)):
            ds[b] = self.neurons[b]
        journal.reset()
        self._labels_are_auto = False
        self.labels_edited = True

    def _copy_auto_labels(self) -> None:
        """Create ``reviewed/labels.zarr`` as a copy of the automatic one (files, atomic)."""
        path = self.dir / "labels.zarr"
        auto = self.auto_dir / "labels.zarr"
        if path.exists() or not auto.is_dir():
            return
        import shutil

        from ..io import atomic_path

        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            shutil.copytree(auto, tmp)

    def check_fresh(self) -> None:
        """Refuse to save over edits this session has not seen.

        Another window or reviewer that saved edits to the same image since this
        session was opened would otherwise be overwritten.

        Raises
        ------
        ReviewError
            The saved review has more edits than this session knows: reopen it.
        """
        p = self.dir / OVERRIDES
        if not p.is_file():
            return
        try:
            saved = int(json.loads(p.read_text(encoding="utf-8")).get("n_edits", 0))
        except (OSError, ValueError):
            return
        if saved > self.n_edits:
            raise ReviewError(f"the review of this image was changed elsewhere ({saved} edits "
                              f"saved, this window knows {self.n_edits}); reopen it to go on")

    def history(self) -> list[dict]:
        """Return the audit log of this image (every edit, recompute and reviewer).

        Returns
        -------
        list of dict
            Records with ``seq, time, reviewer, kind, params, before, after``.
        """
        return self.audit.read()

    # ------------------------------------------------------------------ DRG queries
    def _require(self, kind: str) -> None:
        if self.kind != kind:
            raise ReviewError(f"this edit is for {kind} results; these are {self.kind}")

    @property
    def neurons(self) -> np.ndarray:
        """Current neuron labels (DRG)."""
        self._require("drg")
        return self.labels["neurons"]

    def neuron_ids(self) -> np.ndarray:
        """Return the ids present in the current neuron labels.

        Returns
        -------
        ndarray of int
            Sorted ids (0 excluded).
        """
        return np.array(sorted(self._boxes()), dtype=np.int64)

    def _check_id(self, neuron_id: int) -> int:
        nid = int(neuron_id)
        if self._obj(nid) is None:
            raise ReviewError(f"no neuron {nid} in the current labels")
        return nid

    def auto_call(self, neuron_id: int) -> bool | None:
        """Return the threshold call of a neuron from the current table (None if unknown).

        Parameters
        ----------
        neuron_id : int
            Neuron label.

        Returns
        -------
        bool or None
            ``ring_igg > threshold`` as measured, or None (not measured / no threshold).
        """
        t = self.table
        k = self._table_pos(int(neuron_id))
        if k is None or "igg_positive" not in t:
            return None
        col = "igg_positive_auto" if "igg_positive_auto" in t else "igg_positive"
        v = t[col].iat[k]
        return None if pd.isna(v) else bool(v)

    def _table_pos(self, nid: int) -> int | None:
        """Row position of a neuron in :attr:`table` (an id index cached per table)."""
        t = self.table
        hit = self.__dict__.get("_pos_cache")
        if hit is None or hit[0] is not t:
            ids = t["neuron_id"].to_numpy() if "neuron_id" in t else np.zeros(0, np.int64)
            hit = (t, pd.Index(ids))
            self._pos_cache = hit
        index = hit[1]
        try:
            k = index.get_loc(int(nid))
        except KeyError:
            return None
        if not isinstance(k, (int, np.integer)):  # a repeated id: its first row
            k = int(np.flatnonzero(np.asarray(index == int(nid)))[0])
        return int(k)

    def call(self, neuron_id: int) -> bool | None:
        """Return a neuron's effective IgG call (reviewer's override, else threshold call).

        Parameters
        ----------
        neuron_id : int
            Neuron label.

        Returns
        -------
        bool or None
            The call, or None when unknown.
        """
        nid = int(neuron_id)
        if nid in self.calls:
            return self.calls[nid]
        return self.auto_call(nid)

    def neuron_info(self, neuron_id: int) -> dict[str, Any]:
        """Return a neuron's numbers for display (hover, selection).

        Parameters
        ----------
        neuron_id : int
            Neuron label.

        Returns
        -------
        dict
            ``neuron_id, area_um2, diameter_um, size_class, ring_igg, igg_positive,
            call_source, excluded, touches_border, stale`` (``stale``: the labels
            changed since the table was measured).
        """
        nid = int(neuron_id)
        info: dict[str, Any] = {"neuron_id": nid}
        k = self._table_pos(nid)
        if k is not None:
            t = self.table
            for c in ("area_um2", "diameter_um", "size_class", "ring_igg", "touches_border",
                      "ring_igg_coverage"):
                if c in t:
                    info[c] = to_jsonable(t[c].iat[k])
        obj = self._obj(nid)
        area_px = int(obj[1].sum()) if obj is not None else 0
        area = area_px * self.pixel_size_um ** 2
        stale = k is None or abs(info.get("area_um2", area) - area) > 1e-6 * max(area, 1)
        if stale:
            info["area_um2"] = area
            info["diameter_um"] = float(np.sqrt(4 * area / np.pi))
        info["igg_positive"] = self.call(nid)
        info["call_source"] = "reviewer" if nid in self.calls else "threshold"
        info["excluded"] = nid in self.excluded
        info["stale"] = bool(stale)
        return info

    # ------------------------------------------------------------------ DRG edits
    def _new_id(self) -> int:
        used = [self._boxes().max_id()]
        if len(self.auto_table):
            used.append(int(self.auto_table["neuron_id"].max()))
        return max(used) + 1

    def _drop_overrides(self, ids: Sequence[int]) -> dict:
        dropped = {}
        for i in ids:
            i = int(i)
            if i in self.calls:
                dropped.setdefault(i, {})["igg_positive"] = self.calls.pop(i)
            if i in self.excluded:
                self.excluded.discard(i)
                dropped.setdefault(i, {})["excluded"] = True
        return dropped

    def _ensure_writable(self) -> None:
        lab = self.labels["neurons"]
        if not lab.flags.writeable:
            self.labels["neurons"] = lab.copy()
        if self.labels["neurons"].dtype != np.int32:
            self.labels["neurons"] = self.labels["neurons"].astype(np.int32)

    def delete_neuron(self, neuron_id: int) -> dict:
        """Delete a neuron (its pixels become background).

        Parameters
        ----------
        neuron_id : int
            Neuron label.

        Returns
        -------
        dict
            The audit record.
        """
        nid = self._check_id(neuron_id)
        before = self.neuron_info(nid)
        self._ensure_writable()
        self._write_px(*self._obj(nid), 0)
        dropped = self._drop_overrides([nid])
        return self._commit("delete", {"neuron_id": nid}, before,
                            {"deleted": True, "dropped_overrides": dropped}, labels=True)

    def merge_neurons(self, ids: Sequence[int]) -> dict:
        """Merge neurons into one (the smallest id survives).

        Parameters
        ----------
        ids : sequence of int
            Two or more neuron labels.

        Returns
        -------
        dict
            The audit record (``after["neuron_id"]`` is the merged neuron).
        """
        ids = sorted({self._check_id(i) for i in ids})
        if len(ids) < 2:
            raise ReviewError("merge needs at least two different neurons")
        before = [self.neuron_info(i) for i in ids]
        self._ensure_writable()
        keep = ids[0]
        for i in ids[1:]:
            self._write_px(*self._obj(i), keep)
        dropped = self._drop_overrides(ids)
        return self._commit("merge", {"ids": ids}, before,
                            {"neuron_id": keep, "area_um2": self._area(keep),
                             "dropped_overrides": dropped}, labels=True)

    def _area(self, nid: int) -> float:
        obj = self._obj(nid)
        return float((obj[1].sum() if obj is not None else 0) * self.pixel_size_um ** 2)

    def neuron_under_line(self, line_um: Sequence[Sequence[float]]) -> int:
        """Return the neuron a polyline (µm) crosses most (0 when it crosses none).

        Parameters
        ----------
        line_um : sequence of (y, x)
            Polyline vertices in µm.

        Returns
        -------
        int
            Neuron label.
        """
        from ._geometry import line_pixels

        self._require("drg")
        px = np.asarray(line_um, float).reshape(-1, 2) / self.pixel_size_um
        v = self.neurons[line_pixels(px, self.neurons.shape)]
        v = v[v > 0]
        return int(np.bincount(v).argmax()) if v.size else 0

    def split_neuron(self, neuron_id: int, seeds_um: Sequence[Sequence[float]] | None = None,
                     *, line_um: Sequence[Sequence[float]] | None = None,
                     min_area_um2: float | None = None) -> dict:
        """Split a neuron by seed points or by a cut line.

        Seeds: a watershed on the neuron's distance map (which splits touching neurons
        at their neck); when that leaves a part below the minimum neuron area (a round
        neuron has one distance maximum), the neuron is divided between the seeds by
        distance instead. Pieces below ``min_area_um2`` (slivers, disconnected
        fragments) are given to the neighbouring part they touch most, so a split never
        adds a tiny object to the counted neurons.

        Parameters
        ----------
        neuron_id : int
            Neuron label.
        seeds_um : sequence of (y, x), optional
            Two or more seed points in µm inside the neuron; each becomes one part.
        line_um : sequence of (y, x), optional
            A polyline in µm cutting the neuron; the connected pieces become parts.
        min_area_um2 : float, optional
            Smallest part kept; default the area of a circle of the run's
            ``min_diameter_um``.

        Returns
        -------
        dict
            The audit record (``after["ids"]``: the parts; the largest part keeps the
            original id).
        """
        nid = self._check_id(neuron_id)
        if (seeds_um is None) == (line_um is None):
            raise ReviewError("split needs either seed points or a cut line")
        (sy, sx), _ = self._obj(nid)
        # work in the neuron's box (plus a margin for the cut line): no whole-image scans
        h, w = self.neurons.shape
        sl = (slice(max(sy.start - 2, 0), min(sy.stop + 2, h)),
              slice(max(sx.start - 2, 0), min(sx.stop + 2, w)))
        mask = np.asarray(self.neurons[sl]) == nid
        off = np.array([sl[0].start, sl[1].start])
        px = self.pixel_size_um
        min_px = (self._min_part_area_um2() if min_area_um2 is None
                  else float(min_area_um2)) / px ** 2
        if seeds_um is not None:
            from skimage.segmentation import watershed

            seeds = np.round(np.asarray(seeds_um, float).reshape(-1, 2) / px).astype(int)
            if len(seeds) < 2:
                raise ReviewError("split needs at least two seed points")
            markers = np.zeros(mask.shape, np.int32)
            for k, (y, x) in enumerate(seeds, start=1):
                ly, lx = y - off[0], x - off[1]
                if not (0 <= ly < mask.shape[0] and 0 <= lx < mask.shape[1]) or not mask[ly, lx]:
                    raise ReviewError(f"seed {k} ({y * px:.1f}, {x * px:.1f}) µm is not "
                                      f"inside neuron {nid}")
                markers[ly, lx] = k
            dist = ndi.distance_transform_edt(mask)
            parts = watershed(-dist, markers, mask=mask)
            sizes = np.bincount(parts.ravel(), minlength=len(seeds) + 1)[1:]
            if sizes.min() < min_px:
                # one distance maximum (a round neuron): divide between the seeds
                to_seed = ndi.distance_transform_edt(markers == 0)
                parts = watershed(to_seed, markers, mask=mask)
        else:
            from ._geometry import line_pixels

            pts = np.round(np.asarray(line_um, float).reshape(-1, 2) / px).astype(int) - off
            cut = np.zeros(mask.shape, bool)
            cut[line_pixels(pts, mask.shape)] = True
            cut = ndi.binary_dilation(cut)  # no 8-connected leak through a 1-px line
            parts, n = ndi.label(mask & ~cut)
            if n < 2:
                raise ReviewError(f"the line does not cut neuron {nid} into pieces")
            # give the cut pixels back to the nearest part
            _, (iy, ix) = ndi.distance_transform_edt(parts == 0, return_indices=True)
            parts = np.where(mask, parts[iy, ix], 0)
        parts = _absorb_small_parts(parts, min_px)
        part_ids = [int(p) for p in np.unique(parts) if p > 0]
        if len(part_ids) < 2:
            raise ReviewError(f"split left neuron {nid} in one piece (every other part "
                              f"was below {min_px * px ** 2:.0f} µm²)")
        before = self.neuron_info(nid)
        sizes = {p: int((parts == p).sum()) for p in part_ids}
        keep_part = max(part_ids, key=lambda p: sizes[p])
        self._ensure_writable()
        new_ids = []
        nxt = self._new_id()
        for p in part_ids:
            if p == keep_part:
                new_ids.append(nid)
                continue
            self._write_px(sl, parts == p, nxt)
            new_ids.append(nxt)
            nxt += 1
        dropped = self._drop_overrides([nid])
        params = {"neuron_id": nid}
        if seeds_um is not None:
            params["seeds_um"] = np.asarray(seeds_um, float).tolist()
        else:
            params["line_um"] = np.asarray(line_um, float).tolist()
        return self._commit("split", params, before,
                            {"ids": new_ids, "areas_um2": [self._area(i) for i in new_ids],
                             "dropped_overrides": dropped}, labels=True)

    def _min_part_area_um2(self) -> float:
        """Area (µm²) of a circle of the run's minimum neuron diameter (read once)."""
        if "_min_part_area" in self.__dict__:
            return self._min_part_area
        try:
            d = float(self._drg_config().params().min_diameter_um)
        except Exception:  # noqa: BLE001 - incomplete provenance: the library default
            from ..drg import DrgParams

            d = float(DrgParams().min_diameter_um)
        self._min_part_area = float(np.pi * (d / 2) ** 2)
        return self._min_part_area

    def paint(self, mask: np.ndarray, neuron_id: int | None = None) -> dict:
        """Paint a region with a neuron label (a new neuron when ``neuron_id`` is None).

        Parameters
        ----------
        mask : ndarray of bool, shape (Y, X)
            Pixels to paint.
        neuron_id : int, optional
            Label to paint; default a new id.

        Returns
        -------
        dict
            The audit record.
        """
        mask = np.asarray(mask, bool)
        if mask.shape != self.neurons.shape:
            raise ReviewError(f"mask shape {mask.shape} differs from labels {self.neurons.shape}")
        if not mask.any():
            raise ReviewError("empty mask")
        nid = self._new_id() if neuron_id is None else int(neuron_id)
        if nid <= 0:
            raise ReviewError("use erase() to paint background")
        self._ensure_writable()
        sl = _box_slices(mask)
        touched = _id_counts(self.labels["neurons"][sl][mask[sl]])
        self._write_px(sl, mask[sl], nid)
        return self._commit("paint", {"neuron_id": nid, "n_pixels": int(mask.sum()),
                                      "bbox": _bbox(mask)},
                            {"pixels_by_id": touched}, {"neuron_id": nid,
                                                        "area_um2": self._area(nid)},
                            labels=True)

    def erase(self, mask: np.ndarray) -> dict:
        """Erase a region (set to background).

        Parameters
        ----------
        mask : ndarray of bool, shape (Y, X)
            Pixels to erase.

        Returns
        -------
        dict
            The audit record.
        """
        mask = np.asarray(mask, bool)
        if mask.shape != self.neurons.shape:
            raise ReviewError(f"mask shape {mask.shape} differs from labels {self.neurons.shape}")
        if not mask.any():
            raise ReviewError("empty mask")
        self._ensure_writable()
        sl = _box_slices(mask)
        touched = _id_counts(self.labels["neurons"][sl][mask[sl]])
        self._write_px(sl, mask[sl], 0)
        gone = [i for i in touched if i > 0 and self._obj(i) is None]
        dropped = self._drop_overrides(gone)
        return self._commit("erase", {"n_pixels": int(mask.sum()), "bbox": _bbox(mask)},
                            {"pixels_by_id": touched},
                            {"removed_ids": gone, "dropped_overrides": dropped}, labels=True)

    def set_labels(self, labels: np.ndarray) -> dict | None:
        """Take over hand-painted labels (e.g. a napari labels layer) as one edit.

        Parameters
        ----------
        labels : ndarray of int, shape (Y, X)
            The edited neuron labels.

        Returns
        -------
        dict or None
            The audit record, or None when nothing changed.
        """
        new = np.asarray(labels)
        old = self.neurons
        if new.shape != old.shape:
            raise ReviewError(f"labels shape {new.shape} differs from {old.shape}")
        changed = new != old
        if not changed.any():
            return None
        return self.set_labels_region(_box_slices(changed), new[_box_slices(changed)])

    def set_labels_region(self, box: tuple[slice, slice], labels: np.ndarray) -> dict | None:
        """Take over hand-painted labels within a box as one edit (only the box is read).

        Parameters
        ----------
        box : (slice, slice)
            The region painted (e.g. the bounding box of a napari paint stroke).
        labels : ndarray of int
            The labels of that region after painting.

        Returns
        -------
        dict or None
            The audit record, or None when nothing changed.
        """
        h, w = self.neurons.shape
        sl = (slice(max(int(box[0].start or 0), 0), min(int(box[0].stop), h)),
              slice(max(int(box[1].start or 0), 0), min(int(box[1].stop), w)))
        new = np.asarray(labels)
        if new.shape != (sl[0].stop - sl[0].start, sl[1].stop - sl[1].start):
            raise ReviewError(f"painted region {new.shape} does not fit its box")
        if new.size and (int(new.min()) < 0 or int(new.max()) > np.iinfo(np.int32).max):
            raise ReviewError("labels must be non-negative 32-bit integers")
        new = new.astype(np.int32)
        self._ensure_writable()
        old = self.neurons[sl]
        changed = new != old
        if not changed.any():
            return None
        before = _id_counts(old[changed])
        after = _id_counts(new[changed])
        n = int(changed.sum())
        ys, xs = np.nonzero(changed)
        bbox = [int(ys.min()) + sl[0].start, int(xs.min()) + sl[1].start,
                int(ys.max()) + 1 + sl[0].start, int(xs.max()) + 1 + sl[1].start]
        self._write_px(sl, changed, new[changed])
        gone = [i for i in before if i > 0 and self._obj(i) is None]
        dropped = self._drop_overrides(gone)
        return self._commit("paint_layer", {"n_pixels": n, "bbox": bbox},
                            {"pixels_by_id": before},
                            {"pixels_by_id": after, "removed_ids": gone,
                             "dropped_overrides": dropped}, labels=True)

    def flip_call(self, neuron_id: int) -> dict:
        """Flip a neuron's IgG call (stored as the reviewer's explicit call).

        Parameters
        ----------
        neuron_id : int
            Neuron label.

        Returns
        -------
        dict
            The audit record (``after["igg_positive"]``).
        """
        nid = self._check_id(neuron_id)
        cur = self.call(nid)
        if cur is None:
            raise ReviewError(f"neuron {nid} has no call yet (no threshold, or not measured: "
                              f"recompute first)")
        return self.set_call(nid, not cur, _kind="flip")

    def set_call(self, neuron_id: int, positive: bool | None, *, _kind: str = "set_call"
                 ) -> dict:
        """Set a neuron's IgG call explicitly (None removes the reviewer's call).

        Parameters
        ----------
        neuron_id : int
            Neuron label.
        positive : bool or None
            The call; None returns to the threshold call.

        Returns
        -------
        dict
            The audit record.
        """
        nid = self._check_id(neuron_id)
        before = {"igg_positive": self.call(nid),
                  "call_source": "reviewer" if nid in self.calls else "threshold"}
        if positive is None:
            self.calls.pop(nid, None)
        else:
            self.calls[nid] = bool(positive)
        after = {"igg_positive": self.call(nid),
                 "call_source": "reviewer" if nid in self.calls else "threshold"}
        return self._commit(_kind, {"neuron_id": nid}, before, after)

    def set_excluded(self, neuron_id: int, excluded: bool = True) -> dict:
        """Mark a neuron excluded from the summaries (or include it again).

        Parameters
        ----------
        neuron_id : int
            Neuron label.
        excluded : bool
            Exclude (True) or include (False).

        Returns
        -------
        dict
            The audit record.
        """
        nid = self._check_id(neuron_id)
        before = {"excluded": nid in self.excluded}
        (self.excluded.add if excluded else self.excluded.discard)(nid)
        return self._commit("exclude" if excluded else "include", {"neuron_id": nid}, before,
                            {"excluded": bool(excluded)})

    # ------------------------------------------------------------------ skin edits
    def add_crossing(self, y_um: float, x_um: float, fibre_id: int | None = None) -> dict:
        """Add a fibre crossing the reviewer counted.

        Parameters
        ----------
        y_um, x_um : float
            Position in µm.
        fibre_id : int, optional
            Fibre label, if known.

        Returns
        -------
        dict
            The audit record.
        """
        self._require("skin")
        row = {"y_um": float(y_um), "x_um": float(x_um),
               "fibre_id": -1 if fibre_id is None else int(fibre_id), "source": "reviewer",
               "excluded": False}
        self.crossings = pd.concat([self.crossings, pd.DataFrame([row])], ignore_index=True)
        return self._commit("add_crossing", {"y_um": row["y_um"], "x_um": row["x_um"],
                                             "fibre_id": row["fibre_id"]},
                            {"n_crossings": len(self.crossings) - 1},
                            {"n_crossings": len(self.crossings)}, crossings=True)

    def nearest_crossing(self, y_um: float, x_um: float) -> tuple[int, float]:
        """Return the index of the crossing nearest to a point and its distance (µm).

        Parameters
        ----------
        y_um, x_um : float
            Position in µm.

        Returns
        -------
        (int, float)
            Row index in :attr:`crossings` and distance; ``(-1, inf)`` when none.
        """
        if not len(self.crossings):
            return -1, float("inf")
        d = np.hypot(self.crossings["y_um"].to_numpy(float) - y_um,
                     self.crossings["x_um"].to_numpy(float) - x_um)
        i = int(np.argmin(d))
        return i, float(d[i])

    def delete_crossing(self, index: int | None = None, *, near_um: Sequence[float] | None = None,
                        tolerance_um: float = 5.0) -> dict:
        """Delete a crossing, by row index or as the one nearest to a point.

        Parameters
        ----------
        index : int, optional
            Row of :attr:`crossings`.
        near_um : (y, x), optional
            Delete the crossing nearest to this point (µm) ...
        tolerance_um : float
            ... if it lies within this distance.

        Returns
        -------
        dict
            The audit record (``before`` holds the deleted crossing).
        """
        self._require("skin")
        if (index is None) == (near_um is None):
            raise ReviewError("give either a crossing index or a point")
        if near_um is not None:
            index, d = self.nearest_crossing(float(near_um[0]), float(near_um[1]))
            if index < 0 or d > tolerance_um:
                raise ReviewError(f"no crossing within {tolerance_um:g} µm of {tuple(near_um)}")
        index = int(index)
        if not 0 <= index < len(self.crossings):
            raise ReviewError(f"no crossing with index {index}")
        row = self.crossings.iloc[index].to_dict()
        self.crossings = self.crossings.drop(self.crossings.index[index]).reset_index(drop=True)
        return self._commit("delete_crossing", {"index": index}, {"crossing": row},
                            {"n_crossings": len(self.crossings)}, crossings=True)

    def set_polyline(self, name: str, vertices_um: np.ndarray) -> dict:
        """Redraw the DEJ or the epidermal surface.

        Parameters
        ----------
        name : {"dej", "surface"}
            Which line.
        vertices_um : ndarray, shape (N, 2)
            New vertices (y, x) in µm, N >= 2.

        Returns
        -------
        dict
            The audit record (before/after vertices and lengths).
        """
        self._require("skin")
        if name not in ("dej", "surface"):
            raise ReviewError(f"unknown polyline {name!r}; use 'dej' or 'surface'")
        v = np.asarray(vertices_um, float).reshape(-1, 2)
        if len(v) < 2 or not np.isfinite(v).all():
            raise ReviewError("a polyline needs at least two finite vertices")
        old = self.polylines.get(name, np.zeros((0, 2)))
        self.polylines[name] = v
        if name not in self.polylines_edited:
            self.polylines_edited.append(name)
        return self._commit("redraw_" + name, {"name": name},
                            {"vertices_um": old, "length_um": polyline_length_um(old)},
                            {"vertices_um": v, "length_um": polyline_length_um(v)},
                            polylines=True, crossings=False)

    def exclude_region(self, polygon_um: np.ndarray) -> dict:
        """Exclude a region (folded, torn or out-of-focus tissue) from counting and length.

        Parameters
        ----------
        polygon_um : ndarray, shape (N, 2)
            Closed polygon (y, x) in µm, N >= 3.

        Returns
        -------
        dict
            The audit record.
        """
        self._require("skin")
        poly = np.asarray(polygon_um, float).reshape(-1, 2)
        if len(poly) < 3:
            raise ReviewError("a region needs at least three vertices")
        before = {"n_regions": len(self.excluded_regions)}
        self.excluded_regions.append(poly)
        return self._commit("exclude_region", {"polygon_um": poly}, before,
                            {"n_regions": len(self.excluded_regions)}, crossings=True)

    def remove_excluded_region(self, index: int) -> dict:
        """Remove an excluded region again.

        Parameters
        ----------
        index : int
            Index in :attr:`excluded_regions`.

        Returns
        -------
        dict
            The audit record.
        """
        self._require("skin")
        if not 0 <= int(index) < len(self.excluded_regions):
            raise ReviewError(f"no excluded region {index}")
        poly = self.excluded_regions.pop(int(index))
        return self._commit("include_region", {"index": int(index)}, {"polygon_um": poly},
                            {"n_regions": len(self.excluded_regions)}, crossings=True)

    def _flag_excluded_crossings(self) -> None:
        c = self.crossings
        if len(c):
            c["excluded"] = points_in_regions(c[["y_um", "x_um"]].to_numpy(float),
                                              self.excluded_regions)
        else:
            self.crossings = pd.DataFrame(columns=CROSSING_COLUMNS)

    # ------------------------------------------------------------------ recompute
    def recompute(self) -> dict[str, Any]:
        """Write the reviewed tables and summaries from the current state.

        DRG: the neurons are measured on the edited labels with the run's parameters
        (:func:`histo_fms.drg.measure_drg` with ``labels=``), called with the run's
        threshold, then the reviewer's calls and exclusions are applied. Skin: the
        crossings outside excluded regions are counted and the epidermis length is
        measured along the (edited) surface outside excluded regions.

        Writes ``OUT/STEM/reviewed/{neurons.csv | crossings.csv}``,
        ``OUT/STEM/reviewed/summary.json`` and ``OUT/{drg,skin}_summary_reviewed.csv``.

        Returns
        -------
        dict
            This image's summary: automatic and reviewed values, ``n_auto``,
            ``n_reviewed`` and ``delta``.
        """
        self.check_fresh()
        self.flush()  # (background saves: the label chunks on disk first)
        n0 = self.n_edits
        summary = self._recompute_drg() if self.kind == "drg" else self._recompute_skin()
        from .. import __version__

        summary.update({"image": self._image_name(), "reviewer": self.reviewer,
                        "reviewed_at": utc_now(), "n_edits": n0,
                        "histo_fms_version": __version__,
                        "run_histo_fms_version": self.run.get("histo_fms_version")})
        write_json(summary, self.dir / SUMMARY)
        # an edit made while this ran (the widget recomputes in the background) is not
        # in these numbers: the review stays stale
        self.needs_recompute = self.n_edits > n0
        self._snap = small_state(self)  # a skin recount may change the crossings
        write_json(self._state(), self.dir / OVERRIDES)
        write_reviewed_summary(self.results_dir, self.kind)
        self.audit.append({"seq": self.n_edits, "time": utc_now(), "reviewer": self.reviewer,
                           "image": self.stem, "case": self.blind_code, "kind": "recompute",
                           "params": dict(getattr(self, "_last_recompute", {})), "before": None,
                           "after": {k: summary.get(k) for k in ("n_auto", "n_reviewed",
                                                                  "delta")}})
        return summary

    def _image_name(self) -> str:
        try:
            return str(file_entry(self.run, self.stem).get("image", self.stem))
        except KeyError:
            return self.stem

    def _drg_config(self):
        from ..config import PipelineConfig

        return PipelineConfig.model_validate(self.run["config"])

    def load_channels(self) -> dict[str, np.ndarray]:
        """Read the measured image's channels by role (as the run did).

        Returns
        -------
        dict of str to ndarray
            Role -> 2-D channel.

        Raises
        ------
        FileNotFoundError
            The image recorded in ``run.json`` cannot be found.
        """
        return {role: np.asarray(v.compute() if hasattr(v, "compute") else v)
                for role, v in self.lazy_channels().items()}

    def lazy_channels(self) -> dict[str, Any]:
        """Return the measured image's channels by role, read lazily (dask arrays).

        Returns
        -------
        dict of str to dask.array.Array
            Role -> 2-D channel (only what is sliced is read).

        Raises
        ------
        FileNotFoundError
            The image recorded in ``run.json`` cannot be found.
        """
        from ..io import read_image, resolve_channels

        cfg = self._drg_config()
        entry = file_entry(self.run, self.stem)
        path = image_path(self.results_dir, entry)
        if path is None:
            raise FileNotFoundError(f"image {entry.get('path')} of this result is not found; "
                                    "recompute needs it")
        img = read_image(path, series=cfg.image.series, level=cfg.image.level, z=cfg.image.z,
                         pixel_size_um=self.pixel_size_um, reader=cfg.image.reader)
        req, opt = cfg.roles()
        idx = resolve_channels(img.channel_names, cfg.channels, required=req, optional=opt,
                               path=img.path)
        return {role: img.data[i] for role, i in idx.items()}

    def _recompute_drg(self) -> dict[str, Any]:
        """Re-measure (only near the edits when possible), then apply calls and exclusions.

        After label edits only the neurons they changed and those within the
        measurement radius of their pixels are re-measured (:mod:`._remeasure`); the
        result equals a whole-section re-measure exactly. The whole section is
        re-measured when that is not possible (no stored diffs, measurement parameters
        that are not local, edits spread over most of the section).
        """
        from ..drg import call_igg, measure_drg, summarize_section
        from ._remeasure import plan_local, remeasure_local, write_ring_patches

        cfg = self._drg_config()
        plan = None
        if "neurons" in self.labels and "rings" in self.labels:
            plan = plan_local(self, cfg.params())
        self._last_recompute = {"local": plan is not None, "through_edit": self.n_edits}
        if plan is not None:
            measured, patches = remeasure_local(self, cfg.params(), self.lazy_channels(), plan)
            rings = None
            ids = set(plan["gone"]).union(*plan["groups"])
            self._last_recompute["n_remeasured"] = int(sum(len(g) for g in plan["groups"]))
            #: (ids re-measured or removed, ring boxes rewritten) of the last local recompute
            self.last_recompute_local = (ids, [p[0] for p in patches])
        else:
            ch = self.load_channels()
            res = measure_drg(ch["neuron"], ch.get("igg"), pixel_size_um=self.pixel_size_um,
                              sgc=ch.get("sgc"), nuclei=ch.get("nuclei"), params=cfg.params(),
                              labels=self.neurons)
            measured, rings, patches = res.table, res.rings, []
            self.last_recompute_local = None
            self._last_recompute["n_remeasured"] = int(len(measured))
        thr = (self.run.get("threshold") or {}).get("ring_igg")
        tab = measured.copy()
        if thr is not None:
            tab = call_igg(tab, float(thr))
            tab["igg_positive_auto"] = tab["igg_positive"].astype("boolean")
        else:
            tab["igg_positive_auto"] = pd.Series([pd.NA] * len(tab), dtype="boolean")
        ids = tab["neuron_id"].astype(int)
        call = tab["igg_positive_auto"].copy()
        src = pd.Series(["threshold"] * len(tab), dtype=object)
        for i, (nid, _) in enumerate(zip(ids, call, strict=True)):
            if nid in self.calls:
                call.iloc[i] = self.calls[nid]
                src.iloc[i] = "reviewer"
        tab["igg_positive"] = call.astype("boolean")
        tab["call_source"] = src.to_numpy()
        tab["excluded"] = ids.isin(self.excluded).to_numpy()
        tab = schema.conform(tab, "neurons")
        schema.write_table(tab, self.dir / "neurons.csv", "neurons")
        if rings is not None:
            self.labels["rings"] = rings
            write_labels_zarr({"neurons": self.neurons, "rings": rings},
                              self.dir / "labels.zarr", pixel_size_um=self.pixel_size_um)
        else:
            self._copy_auto_labels()
            write_ring_patches(self, patches)
        self.table = _read_neurons(self.dir / "neurons.csv")
        excl_border = cfg.summary.exclude_border
        # the summary of the table as written (so a local and a whole-section re-measure,
        # and anyone re-reading neurons.csv, get the same numbers)
        counted = schema.counted_rows(self.table).copy()
        if thr is None and counted["igg_positive"].isna().any():
            counted = counted.drop(columns=["igg_positive"])
        # else a blank call (an unmeasured ring nobody called) stays out of the % IgG+
        rev = summarize_section(counted, exclude_border=excl_border)
        auto = self._auto_drg_summary(excl_border, thr)
        return {
            "pipeline": "drg", "threshold": thr,
            **{f"{k}_auto": v for k, v in auto.items()},
            **{f"{k}_reviewed": v for k, v in rev.items()},
            "n_auto": auto["n_neurons"], "n_reviewed": rev["n_neurons"],
            "delta": rev["n_neurons"] - auto["n_neurons"],
            "delta_n_igg_positive": _sub(rev["n_igg_positive"], auto["n_igg_positive"]),
            "delta_pct_igg_positive": _sub(rev["pct_igg_positive"], auto["pct_igg_positive"]),
            "n_excluded": int(tab["excluded"].sum()),
            "n_reviewer_calls": int((tab["call_source"] == "reviewer").sum()),
        }

    def _auto_drg_summary(self, exclude_border: bool, thr: float | None) -> dict:
        from ..drg import summarize_section

        t = self.auto_table
        if thr is None or t["igg_positive"].isna().all():
            t = t.drop(columns=["igg_positive"])
        return summarize_section(t, exclude_border=exclude_border)

    def _recompute_skin(self) -> dict[str, Any]:
        self._flag_excluded_crossings()
        recount = None
        if self.polylines_edited:
            recount = self._recount_from_dej()
        write_table(_ordered(self.crossings), self.dir / "crossings.csv")
        write_polylines(self.polylines, self.dir / "polylines.json")
        counted = len(schema.counted_rows(self.crossings))
        surf = self.polylines.get("surface", np.zeros((0, 2)))
        dej = self.polylines.get("dej", np.zeros((0, 2)))
        length_mm = polyline_length_um(surf, self.excluded_regions) / 1000.0
        dej_mm = polyline_length_um(dej, self.excluded_regions) / 1000.0
        auto_n = int(len(self.auto_crossings))
        auto_len = polyline_length_um(self.auto_polylines.get("surface", np.zeros((0, 2)))) / 1e3
        auto_dej = polyline_length_um(self.auto_polylines.get("dej", np.zeros((0, 2)))) / 1e3
        srow = _summary_row(self.results_dir, "skin", self._image_name())
        if srow is not None:
            auto_n = int(srow.get("n_crossings", auto_n))
            auto_len = float(srow.get("epidermis_length_mm", auto_len))
            auto_dej = float(srow.get("dej_length_mm", auto_dej))
        ienfd = _ienfd(counted, length_mm)
        auto_ienfd = _ienfd(auto_n, auto_len)
        return {
            "pipeline": "skin",
            "n_crossings_auto": auto_n, "epidermis_length_mm_auto": auto_len,
            "dej_length_mm_auto": auto_dej, "ienfd_per_mm_auto": auto_ienfd,
            "n_crossings_reviewed": counted, "epidermis_length_mm_reviewed": length_mm,
            "dej_length_mm_reviewed": dej_mm, "ienfd_per_mm_reviewed": ienfd,
            "n_auto": auto_n, "n_reviewed": counted, "delta": counted - auto_n,
            "delta_ienfd_per_mm": _sub(ienfd, auto_ienfd),
            "n_excluded_regions": len(self.excluded_regions),
            "n_added": int((self.crossings["source"] == "reviewer").sum()),
            "recount_from_dej": recount,
        }

    def _recount_from_dej(self) -> str:
        """Recount the automatic crossings against the edited DEJ and surface.

        Uses :func:`histo_fms.skin.recount_skin` on the traced fibres (no segmentation
        is redone). Crossings the reviewer added are kept; automatic crossings the
        reviewer deleted are deleted again in the recount (nearest within 10 µm).
        """
        try:
            from ..config import PipelineConfig
            from ..skin import recount_skin
        except ImportError as exc:
            return f"not recounted: {exc}"
        if "fibres" not in self.labels:
            return "not recounted: no traced fibres in labels.zarr"
        dej = self.polylines.get("dej", np.zeros((0, 2)))
        surf = self.polylines.get("surface", np.zeros((0, 2)))
        try:
            params = PipelineConfig.model_validate(self.run["config"]).params()
        except Exception:  # noqa: BLE001 - incomplete provenance: counting defaults
            params = None
        try:
            res = recount_skin(self.labels["fibres"], pixel_size_um=self.pixel_size_um,
                               dej_um=dej, surface_um=surf, params=params)
        except ValueError as exc:
            return f"not recounted: {exc}"
        new = res.crossings.copy()
        new["source"] = "auto"
        new["excluded"] = False
        manual = self.crossings.loc[self.crossings["source"] == "reviewer"]
        deleted = [e["before"]["crossing"] for e in self.audit.read()
                   if e.get("kind") == "delete_crossing"
                   and (e.get("before") or {}).get("crossing", {}).get("source") == "auto"]
        keep = np.ones(len(new), bool)
        for d in deleted:
            dd = np.hypot(new["y_um"].to_numpy(float) - d["y_um"],
                          new["x_um"].to_numpy(float) - d["x_um"])
            dd = np.where(keep, dd, np.inf)
            if dd.size and dd.min() <= 10.0:
                keep[int(np.argmin(dd))] = False
        self.crossings = _ordered(pd.concat([new.loc[keep], manual], ignore_index=True))
        self._flag_excluded_crossings()
        self.labels = {**self.labels, "epidermis": res.epidermis.astype(np.uint8),
                       "fibres": res.fibres}
        write_labels_zarr(self.labels, self.dir / "labels.zarr", pixel_size_um=self.pixel_size_um)
        return (f"recounted with the edited lines: {len(new)} automatic crossings, "
                f"{int((~keep).sum())} deleted by the reviewer, {len(manual)} added")


# ---------------------------------------------------------------------- helpers
def _sub(a: Any, b: Any) -> float:
    try:
        return float(a) - float(b)
    except (TypeError, ValueError):
        return float("nan")


def _ienfd(n: int, length_mm: float) -> float:
    try:
        from ..skin import ienfd

        return float(ienfd(n, length_mm))
    except (ImportError, AttributeError, ValueError, ZeroDivisionError):
        return float(n) / length_mm if length_mm > 0 else float("nan")


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    return schema.conform(df, "crossings")


def _absorb_small_parts(parts: np.ndarray, min_px: float) -> np.ndarray:
    """Give pieces below ``min_px`` pixels (and disconnected fragments) to a neighbour.

    Each part keeps only its largest connected piece; every other piece, and every part
    smaller than ``min_px``, joins the part it shares the longest border with.
    """
    pieces = np.zeros(parts.shape, np.int64)
    owners = [0]
    for p in np.unique(parts):
        if p <= 0:
            continue
        lab, k = ndi.label(parts == p)
        pieces[lab > 0] = lab[lab > 0] + len(owners) - 1
        owners += [int(p)] * k
    n = len(owners) - 1
    owner = np.asarray(owners, np.int64)
    size = np.bincount(pieces.ravel(), minlength=n + 1)
    # the largest piece of each part keeps it; the rest are fragments
    keep = np.zeros(n + 1, bool)
    for p in np.unique(owner[1:]):
        ks = np.flatnonzero(owner == p)
        ks = ks[ks > 0]
        keep[ks[np.argmax(size[ks])]] = size[ks].max() >= min_px
    for _ in range(n):
        small = [k for k in range(1, n + 1) if not keep[k] and size[k] > 0]
        if not small:
            break
        k = min(small, key=lambda i: size[i])
        m = pieces == k
        ring = ndi.binary_dilation(m) & ~m & (pieces > 0)
        if not ring.any():
            break  # an isolated piece: it stays as it is
        nb = np.bincount(pieces[ring], minlength=n + 1)
        j = int(nb.argmax())
        pieces[m] = j
        size[j] += size[k]
        size[k] = 0
        keep[j] = keep[j] or size[j] >= min_px
    out = np.zeros_like(parts)
    for k in range(1, n + 1):
        if size[k]:
            out[pieces == k] = owner[k]
    return out

def _id_counts(values: np.ndarray) -> dict[int, int]:
    ids, cnt = np.unique(np.asarray(values), return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, cnt, strict=True)}


def _box_slices(mask: np.ndarray) -> tuple[slice, slice]:
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return slice(int(ys[0]), int(ys[-1]) + 1), slice(int(xs[0]), int(xs[-1]) + 1)


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return []
    return [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1]


def _chunk_aligned(box: tuple[slice, slice], chunks: tuple[int, ...],
                   shape: tuple[int, ...]) -> tuple[slice, slice]:
    """Grow a 2-D box to the chunk grid (clipped to the array)."""
    out = []
    for sl, c, n in zip(box, chunks[-2:], shape[-2:], strict=True):
        c = max(int(c), 1)
        out.append(slice((sl.start // c) * c, min(-(-sl.stop // c) * c, n)))
    return tuple(out)


def _pixel_size(run: dict, stem: str, labels: Path) -> float:
    """Pixel size of a result: the labels' scale, else run.json; never a default."""
    try:
        return schema.check_pixel_size(read_labels_scale(labels), what=f"{labels}: scale")
    except (KeyError, IndexError, OSError, FileNotFoundError, TypeError):
        pass
    try:
        value = file_entry(run, stem).get("pixel_size_um")
    except KeyError:
        value = None
    if value is None:
        raise ReviewError(f"{stem}: no pixel size in {labels} nor in run.json; "
                          "the results folder is incomplete")
    try:
        return schema.check_pixel_size(value, what=f"{stem}: run.json pixel_size_um")
    except ValueError as exc:
        raise ReviewError(str(exc)) from None


class LazyLabels(Mapping):
    """The label images of a ``labels.zarr``, read in full only when asked for.

    ``labels[name]`` reads (once) and returns the whole image as a numpy array;
    :meth:`raw` returns the zarr array, of which the review reads only boxes.
    """

    def __init__(self, path: Path):
        self._raw = _open_labels_lazy(path)
        self._full: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._full:
            self._full[name] = np.asarray(self._raw[name][...])
        return self._full[name]

    def __contains__(self, name: object) -> bool:
        # (Mapping's default would read the whole image to answer)
        return name in self._raw

    def __iter__(self):
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def raw(self, name: str) -> Any:
        """Return one label image as stored (read box by box)."""
        return self._full.get(name, self._raw[name])


def _open_labels_lazy(path: Path) -> dict[str, Any]:
    """Open the label images of a ``labels.zarr`` without reading them (zarr arrays)."""
    import zarr

    root = zarr.open_group(str(path), mode="r")
    return {n: root[f"labels/{n}/0"] for n in root.attrs.get("labels", [])}


def _read_neurons(path: Path) -> pd.DataFrame:
    return schema.read_table(path, "neurons", missing_ok=True)


def _read_crossings(path: Path, source: str | None) -> pd.DataFrame:
    df = schema.read_table(path, "crossings", missing_ok=True)
    if "fibre_id" in df and df["fibre_id"].dtype != np.int64:
        df["fibre_id"] = df["fibre_id"].fillna(-1).astype(np.int64)
    if "source" not in df or source is not None:
        df["source"] = pd.Series([source or "auto"] * len(df), index=df.index, dtype=object)
    if "excluded" not in df:
        df["excluded"] = np.zeros(len(df), bool)
    return _ordered(df)


def _summary_row(results_dir: Path, kind: str, image: str) -> dict | None:
    s = summary_table(results_dir, kind)
    if s.empty or "image" not in s:
        return None
    row = s.loc[s["image"] == image]
    return None if row.empty else row.iloc[0].to_dict()


def _needs_recompute(review_dir: Path) -> bool:
    """Whether a review folder has edits made after its last recompute."""
    p = review_dir / OVERRIDES
    if not p.is_file():
        return False
    return bool(json.loads(p.read_text(encoding="utf-8")).get("needs_recompute", False))


def stale_reviews(results_dir: str | Path) -> list[str]:
    """Return the images whose review was edited after its last recompute.

    Their reviewed tables (``STEM/reviewed/*.csv``) and summary rows are those of the
    last recompute while the labels, calls and lines are newer: consumers of reviewed
    results (figures, export) refuse them unless told otherwise.

    Parameters
    ----------
    results_dir : str or Path
        A results folder.

    Returns
    -------
    list of str
        Output-folder names (stems), sorted.
    """
    results_dir = Path(results_dir)
    return sorted(d.name for d in results_dir.iterdir()
                  if (d / REVIEWED).is_dir() and (d / REVIEWED / SUMMARY).is_file()
                  and _needs_recompute(d / REVIEWED)) if results_dir.is_dir() else []


def write_reviewed_summary(results_dir: str | Path, kind: str) -> Path:
    """Write ``OUT/{kind}_summary_reviewed.csv``: every image, automatic vs reviewed.

    Images not reviewed yet keep their automatic values (``reviewed`` is False). An
    image edited after its last recompute is marked ``stale`` (its reviewed values are
    those of the last recompute); :func:`histo_fms.figures.make_figures` refuses stale
    reviews unless told otherwise.

    Parameters
    ----------
    results_dir : str or Path
        The results folder.
    kind : {"drg", "skin"}
        Pipeline kind.

    Returns
    -------
    Path
        The CSV written.
    """
    from ..io import image_stem

    results_dir = Path(results_dir)
    auto = summary_table(results_dir, kind)
    main = ("n_neurons", "n_called", "n_igg_positive", "pct_igg_positive",
            "median_ring_igg") if (
        kind == "drg") else ("n_crossings", "epidermis_length_mm", "dej_length_mm", "ienfd_per_mm")
    primary = main[0]
    rows = []
    for _, r in auto.iterrows():
        row = r.to_dict()
        stem = image_stem(str(row["image"]))
        sp = results_dir / stem / REVIEWED / SUMMARY
        rev = json.loads(sp.read_text(encoding="utf-8")) if sp.is_file() else None
        out = {"image": row["image"], "reviewed": rev is not None,
               "stale": rev is not None and _needs_recompute(sp.parent),
               "reviewer": rev.get("reviewer") if rev else "",
               "reviewed_at": rev.get("reviewed_at") if rev else ""}
        for k in main:
            a = row.get(k, np.nan)
            v = rev.get(f"{k}_reviewed", np.nan) if rev else a
            out[f"{k}_auto"] = a
            out[k] = v
        out["n_auto"] = row.get(primary, np.nan)
        out["n_reviewed"] = out[primary]
        out["delta"] = _sub(out["n_reviewed"], out["n_auto"])
        for k in main[1:]:
            out[f"delta_{k}"] = _sub(out[k], out[f"{k}_auto"])
        for k, v in row.items():
            if k not in out and k not in main:
                out[k] = v
        rows.append(out)
    df = pd.DataFrame(rows)
    return schema.write_table(df, results_dir / f"{kind}_summary_reviewed.csv",
                              f"{kind}_summary_reviewed")
