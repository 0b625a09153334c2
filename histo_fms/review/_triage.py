"""The object table and triage of a DRG review (no Qt): rows, reviewed marks, order.

The napari plugin's object table shows :func:`object_table`; after an edit it asks
:func:`object_rows` for the touched neurons only. "Reviewed" marks (neurons the
reviewer has looked at) are kept in ``OUT/STEM/reviewed/visited.json``; a neuron the
reviewer edited counts as reviewed too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..io import write_json

VISITED = "visited.json"
#: Columns of the object table, in display order.
OBJECT_COLUMNS = ["neuron_id", "call", "call_source", "ring_igg", "area_um2", "diameter_um",
                  "size_class", "touches_border", "excluded", "reviewed", "status", "y_um",
                  "x_um"]


def reviewed_ids(session: Any) -> set[int]:
    """Return the neurons marked reviewed (looked at, or edited).

    Parameters
    ----------
    session : ReviewSession
        A DRG session.

    Returns
    -------
    set of int
    """
    marks = getattr(session, "_visited", None)
    if marks is None:
        p = session.dir / VISITED
        marks = set()
        if p.is_file():
            try:
                marks = {int(i) for i in json.loads(p.read_text(encoding="utf-8"))["ids"]}
            except (OSError, ValueError, KeyError) as exc:
                raise ValueError(f"{p}: unreadable reviewed marks ({exc})") from exc
        session._visited = marks
    return marks | set(session.calls) | set(session.excluded)


def mark_reviewed(session: Any, ids: Iterable[int]) -> None:
    """Mark neurons as reviewed (saved atomically; not an edit of the results).

    Parameters
    ----------
    session : ReviewSession
        A DRG session.
    ids : iterable of int
        Neuron labels.
    """
    reviewed_ids(session)
    new = {int(i) for i in ids if int(i) > 0} - session._visited
    if not new:
        return
    session._visited |= new
    session.dir.mkdir(parents=True, exist_ok=True)
    write_json({"ids": sorted(session._visited)}, session.dir / VISITED)


def _threshold(session: Any) -> float | None:
    thr = (session.run.get("threshold") or {}).get("ring_igg")
    try:
        thr = float(thr)
    except (TypeError, ValueError):
        return None
    return thr if np.isfinite(thr) and thr > 0 else None


def object_rows(session: Any, ids: Iterable[int]) -> pd.DataFrame:
    """Return the object-table rows of some neurons (current state).

    Parameters
    ----------
    session : ReviewSession
        A DRG session.
    ids : iterable of int
        Neuron labels (current, or deleted automatic ones: ``status = "deleted"``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OBJECT_COLUMNS`, one row per id.
    """
    ids = [int(i) for i in ids if int(i) > 0]
    t = _by_id(session, "table")
    at = _by_id(session, "auto_table")
    rev = reviewed_ids(session)
    px = session.pixel_size_um
    cols: dict[str, list] = {c: [] for c in OBJECT_COLUMNS}
    measured = ("ring_igg", "area_um2", "diameter_um", "size_class", "y_um", "x_um",
                "touches_border")
    for nid in ids:
        obj = session._obj(nid)
        src = t if t is not None and nid in t.index else (
            at if at is not None and nid in at.index else None)
        r: dict[str, Any] = dict.fromkeys(measured, np.nan)
        if src is not None:
            row = src.loc[nid]
            for c in measured:
                if c in row.index:
                    r[c] = row[c]
        r["neuron_id"] = nid
        if obj is None:
            r["status"] = "deleted"
            r["call"] = ""
        else:
            sl, m = obj
            area = float(m.sum()) * px ** 2
            if src is None or abs(_num(r["area_um2"]) - area) > 1e-6 * max(area, 1):
                r["status"] = "edited"
                r["area_um2"] = area
                r["diameter_um"] = float(np.sqrt(4 * area / np.pi))
                ys, xs = np.nonzero(m)
                r["y_um"] = (ys.mean() + sl[0].start) * px
                r["x_um"] = (xs.mean() + sl[1].start) * px
            else:
                r["status"] = ""
            call = session.call(nid)
            r["call"] = "?" if call is None else ("IgG+" if call else "IgG−")
        r["call_source"] = "reviewer" if nid in session.calls else "threshold"
        r["excluded"] = nid in session.excluded
        r["touches_border"] = bool(r["touches_border"]) if not pd.isna(
            r["touches_border"]) else False
        r["reviewed"] = nid in rev
        for c in OBJECT_COLUMNS:
            cols[c].append(r[c])
    # typed as object_table's columns (a row replaces a row of it, value for value)
    out: dict[str, np.ndarray] = {"neuron_id": np.asarray(cols["neuron_id"], np.int64)}
    for c in OBJECT_COLUMNS[1:]:
        v = cols[c]
        if c in ("call", "call_source", "size_class", "status"):
            a = np.empty(len(v), object)
            a[:] = ["" if x is None or (not isinstance(x, str) and pd.isna(x)) else x
                    for x in v]
        elif c in ("touches_border", "excluded", "reviewed"):
            a = np.asarray([bool(x) for x in v], bool)
        else:
            a = np.asarray([_num(x) for x in v], float)
        out[c] = a
    # (the text columns are object arrays without missing values already: as _typed;
    # given as object Series so pandas does not infer a string dtype for them)
    text = ("call", "call_source", "size_class", "status")
    return pd.DataFrame({c: pd.Series(out[c], dtype=object) if c in text else out[c]
                         for c in OBJECT_COLUMNS}, columns=OBJECT_COLUMNS)


def _num(v: Any) -> float:
    """Return a float, NaN when not a number (as ``pd.to_numeric(errors="coerce")``)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _by_id(session: Any, name: str) -> pd.DataFrame | None:
    """Return a session's table indexed by neuron id (cached while it is the same)."""
    t = getattr(session, name)
    cache = session.__dict__.setdefault("_by_id_cache", {})
    hit = cache.get(name)
    if hit is not None and hit[0] is t:
        return hit[1]
    out = t.set_index("neuron_id", drop=False) if len(t) else None
    cache[name] = (t, out)
    return out


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("call", "call_source", "size_class", "status"):
        df[c] = df[c].astype(object).where(df[c].notna(), "")
    for c in ("ring_igg", "area_um2", "diameter_um", "y_um", "x_um"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    for c in ("touches_border", "excluded", "reviewed"):
        df[c] = df[c].astype(bool)
    df["neuron_id"] = df["neuron_id"].astype(np.int64)
    return df


def object_table(session: Any, *, with_deleted: bool = True) -> pd.DataFrame:
    """Return the object table of a DRG review: every current neuron (and deleted ones).

    Parameters
    ----------
    session : ReviewSession
        A DRG session.
    with_deleted : bool
        Also list automatic neurons the reviewer deleted (``status = "deleted"``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OBJECT_COLUMNS`, sorted by ``neuron_id``.
    """
    touched = session.touched_ids() if hasattr(session, "touched_ids") else None
    if touched is None:  # which neurons changed is unknown: count every pixel
        lab = np.asarray(session.neurons)
        counts = np.bincount(lab.ravel()) if lab.size else np.zeros(1, np.int64)
        present = np.flatnonzero(counts)
        present = present[present > 0]
        ids = set(int(i) for i in present)
    else:  # only the neurons the edits touched are looked at; the others are as measured
        ids = {int(i) for i in session.neuron_ids()}
    if with_deleted and len(session.auto_table):
        ids |= {int(i) for i in session.auto_table["neuron_id"]}
    ids = np.array(sorted(ids), np.int64)
    # measured rows: the current table, else the automatic one
    src = pd.concat([session.table, session.auto_table.loc[
        ~session.auto_table["neuron_id"].isin(session.table["neuron_id"])]]
        if len(session.table) else [session.auto_table], ignore_index=True)
    src = src.drop_duplicates("neuron_id").set_index("neuron_id")
    df = pd.DataFrame({"neuron_id": ids})
    for c in ("ring_igg", "area_um2", "diameter_um", "size_class", "y_um", "x_um",
              "touches_border"):
        df[c] = src[c].reindex(ids).to_numpy() if c in src.columns else np.nan
    measured = pd.to_numeric(df["area_um2"], errors="coerce").to_numpy(float)
    if touched is None:
        area = np.where(ids < counts.size, counts[np.minimum(ids, counts.size - 1)], 0) * (
            session.pixel_size_um ** 2)
    else:
        # untouched neurons have their automatic pixels: the automatic table's areas
        auto_area = session.auto_table.set_index("neuron_id")["area_um2"].reindex(ids)
        area = np.where(np.isin(ids, list(session.neuron_ids())),
                        pd.to_numeric(auto_area, errors="coerce").to_numpy(float), 0.0)
        for k in np.flatnonzero(np.isin(ids, list(touched))):
            obj = session._obj(int(ids[k]))
            area[k] = float(obj[1].sum()) * session.pixel_size_um ** 2 if obj else 0.0
        area = np.nan_to_num(area, nan=0.0)
    alive = area > 0
    same = alive & np.isfinite(measured) & (np.abs(measured - area) <= 1e-6 * np.maximum(area, 1))
    rev = reviewed_ids(session)
    df["status"] = np.where(alive, "", "deleted")
    col = "igg_positive_auto" if "igg_positive_auto" in src.columns else "igg_positive"
    auto_call = (src[col].reindex(ids) if col in src.columns
                 else pd.Series([pd.NA] * len(ids), index=ids))
    calls = []
    for nid, a, c in zip(ids, alive, auto_call.to_numpy(object), strict=True):
        c = session.calls.get(int(nid), None if pd.isna(c) else bool(c))
        calls.append("" if not a else ("?" if c is None else ("IgG+" if c else "IgG−")))
    df["call"] = calls
    df["call_source"] = np.where(np.isin(ids, list(session.calls)), "reviewer", "threshold")
    df["excluded"] = np.isin(ids, list(session.excluded))
    df["touches_border"] = df["touches_border"].fillna(False).astype(bool)
    df["reviewed"] = np.isin(ids, list(rev))
    df = _typed(df[OBJECT_COLUMNS].copy())
    redo = ids[alive & ~same]
    if redo.size:  # edited neurons: measured from their pixels
        rows = object_rows(session, redo).set_index("neuron_id")
        df = df.set_index("neuron_id")
        df.loc[rows.index, rows.columns] = rows
        df = df.reset_index()[OBJECT_COLUMNS]
    return df


def threshold_distance(table: pd.DataFrame, threshold: float | None) -> np.ndarray:
    """Return ``|log ring_igg - log threshold|`` per row (inf when unknown).

    Parameters
    ----------
    table : pandas.DataFrame
        With a ``ring_igg`` column.
    threshold : float or None
        The run's ring IgG threshold.

    Returns
    -------
    ndarray of float
    """
    v = pd.to_numeric(table["ring_igg"], errors="coerce").to_numpy(float)
    if threshold is None:
        return np.full(len(v), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(np.log(v) - np.log(float(threshold)))
    return np.where(np.isfinite(d), d, np.inf)


def next_neuron(session: Any, table: pd.DataFrame, *, by: str = "threshold",
                current: int | None = None) -> int | None:
    """Return the next neuron to look at.

    Parameters
    ----------
    session : ReviewSession
        A DRG session.
    table : pandas.DataFrame
        The object table (:func:`object_table`).
    by : {"threshold", "unreviewed"}
        ``"threshold"``: the unreviewed neuron whose ring IgG is closest to the
        threshold (log scale); ``"unreviewed"``: the next unreviewed neuron by id
        after ``current``.
    current : int, optional
        The neuron shown now (never returned).

    Returns
    -------
    int or None
        A neuron id, or None when every neuron is reviewed.
    """
    live = table.loc[_alive(table)]
    rev = reviewed_ids(session)
    ids = live["neuron_id"].to_numpy(np.int64)
    todo = ~np.isin(ids, list(rev | ({int(current)} if current else set())))
    if not todo.any():
        return None
    if by == "threshold":
        d = threshold_distance(live, _threshold(session))
        d = np.where(todo, d, np.inf)
        if np.isfinite(d).any():
            return int(ids[int(np.argmin(d))])
        by = "unreviewed"
    if by != "unreviewed":
        raise ValueError(f"unknown triage order {by!r}; use 'threshold' or 'unreviewed'")
    cand = np.sort(ids[todo])
    after = cand[cand > (current or 0)]
    return int(after[0] if after.size else cand[0])


def progress(session: Any, table: pd.DataFrame) -> tuple[int, int]:
    """Return (reviewed, total) over the current neurons."""
    live = table["neuron_id"].to_numpy(np.int64)[_alive(table)]
    return int(np.isin(live, list(reviewed_ids(session))).sum()), int(live.size)


def _alive(table: pd.DataFrame) -> np.ndarray:
    """Rows of an object table that are not deleted (a cached mask when the table has one)."""
    m = table.attrs.get("alive")
    if isinstance(m, np.ndarray) and m.shape == (len(table),):
        return m
    return (table["status"] != "deleted").to_numpy()
