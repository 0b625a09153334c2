"""Undo / redo for a review session: every edit stored as an exact, sparse diff.

Each edit of a :class:`~histo_fms.review.ReviewSession` is kept as one file
``OUT/STEM/reviewed/history/edit_NNNNNN.npz`` (plain arrays, no pickle):

- ``neurons_idx``, ``neurons_old``, ``neurons_new``: flat indices of the label pixels
  the edit changed, their values before and after;
- ``meta``: JSON text with the edit's kind and the small state it changed (reviewer
  calls, exclusions, excluded regions, crossings, DEJ / surface), before and after.

``history/stack.json`` holds the undo and redo stacks (edit numbers). Undo applies
the ``old`` values and the ``before`` state; redo the ``new`` values and the ``after``
state, so both are exact. Every edit, undo and redo is in the audit log with the name
of its diff file, so :func:`replay_review` rebuilds a review from the automatic result.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import atomic_path, read_labels_zarr, read_polylines
from ._audit import AuditLog, to_jsonable
from ._index import BoxIndex, find_boxes, pixel_boxes

HISTORY = "history"
STACK = "stack.json"
#: The small (non-pixel) state an edit can change, restored exactly by undo / redo.
STATE_KEYS = ("calls", "excluded", "excluded_regions", "crossings", "polylines",
              "polylines_edited")


def combine_pixels(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine several pixel writes of one edit into one diff.

    Parameters
    ----------
    parts : list of (idx, old, new)
        Flat indices and values before / after, in the order they were written.

    Returns
    -------
    (idx, old, new)
        Sorted unique indices, the value before the first write and after the last one;
        pixels whose value did not change are dropped.
    """
    if not parts:
        e = np.zeros(0, np.int64)
        return e, np.zeros(0, np.int32), np.zeros(0, np.int32)
    idx = np.concatenate([p[0] for p in parts]).astype(np.int64)
    old = np.concatenate([p[1] for p in parts]).astype(np.int32)
    new = np.concatenate([p[2] for p in parts]).astype(np.int32)
    if len(parts) > 1:
        uidx, first = np.unique(idx, return_index=True)
        _, last_rev = np.unique(idx[::-1], return_index=True)
        last = len(idx) - 1 - last_rev
        idx, old, new = uidx, old[first], new[last]
    else:
        order = np.argsort(idx, kind="stable")
        idx, old, new = idx[order], old[order], new[order]
    keep = old != new
    return idx[keep], old[keep], new[keep]


def crossings_to_json(df: pd.DataFrame) -> dict:
    """Return a crossings table as JSON (columns and rows), exactly restorable."""
    if not len(df):  # (every DRG edit: no pandas conversion of an empty table)
        return {"columns": [str(c) for c in df.columns], "data": []}
    return {"columns": [str(c) for c in df.columns],
            "data": to_jsonable(df.astype(object).where(df.notna(), None).values.tolist())}


def crossings_from_json(obj: dict) -> pd.DataFrame:
    """Inverse of :func:`crossings_to_json` (dtypes of the known columns restored)."""
    df = pd.DataFrame(obj.get("data", []), columns=obj.get("columns", []))
    for c in ("y_um", "x_um"):
        if c in df:
            df[c] = df[c].astype(float)
    if "fibre_id" in df:
        df["fibre_id"] = df["fibre_id"].fillna(-1).astype(np.int64)
    if "source" in df:
        df["source"] = df["source"].astype(object)
    if "excluded" in df:
        df["excluded"] = df["excluded"].astype(bool)
    return df


class EditHistory:
    """The undo / redo stacks of one image's review, saved atomically on every change.

    Parameters
    ----------
    review_dir : Path
        ``OUT/STEM/reviewed``.
    """

    def __init__(self, review_dir: Path):
        self.dir = Path(review_dir) / HISTORY
        self.undo_stack: list[int] = []
        self.redo_stack: list[int] = []
        #: when a dict, saves are kept here (path relative to the review folder -> bytes)
        #: instead of written: the session writes them and journals them with the edit
        self.deferred: dict[str, bytes] | None = None
        p = self.dir / STACK
        if p.is_file():
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
                self.undo_stack = [int(i) for i in d.get("undo", [])]
                self.redo_stack = [int(i) for i in d.get("redo", [])]
            except (OSError, ValueError) as exc:
                raise ValueError(f"{p}: unreadable undo history ({exc})") from exc
            self.undo_stack = [i for i in self.undo_stack if self.path(i).is_file()]
            self.redo_stack = [i for i in self.redo_stack if self.path(i).is_file()]

    def path(self, seq: int) -> Path:
        """Return the diff file of edit ``seq``."""
        return self.dir / f"edit_{int(seq):06d}.npz"

    def save_stacks(self) -> None:
        """Write ``stack.json`` atomically."""
        data = json.dumps({"undo": self.undo_stack, "redo": self.redo_stack}).encode()
        if self.deferred is not None:
            self.deferred[f"{HISTORY}/{STACK}"] = data
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.dir / STACK) as tmp:
            tmp.write_bytes(data)

    def save_edit(self, seq: int, kind: str, pixels: dict[str, tuple], before: dict,
                  after: dict) -> Path:
        """Write one edit's diff atomically and push it on the undo stack (redo cleared).

        With :attr:`deferred` set, the diff and the stacks are kept there instead.

        Parameters
        ----------
        seq : int
            Edit number.
        kind : str
            Edit kind (as in the audit log).
        pixels : dict of str to (idx, old, new)
            Label name -> flat indices, values before and after.
        before, after : dict
            The small state the edit changed (keys of :data:`STATE_KEYS`).

        Returns
        -------
        Path
            The diff file.
        """
        arrays: dict[str, np.ndarray] = {}
        for name, (idx, old, new) in pixels.items():
            arrays[f"{name}_idx"] = np.asarray(idx, np.int64)
            arrays[f"{name}_old"] = np.asarray(old, np.int32)
            arrays[f"{name}_new"] = np.asarray(new, np.int32)
        meta = {"seq": int(seq), "kind": kind, "labels": sorted(pixels),
                "before": to_jsonable(before), "after": to_jsonable(after)}
        arrays["meta"] = np.array(json.dumps(meta))
        path = self.path(seq)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        if self.deferred is not None:
            self.deferred[f"{HISTORY}/{path.name}"] = buf.getvalue()
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_bytes(buf.getvalue())
        self.undo_stack.append(int(seq))
        self.redo_stack = []
        self.save_stacks()
        return path

    def load(self, seq: int) -> tuple[dict, dict[str, tuple]]:
        """Read edit ``seq``: its meta (kind, before, after) and pixel diffs.

        Returns
        -------
        (dict, dict of str to (idx, old, new))
        """
        path = self.path(seq)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                pixels = {n: (z[f"{n}_idx"], z[f"{n}_old"], z[f"{n}_new"])
                          for n in meta.get("labels", [])}
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: unreadable edit diff ({exc})") from exc
        return meta, pixels


def apply_state(target: Any, state: dict) -> None:
    """Set the small review state on a session-like object from JSON values.

    Parameters
    ----------
    target : ReviewSession
        Object with ``calls, excluded, excluded_regions, crossings, polylines,
        polylines_edited`` attributes.
    state : dict
        Subset of :data:`STATE_KEYS` as stored by :func:`small_state`.
    """
    if "calls" in state:
        target.calls = {int(k): bool(v) for k, v in state["calls"].items()}
    if "excluded" in state:
        target.excluded = {int(i) for i in state["excluded"]}
    if "excluded_regions" in state:
        target.excluded_regions = [np.asarray(r, float).reshape(-1, 2)
                                   for r in state["excluded_regions"]]
    if "crossings" in state:
        target.crossings = crossings_from_json(state["crossings"])
    if "polylines" in state:
        target.polylines = {k: np.asarray(v, float).reshape(-1, 2)
                            for k, v in state["polylines"].items()}
    if "polylines_edited" in state:
        target.polylines_edited = list(state["polylines_edited"])


def small_state(src: Any) -> dict:
    """Return the small review state of a session as JSON values (see :data:`STATE_KEYS`)."""
    return to_jsonable({
        "calls": {str(k): bool(v) for k, v in sorted(src.calls.items())},
        "excluded": sorted(int(i) for i in src.excluded),
        "excluded_regions": [np.asarray(r, float).tolist() for r in src.excluded_regions],
        "crossings": crossings_to_json(src.crossings),
        "polylines": {k: np.asarray(v, float).tolist() for k, v in src.polylines.items()},
        "polylines_edited": list(src.polylines_edited),
    })


def state_diff(before: dict, after: dict) -> tuple[dict, dict]:
    """Return the keys that differ between two small states, before and after."""
    keys = [k for k in STATE_KEYS if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def apply_pixels(labels: dict[str, np.ndarray], pixels: dict[str, tuple], *,
                 undo: bool) -> dict[str, tuple[slice, slice] | None]:
    """Apply pixel diffs in place (``old`` values when undoing, else ``new``).

    Returns
    -------
    dict of str to (slice, slice) or None
        Bounding box of the pixels written, per label image.
    """
    boxes: dict[str, tuple[slice, slice] | None] = {}
    for name, (idx, old, new) in pixels.items():
        lab = labels[name]
        idx = np.asarray(idx, np.int64)
        if idx.size and int(idx.max()) >= lab.size:
            raise ValueError(f"edit diff of {name} does not fit the labels {lab.shape}")
        lab.reshape(-1)[idx] = old if undo else new
        if idx.size:
            ys, xs = np.divmod(idx, lab.shape[1])
            boxes[name] = (slice(int(ys.min()), int(ys.max()) + 1),
                           slice(int(xs.min()), int(xs.max()) + 1))
        else:
            boxes[name] = None
    return boxes


class _Replayed:
    """The state :func:`replay_review` rebuilds (attributes as on a session)."""

    def __init__(self, labels, crossings, polylines):
        self.labels = labels
        self.calls: dict[int, bool] = {}
        self.excluded: set[int] = set()
        self.excluded_regions: list[np.ndarray] = []
        self.crossings = crossings
        self.polylines = polylines
        self.polylines_edited: list[str] = []


def replay_review(results_dir: str | Path, stem: str) -> _Replayed:
    """Rebuild a review from the automatic result and the audit log's diffs.

    Every edit, undo and redo recorded in ``OUT/STEM/reviewed/audit.jsonl`` is applied
    in order to the automatic labels, crossings and lines. (A skin recompute that
    recounts crossings from an edited DEJ is a measurement, not an edit: it is not
    replayed.)

    Parameters
    ----------
    results_dir : str or Path
        The results folder.
    stem : str
        The image's output name.

    Returns
    -------
    object
        With ``labels, calls, excluded, excluded_regions, crossings, polylines,
        polylines_edited`` as a :class:`ReviewSession` has them.
    """
    from ._session import AUDIT, REVIEWED, _read_crossings

    auto = Path(results_dir) / stem
    rev = auto / REVIEWED
    lab_path = auto / "labels.zarr"
    labels = read_labels_zarr(lab_path) if lab_path.exists() else {}
    labels = {k: np.array(v, dtype=np.int32) if k == "neurons" else np.array(v)
              for k, v in labels.items()}
    pl = auto / "polylines.json"
    out = _Replayed(labels, _read_crossings(auto / "crossings.csv", "auto"),
                    read_polylines(pl) if pl.is_file() else {})
    hist = EditHistory(rev)
    for rec in AuditLog(rev / AUDIT).read():
        diff = rec.get("diff")
        if not diff:
            continue
        meta, pixels = hist.load(int(diff["edit"]))
        undo = diff.get("direction") == "undo"
        apply_pixels(out.labels, pixels, undo=undo)
        apply_state(out, meta["before"] if undo else meta["after"])
    return out


def _touched_ids(pixels: dict, before: dict, after: dict) -> set[int]:
    """Neuron ids an edit changed: pixel values, calls and exclusions."""
    ids: set[int] = set()
    if "neurons" in pixels:
        _, old, new = pixels["neurons"]
        ids |= {int(i) for i in np.unique(np.concatenate([old, new])) if i > 0}
    cb, ca = before.get("calls"), after.get("calls")
    if cb is not None or ca is not None:
        cb, ca = cb or {}, ca or {}
        ids |= {int(k) for k in set(cb) | set(ca) if cb.get(k) != ca.get(k)}
    eb, ea = before.get("excluded"), after.get("excluded")
    if eb is not None or ea is not None:
        ids |= {int(i) for i in set(eb or []) ^ set(ea or [])}
    return ids


class HistoryMixin:
    """Undo / redo, per-object restore and a bounding-box index for :class:`ReviewSession`.

    Label writes of the edit methods go through :meth:`_write_px` (or :meth:`_note_px`),
    which records the sparse diff committed with the edit and keeps a per-neuron
    bounding box index, so edits touch only the edited region (no whole-image scans).
    """

    # set by ReviewSession
    labels: dict
    auto_labels: dict
    dir: Path

    def _init_history(self) -> None:
        self._history = EditHistory(self.dir)
        self._pending_px: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._index: BoxIndex | None = None
        self._auto_index: BoxIndex | None = None
        #: ids whose pixels may differ from the automatic labels (None: unknown)
        self._touched: set[int] | None = None
        self._last_box: tuple[slice, slice] | None = None
        self._last_px: tuple[np.ndarray, np.ndarray] | None = None
        self.last_edit_ids: set[int] = set()
        self._snap = small_state(self)
        self._replay_journal()
        self._finish_interrupted_save()

    def _finish_interrupted_save(self) -> None:
        """Complete a label save a crash interrupted (the edit's diff was saved first).

        The top of the redo stack (an undo being saved) must show its ``old`` pixels and
        then the top of the undo stack (the last edit or redo) its ``new`` pixels;
        pixels that do not are set and their chunks saved. Only those pixels are read.
        """
        if "neurons" not in self.labels or not (self.dir / "labels.zarr").exists():
            return
        for stack, forward in ((self._history.redo_stack, False),
                               (self._history.undo_stack, True)):
            if not stack:
                continue
            try:
                _, pixels = self._history.load(stack[-1])
            except ValueError:
                continue
            if "neurons" not in pixels or not np.size(pixels["neurons"][0]):
                continue
            idx, old, new = pixels["neurons"]
            want = np.asarray(new if forward else old, np.int32)
            lab = self.labels["neurons"]
            idx = np.asarray(idx, np.int64)
            if int(idx.max()) >= lab.size or np.array_equal(lab.reshape(-1)[idx], want):
                continue
            self._ensure_writable()
            self.labels["neurons"].reshape(-1)[idx] = want
            ys, xs = np.divmod(idx, lab.shape[1])
            self._last_box = (slice(int(ys.min()), int(ys.max()) + 1),
                              slice(int(xs.min()), int(xs.max()) + 1))
            self._save_labels()
            self._last_box = None

    # ------------------------------------------------------------ bounding boxes
    @staticmethod
    def _find_boxes(lab: np.ndarray) -> dict[int, list[int]]:
        return find_boxes(lab)

    def _hints(self, table: pd.DataFrame) -> dict[int, tuple[float, float, int]]:
        """Centroid (px) and pixel count of each neuron of a measurement table."""
        need = ("neuron_id", "y_um", "x_um", "area_um2")
        if not len(table) or any(c not in table for c in need):
            return {}
        px = float(self.pixel_size_um)
        ids = table["neuron_id"].to_numpy(np.int64)
        cy = pd.to_numeric(table["y_um"], errors="coerce").to_numpy(float) / px
        cx = pd.to_numeric(table["x_um"], errors="coerce").to_numpy(float) / px
        cnt = np.rint(pd.to_numeric(table["area_um2"], errors="coerce").to_numpy(float)
                      / px ** 2)
        ok = np.isfinite(cnt) & (cnt > 0) & (ids > 0)
        return {int(i): (float(y), float(x), int(c))
                for i, y, x, c in zip(ids[ok], cy[ok], cx[ok], cnt[ok], strict=True)}

    def _history_pixel_boxes(self) -> dict[int, list[int]] | None:
        """Per label, the box of every pixel the saved edits wrote or removed with it.

        None when the audit log has edits without a stored diff (a review begun by an
        older version): then which neurons changed is unknown.
        """
        recs = self.audit.read()
        if any(r.get("kind") != "recompute" and not r.get("diff") for r in recs):
            return None
        if getattr(self, "labels_edited", False) and not recs:
            return None
        w = self.labels["neurons"].shape[1]
        out: dict[int, list[int]] = {}
        for f in sorted(self._history.dir.glob("edit_*.npz")):
            try:
                seq = int(f.stem.split("_")[1])
            except (IndexError, ValueError):
                continue
            _, pixels = self._history.load(seq)
            if "neurons" in pixels:
                for v, b in pixel_boxes(*pixels["neurons"], w).items():
                    o = out.get(v)
                    out[v] = b if o is None else [min(b[0], o[0]), min(b[1], o[1]),
                                                  max(b[2], o[2]), max(b[3], o[3])]
        return out

    def _auto_raw(self):
        """Return the automatic neuron labels as stored (zarr: read box by box)."""
        a = self.auto_labels
        return a.raw("neurons") if hasattr(a, "raw") else a["neurons"]

    def _auto_boxes(self) -> BoxIndex:
        if self._auto_index is None:
            lab = self._auto_raw()
            self._auto_index = BoxIndex(self._auto_raw, lab.shape,
                                        hints=self._hints(self.auto_table))
        return self._auto_index

    def _boxes(self) -> BoxIndex:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def _build_index(self) -> BoxIndex:
        """Index the current labels without a whole-image pass when the history allows."""
        lab = self.labels["neurons"]

        def current():
            return self.labels["neurons"]

        auto_ok = "neurons" in self.auto_labels and len(getattr(self, "auto_table", ()))
        if auto_ok and getattr(self, "_labels_are_auto", False):
            # not edited yet: the automatic table was measured on exactly these labels
            self._touched = set()
            return BoxIndex(current, lab.shape, hints=self._hints(self.auto_table))
        diffs = self._history_pixel_boxes() if auto_ok else None
        if diffs is None:
            self._touched = None
            return BoxIndex(current, lab.shape, exact=find_boxes(lab))
        auto = self._auto_boxes()
        superset = {}
        for v, b in diffs.items():
            a = auto.get(v)
            superset[v] = b if a is None else [min(b[0], a[0]), min(b[1], a[1]),
                                               max(b[2], a[2]), max(b[3], a[3])]
        self._touched = set(diffs)
        hints = {k: h for k, h in self._hints(self.auto_table).items() if k not in superset}
        return BoxIndex(current, lab.shape, superset=superset, hints=hints)

    def touched_ids(self) -> set[int] | None:
        """Return the neurons whose pixels may differ from the automatic labels.

        Returns
        -------
        set of int or None
            Ids (a superset of the changed ones), or None when unknown (a review begun
            by an older version without stored diffs).
        """
        self._boxes()
        return None if self._touched is None else set(self._touched)

    def _obj(self, nid: int, *, auto: bool = False
             ) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Return (bounding slices, mask within them) of a neuron, or None if absent."""
        nid = int(nid)
        if nid <= 0:
            return None
        if auto:
            if "neurons" not in self.auto_labels:
                return None
            index, lab = self._auto_boxes(), self._auto_raw()
        else:
            index, lab = self._boxes(), self.labels["neurons"]
        b = index.get(nid)
        if b is None:
            return None
        sl = (slice(b[0], b[2]), slice(b[1], b[3]))
        m = np.asarray(lab[sl]) == nid
        if not m.any():
            index.exact.pop(nid, None)
            return None
        return sl, m

    def _prepare_px(self, old: np.ndarray, new: np.ndarray) -> None:
        """Make the boxes of the labels a write touches exact (before it happens)."""
        ids = np.unique(np.concatenate([np.ravel(old), np.ravel(new)]).astype(np.int64))
        self._boxes().ensure(int(i) for i in ids if i > 0)

    def _note_px(self, idx: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        """Record label pixels written (flat indices, values before and after)."""
        idx = np.asarray(idx, np.int64)
        old = np.asarray(old, np.int32)
        new = np.asarray(new, np.int32)
        self._pending_px.append((idx, old, new))
        self._update_boxes(idx, old, new)

    def _update_boxes(self, idx: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        if self._index is None or not idx.size:
            return
        index = self._index
        w = self.labels["neurons"].shape[1]
        for v, b in pixel_boxes(idx, np.zeros_like(new), new, w).items():
            index.grow(v, b)
        for v in np.unique(old):
            if int(v) > 0:
                index.drop_if_gone(int(v))
        if self._touched is not None:
            self._touched |= {int(v) for v in np.unique(np.concatenate([old, new])) if v > 0}

    def _write_px(self, sl: tuple[slice, slice], mask: np.ndarray, value: Any) -> None:
        """Write ``value`` (scalar or one per True pixel) into ``labels[sl][mask]``."""
        lab = self.labels["neurons"]
        sub = lab[sl]
        old = sub[mask].copy()
        new = np.broadcast_to(np.asarray(value, np.int32), old.shape).copy()
        self._prepare_px(old, new)
        sub[mask] = new
        ys, xs = np.nonzero(mask)
        idx = (ys.astype(np.int64) + sl[0].start) * lab.shape[1] + xs + sl[1].start
        self._note_px(idx, old, new)

    def _take_pending(self) -> dict[str, tuple]:
        idx, old, new = combine_pixels(self._pending_px)
        self._pending_px = []
        if not idx.size:
            return {}
        w = self.labels["neurons"].shape[1]
        ys, xs = np.divmod(idx, w)
        self._last_box = (slice(int(ys.min()), int(ys.max()) + 1),
                          slice(int(xs.min()), int(xs.max()) + 1))
        self._last_px = (idx, new)
        return {"neurons": (idx, old, new)}

    def _record_edit(self, seq: int, kind: str) -> dict:
        """Store the edit being committed as a diff; return the audit's ``diff`` entry."""
        pixels = self._take_pending() if "neurons" in self.labels else {}
        if not pixels:
            self._last_box = None
            self._last_px = None
        now = small_state(self)
        before, after = state_diff(self._snap, now)
        self.last_edit_ids = _touched_ids(pixels, before, after)
        self._snap = now
        self._history.save_edit(seq, kind, pixels, before, after)
        return {"edit": int(seq), "direction": "do",
                "file": f"{HISTORY}/{self._history.path(seq).name}",
                "n_pixels": int(pixels["neurons"][0].size) if pixels else 0}

    # ------------------------------------------------------------ undo / redo
    @property
    def can_undo(self) -> bool:
        """Whether there is an edit to undo."""
        return bool(self._history.undo_stack)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone edit to redo."""
        return bool(self._history.redo_stack)

    @property
    def last_edit_pixels(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Flat indices and current values of the pixels the last edit/undo/redo wrote."""
        return self._last_px

    @property
    def last_edit_box(self) -> tuple[slice, slice] | None:
        """Bounding slices of the label pixels the last edit, undo or redo changed."""
        return self._last_box

    def _step(self, undo: bool) -> dict:
        from ._session import ReviewError

        stack = self._history.undo_stack if undo else self._history.redo_stack
        if not stack:
            raise ReviewError("nothing to undo" if undo else "nothing to redo")
        self.check_fresh()
        seq = stack[-1]
        meta, pixels = self._history.load(seq)
        if pixels:
            self._ensure_writable()
            for name, (idx, old, new) in pixels.items():
                cur = self.labels[name].reshape(-1)[np.asarray(idx, np.int64)]
                if not np.array_equal(cur, new if undo else old):
                    raise ReviewError(f"edit {seq} does not match the current labels; "
                                      "it cannot be " + ("undone" if undo else "redone"))
            idx, old, new = pixels["neurons"]
            self._prepare_px(old, new)
            boxes = apply_pixels(self.labels, pixels, undo=undo)
            self._update_boxes(np.asarray(idx, np.int64), new if undo else old,
                               old if undo else new)
            self._last_box = boxes.get("neurons")
            self._last_px = (np.asarray(idx, np.int64), np.asarray(old if undo else new))
        else:
            self._last_box = None
            self._last_px = None
        state = meta["before"] if undo else meta["after"]
        self.last_edit_ids = _touched_ids(pixels, meta["before"], meta["after"])
        apply_state(self, state)
        stack.pop()
        (self._history.redo_stack if undo else self._history.undo_stack).append(seq)
        self._history.save_stacks()
        self._pending_px = []
        self._snap = small_state(self)
        kind = "undo" if undo else "redo"
        return self._commit(kind, {"edit": int(seq), "edit_kind": meta["kind"]},
                            None, {"restored": sorted(state)},
                            labels=bool(pixels), crossings="crossings" in state
                            or "excluded_regions" in state,
                            polylines="polylines" in state, record=False,
                            diff={"edit": int(seq), "direction": "undo" if undo else "do",
                                  "file": f"{HISTORY}/{self._history.path(seq).name}"})

    def undo(self) -> dict:
        """Undo the last edit exactly (labels and state); audited, saved at once.

        Returns
        -------
        dict
            The audit record (``params["edit"]``: the edit undone).

        Raises
        ------
        ReviewError
            Nothing to undo.
        """
        return self._step(True)

    def redo(self) -> dict:
        """Redo the last undone edit exactly; audited, saved at once.

        Returns
        -------
        dict
            The audit record.

        Raises
        ------
        ReviewError
            Nothing to redo (a new edit after an undo clears the redo stack).
        """
        return self._step(False)

    def restore_automatic(self, neuron_id: int) -> dict:
        """Restore one neuron as the automatic result had it (pixels, call, exclusion).

        Pixels of the automatic neuron get its id back; pixels that carry the id now but
        did not in the automatic result become background. The reviewer's call and
        exclusion of the id are dropped. Undoable like any edit.

        Parameters
        ----------
        neuron_id : int
            Neuron label (present now or in the automatic result).

        Returns
        -------
        dict
            The audit record.
        """
        from ._session import ReviewError

        nid = int(neuron_id)
        cur, aut = self._obj(nid), self._obj(nid, auto=True)
        if cur is None and aut is None:
            raise ReviewError(f"no neuron {nid} now or in the automatic result")
        boxes = [o[0] for o in (cur, aut) if o is not None]
        sl = (slice(min(b[0].start for b in boxes), max(b[0].stop for b in boxes)),
              slice(min(b[1].start for b in boxes), max(b[1].stop for b in boxes)))
        self._ensure_writable()
        sub = self.labels["neurons"][sl]
        sub_auto = (np.asarray(self._auto_raw()[sl]) if aut is not None
                    else np.zeros_like(sub))
        target = np.where(sub_auto == nid, nid, np.where(sub == nid, 0, sub))
        changed = target != sub
        before = {"area_um2": self._area(nid) if cur is not None else 0.0,
                  "igg_positive": self.calls.get(nid), "excluded": nid in self.excluded}
        if changed.any():
            self._write_px(sl, changed, target[changed])
        dropped = self._drop_overrides([nid])
        return self._commit("restore_automatic", {"neuron_id": nid}, before,
                            {"area_um2": self._area(nid) if aut is not None else 0.0,
                             "dropped_overrides": dropped}, labels=bool(changed.any()))
