"""Recompute re-measures only what the edits changed: the edited neurons and their neighbours.

A review's measurement is a table and ring labels that equal a whole-section
:func:`histo_fms.drg.measure_drg` of some labels (the automatic ones, or those of the
last recompute: the *base*). The edits since then are stored as exact pixel diffs
(:mod:`._history`), so the pixels that changed are known. A neuron's row depends only
on the labels within :func:`histo_fms.drg._context.measurement_radius_px` of its pixels
(once the section's :class:`~histo_fms.drg.DrgContext` is fixed), so only the neurons
an edit changed and those within that radius of its pixels are re-measured, on crops
(:func:`histo_fms.drg._local.measure_neurons_crop`); every other row and ring pixel is
the base's. The result equals a whole-section re-measure exactly.

The context (image-wide statistics) depends on the image only: it is computed once
from the lazily read image (:func:`histo_fms.parallel.compute_context_tiled`, bounded
memory) and kept in ``OUT/STEM/reviewed/context.json``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from ..drg import DrgContext, DrgParams
from ..drg._context import measurement_radius_px
from ..drg._local import grow_box, is_local, measure_neurons_crop
from ..drg._measure import TABLE_COLUMNS
from ..io import write_json
from ._index import pixel_boxes

CONTEXT = "context.json"
#: above this fraction of the section's area in crops (summed), re-measure the whole section
MAX_LOCAL_FRACTION = 1.0


def _merge_boxes(boxes: list[list[int]], r: int) -> list[list[int]]:
    """Merge boxes whose ``r``-grown versions overlap (until none do)."""
    out = [list(b) for b in boxes]
    changed = True
    while changed and len(out) > 1:
        changed = False
        res: list[list[int]] = []
        for b in out:
            for m in res:
                if (b[0] - r < m[2] + r and m[0] - r < b[2] + r
                        and b[1] - r < m[3] + r and m[1] - r < b[3] + r):
                    m[:] = [min(b[0], m[0]), min(b[1], m[1]), max(b[2], m[2]), max(b[3], m[3])]
                    changed = True
                    break
            else:
                res.append(b)
        out = res
    return out


def dirty_pixels(session: Any) -> tuple[list[tuple], bool] | None:
    """Return the label diffs since the base measurement, and whether it is a recompute.

    Returns
    -------
    (list of (idx, old, new), bool) or None
        The pixel diffs (in order) of every edit, undo and redo after the last
        recompute (all of them when there was none); None when unknown (an audit
        record without a stored diff).
    """
    recs = session.audit.read()
    last = None
    for i, r in enumerate(recs):
        if r.get("kind") == "recompute":
            last = i
    after = recs if last is None else recs[last + 1:]
    if last is not None:
        # edits made while that recompute ran are not in its measurement
        upto = (recs[last].get("params") or {}).get("through_edit")
        if upto is not None:
            after = [r for r in recs[:last] if int(r.get("seq", 0)) > int(upto)
                     and r.get("kind") != "recompute"] + after
    out = []
    for r in after:
        if r.get("kind") == "recompute":
            continue
        d = r.get("diff")
        if not d:
            return None
        if d.get("n_pixels") == 0:
            continue
        _, pixels = session._history.load(int(d["edit"]))
        if "neurons" in pixels and np.size(pixels["neurons"][0]):
            out.append(pixels["neurons"])
    return out, last is not None


def context_key(session: Any, params: DrgParams) -> str:
    """Return a key of what the context depends on: the image file and the parameters."""
    from ._results import file_entry, image_path

    entry = file_entry(session.run, session.stem)
    path = image_path(session.results_dir, entry)
    st = path.stat() if path is not None and path.exists() else None
    key = {"image": str(path), "size": st.st_size if st else None,
           "mtime_ns": st.st_mtime_ns if st else None,
           "params": json.loads(json.dumps(asdict(params), default=str)),
           "pixel_size_um": float(session.pixel_size_um)}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def section_context(session: Any, channels: Mapping[str, Any], params: DrgParams
                    ) -> DrgContext:
    """Return the section's context (cached in memory and in ``reviewed/context.json``)."""
    key = context_key(session, params)
    cached = getattr(session, "_context_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    path = session.dir / CONTEXT
    ctx = None
    if path.is_file():
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("key") == key:
                ctx = DrgContext(**d["context"])
        except (OSError, ValueError, TypeError, KeyError):
            ctx = None
    if ctx is None:
        from ..parallel import compute_context_tiled

        ctx = compute_context_tiled(channels, pixel_size_um=session.pixel_size_um,
                                    params=params, tile_px=4096, scheduler="threads")
        session.dir.mkdir(parents=True, exist_ok=True)
        write_json({"key": key, "context": asdict(ctx)}, path)
    session._context_cache = (key, ctx)
    return ctx


def plan_local(session: Any, params: DrgParams) -> dict | None:
    """Plan which neurons to re-measure, in crops; None: re-measure the whole section.

    Returns
    -------
    dict or None
        ``groups``: list of {id: box} of the neurons to re-measure together;
        ``gone``: ids of the base table no longer in the labels; ``base_recompute``:
        whether the base is the last recompute (else the automatic result).
    """
    if not is_local(params):
        return None
    got = dirty_pixels(session)
    if got is None:
        return None
    diffs, base_recompute = got
    base = session.table if base_recompute else session.auto_table
    if base_recompute and not (session.dir / "neurons.csv").is_file():
        return None  # the last recompute's table is gone
    if any(c not in base for c in TABLE_COLUMNS):
        return None  # a table of an older version: re-measure everything
    if not base_recompute:
        from .. import __version__

        if session.run.get("histo_fms_version") not in (None, __version__):
            return None  # measured by another version: its rows are not this one's
    lab = session.labels["neurons"]
    shape = lab.shape
    w = shape[1]
    px = float(session.pixel_size_um)
    m = measurement_radius_px(params, px)
    boxes, changed = [], set()
    for idx, old, new in diffs:
        pb = pixel_boxes(idx, np.zeros_like(old), np.ones_like(new), w)
        boxes.append(pb[1])
        changed |= {int(v) for v in np.unique(np.concatenate([old, new])) if v > 0}
    index = session._boxes()
    gone = {i for i in changed if index.get(i) is None}
    groups: list[dict[int, tuple]] = []
    for b in _merge_boxes(boxes, m):
        win = grow_box(tuple(b), m, shape)
        ids = {int(v) for v in np.unique(np.asarray(lab[win[0]:win[2], win[1]:win[3]]))
               if v > 0}
        ids |= {i for i in changed if i not in gone and _inside(index.get(i), b, m)}
        sel = {}
        for i in ids:
            bx = index.get(i)
            if bx is not None:
                sel[i] = tuple(int(v) for v in bx)
        if sel:
            groups.append(sel)
    # every changed neuron still present is measured (one reaching far beyond its edit
    # on its own), then groups whose crops overlap are measured together when that is
    # cheaper than apart
    measured = set().union(*groups) if groups else set()
    groups += [{i: tuple(int(v) for v in index.get(i))} for i in changed - gone - measured]
    groups = _merge_groups(groups, m, shape)
    area = sum(_crop_area(g, m, shape) for g in groups)
    if area > MAX_LOCAL_FRACTION * shape[0] * shape[1]:
        return None
    return {"groups": groups, "gone": gone, "base_recompute": base_recompute}


def _crop_box(group: Mapping[int, tuple], m: int, shape: tuple[int, int]) -> tuple:
    v = list(group.values())
    u = (min(b[0] for b in v), min(b[1] for b in v), max(b[2] for b in v), max(b[3] for b in v))
    return grow_box(u, m, shape)


def _crop_area(group: Mapping[int, tuple], m: int, shape: tuple[int, int]) -> int:
    g = _crop_box(group, m, shape)
    return (g[2] - g[0]) * (g[3] - g[1])


def _merge_groups(groups: list[dict], m: int, shape: tuple[int, int]) -> list[dict]:
    """Merge groups whose joint crop is no larger than their two crops (until none)."""
    groups = [dict(g) for g in groups if g]
    merged = True
    while merged and len(groups) > 1:
        merged = False
        areas = [_crop_area(g, m, shape) for g in groups]
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                both = {**groups[i], **groups[j]}
                if _crop_area(both, m, shape) <= areas[i] + areas[j]:
                    groups[i] = both
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return groups


def _inside(bx, b, m) -> bool:
    """Whether a neuron box meets the box ``b`` grown by ``m``."""
    if bx is None:
        return False
    return (bx[0] < b[2] + m and b[0] - m < bx[2] and bx[1] < b[3] + m and b[1] - m < bx[3])


def remeasure_local(session: Any, params: DrgParams, channels: Mapping[str, Any],
                    plan: dict) -> tuple[pd.DataFrame, list[tuple[tuple[slice, slice],
                                                                  np.ndarray]]]:
    """Re-measure the planned neurons; return the new table and the ring patches.

    Returns
    -------
    table : pandas.DataFrame
        The whole section's measurement (columns ``TABLE_COLUMNS``), sorted by id.
    patches : list of (slices, clear, mine, values)
        Per crop: the base ring pixels of re-measured or removed neurons (to clear), and
        the pixels of the re-measured neurons' new rings with their values (to set
        after every crop's clearing: crops may overlap).
    """
    ctx = section_context(session, channels, params)
    base = session.table if plan["base_recompute"] else session.auto_table
    base = base[TABLE_COLUMNS]
    lab = session.labels["neurons"]
    rings = session.labels["rings"]
    new_rows, patches = [], []
    redo = set(plan["gone"])
    for g in plan["groups"]:
        redo |= set(g)
    redo_arr = np.array(sorted(redo), np.int64)
    for g in plan["groups"]:
        tab, sl, crop_rings = measure_neurons_crop(channels, lab, g,
                                                   pixel_size_um=session.pixel_size_um,
                                                   params=params, context=ctx)
        new_rows.append(tab)
        old = np.asarray(rings[sl]).astype(np.int32)
        ids = np.array(sorted(g), np.int64)
        mine = np.isin(crop_rings, ids)
        patches.append((sl, np.isin(old, redo_arr), mine, crop_rings[mine].astype(np.int32)))
    keep = base[~base["neuron_id"].isin(redo_arr)]
    parts = [keep] + [t for t in new_rows if len(t)]
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else keep.copy()
    # a neuron measured by two groups (it meets both) has the same row in each
    table = table.drop_duplicates("neuron_id", keep="last")
    table = table.sort_values("neuron_id", kind="stable").reset_index(drop=True)
    return table, patches


def write_ring_patches(session: Any, patches: list) -> None:
    """Apply ring patches (clear, then set) and save only the chunks they touch."""
    import zarr

    path = session.dir / "labels.zarr"
    rings = session.labels["rings"]
    ds = getattr(session, "_rings_ds", None)
    if ds is None or rings is not ds:
        ds = zarr.open_group(str(path), mode="r+")["labels/rings/0"]
    targets = [ds]
    if isinstance(rings, np.ndarray):
        if not rings.flags.writeable:
            rings = session.labels["rings"] = rings.copy()
        targets.append(rings)
    for t in targets:
        for phase in (0, 1):
            for sl, clear, mine, vals in patches:
                region = np.asarray(t[sl]).copy()
                if phase == 0:
                    region[clear] = 0
                else:
                    region[mine] = vals
                t[sl] = region
    if not isinstance(rings, np.ndarray):
        # the reviewed store from now on (one object: a viewer showing it stays current)
        session.labels["rings"] = session._rings_ds = ds
