"""Tiled DRG measurement whose table and labels equal an untiled run's.

Three steps, each in bounded memory (about one outer tile of all channels per task):

1. **Context**: the section's image-wide statistics (:class:`histo_fms.drg.DrgContext`)
   from the whole lazy image in two reads, one per dependent stage: (a) quantiles and
   maxima of the smoothed channels (dark levels, medians, maxima, neuron spread),
   (b) the lipofuscin brightness quantiles of the flat-fielded channels, which need
   (a). Quantiles are those of the values quantised to 11 mantissa bits
   (:mod:`histo_fms._numerics._quantiles`): each tile sends, per channel, a histogram
   of the 2**20 quantised keys (compact: the range present) and its exact maximum,
   tree-summed; so the numbers are bit-identical to :func:`histo_fms.drg.compute_context`
   on the whole array. Read (a) also gives each raw channel's detector clipping
   (:func:`context_and_clipping_tiled`: per tile core
   :func:`histo_fms.io._clipping.clip_block`, merged), equal to
   :func:`histo_fms.io._clipping.clipped_fraction` of the whole channel, and its grey
   levels (:func:`histo_fms.io._levels.level_block`, merged) as an untiled run counts
   them.
2. **Tiles**, exact (``check_margin=True``, the default) in two passes, so that no
   tile pays the sum of the segmentation's and the measurement's context:

   a. *segment*: each tile runs the segmentation half of
      :func:`histo_fms.drg.measure_drg` (:func:`histo_fms.drg._measure.segment_drg`:
      lipofuscin mask and labels) on its outer region (core +
      :func:`histo_fms.drg._context.exact_tile_margins_px` ``[0]``; origins on the block
      grid of every background map, so every local map equals the whole image's) and
      writes its core's labels, with provisional ids (1 + the section flat index of
      each object's first pixel: unique without coordination), and lipofuscin mask.
      A tile checks that every cluster of touching objects meeting its core lies
      where its segmentation is exact; if not, it is run again with the margin it
      lacked (twice that, and at least half its margin more);
   b. *measure*: each tile reads the section's labels and lipofuscin mask around
      its core (exact everywhere now) with the measurement margin only
      (``exact_tile_margins_px(...)[1]``: the neuron's reach plus the measurement
      radius), renumbers them as its own segmentation would (raster order of first
      pixels), runs :func:`histo_fms.drg.measure_drg` with them, keeps the neurons
      whose first pixel lies in its core and writes its core's measured rings.

   With ``check_margin=False`` (fast tiles) each tile is segmented and measured in one
   task with the given margin, trusted.
3. **Canonical ids**: provisional ids are mapped to 1..n in raster order of the first
   pixels (the numbering the untiled path uses), chunk by chunk.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from .._numerics._background import smooth_for_stats
from .._numerics._noise import NOISE_QUANTILES, residual, signal_ratio
from .._numerics._quantiles import (
    KeyHistogram,
    add_histograms,
    histogram_quantiles,
    key_histogram,
)
from ..drg import DrgContext, DrgParams, measure_drg, required_margin_px
from ..drg._context import (
    DARK_QUANTILE,
    ROLES,
    SPREAD_QUANTILES,
    alignment_px,
    context_margins_px,
    exact_tile_margins_px,
    lipofuscin_roles,
    measurement_radius_px,
    object_reach_px,
    segmentation_radius_px,
    stats_from_quantiles,
)
from ..drg._lipofuscin import lipofuscin_flat
from ..drg._measure import TABLE_COLUMNS, segment_drg
from ..io._clipping import (
    ClipBlock,
    add_clip_blocks,
    clip_block,
    clipped_from_blocks,
    constant_from_blocks,
)
from ..io._levels import LevelBlock, add_level_blocks, grey_levels, level_block
from ._tiles import Tile, canonical_mapping, global_first_pixels, tile_grid

LABEL_NAMES = ("neurons", "rings")
#: provisional arrays of the two-pass exact run (besides the labels)
_EXTRA = ("lipofuscin",)


# ----------------------------------------------------------------------------- running

def _compute(tasks: Sequence[Any], client: Any, scheduler: str | None) -> list[Any]:
    """Compute dask delayed objects on a distributed client or a local scheduler."""
    import dask

    if not tasks:
        return []
    if client is not None:
        futures = client.compute(list(tasks))
        return client.gather(futures)
    return list(dask.compute(*tasks, scheduler=scheduler or "threads"))


def _tree_sum(items: list[Any], add: Callable) -> Any:
    import dask

    items = list(items)
    while len(items) > 1:
        nxt = [dask.delayed(add)(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


class _Region:
    """A region of a lazy channel, read inside the task that needs it.

    Passing the dask slice itself would make its chunks graph dependencies: whole
    chunks read, shipped between workers and held until every overlapping tile is
    done. The culled slice graph travels with the task instead and is computed there
    (synchronously, with dask's slice fusion: only the region's file tiles are read).
    """

    def __init__(self, arr: Any):
        import dask

        (self.arr,) = dask.optimize(arr)

    def load(self) -> np.ndarray:
        return np.asarray(self.arr.compute(scheduler="synchronous"))


def _load(x: Any) -> np.ndarray:
    return x.load() if isinstance(x, _Region) else np.asarray(x)


def _outer_arrays(channels: Mapping[str, Any], roles: Sequence[str], tile: Tile) -> list[Any]:
    ys, xs = tile.outer_slices
    return [_Region(channels[r][ys, xs]) for r in roles]


# ----------------------------------------------------------- one-pass histogram quantiles

#: a raw tile core's clipping and grey-level blocks
_RawBlocks = tuple[ClipBlock, LevelBlock]
#: per tile and role: key histogram, maximum, and the raw core's blocks (or None)
_TileStats = tuple[KeyHistogram, float, _RawBlocks | None]


def _add_stats(a: dict[str, _TileStats], b: dict[str, _TileStats]) -> dict[str, _TileStats]:
    """Merge per-tile (histogram, maximum, raw blocks) triples by channel role."""
    return {k: (add_histograms(a[k][0], b[k][0]), max(a[k][1], b[k][1]),
                None if a[k][2] is None else
                (add_clip_blocks(a[k][2][0], b[k][2][0]),
                 add_level_blocks(a[k][2][1], b[k][2][1])))
            for k in a}


def _tile_stats(v: np.ndarray, raw: _RawBlocks | None) -> _TileStats:
    return key_histogram(v), (float(v.max()) if v.size else -np.inf), raw


def _tiled_quantiles(values_fn: Callable[..., Iterator[tuple[str, np.ndarray,
                                                             _RawBlocks | None]]],
                     args_per_tile: list[tuple], qs: Mapping[str, Sequence[float]],
                     client: Any, scheduler: str | None
                     ) -> tuple[dict[str, dict[float, float]], dict[str, float],
                                dict[str, _RawBlocks]]:
    """Quantised quantiles and exact maxima of per-tile values, in one pass.

    Each task computes its values (``values_fn(*args)`` yields role, core values and
    the raw core's :func:`histo_fms.io._clipping.clip_block` and
    :func:`histo_fms.io._levels.level_block`, or None; one role at a time, so only
    one is held) and returns their key histograms and maxima; the tree-summed
    histograms give :func:`histo_fms._numerics._quantiles.quantised_quantiles` of all
    values exactly, the merged raw blocks (roles that gave them) each channel's
    clipping and grey levels.
    """
    import dask

    def part(*a):
        return {k: _tile_stats(v, clip) for k, v, clip in values_fn(*a)}

    parts = [dask.delayed(part)(*a) for a in args_per_tile]
    (total,) = _compute([_tree_sum(parts, _add_stats)], client, scheduler)
    quant = {k: dict(zip(qs[k], histogram_quantiles(total[k][0], qs[k]), strict=True))
             for k in qs}
    maxima = {k: float(total[k][1]) for k in qs}
    clips = {k: total[k][2] for k in qs if total[k][2] is not None}
    return quant, maxima, clips


def _core(a: np.ndarray, tile: Tile) -> np.ndarray:
    return a[tile.core_in_outer]


def compute_context_tiled(
    channels: Mapping[str, Any],
    *,
    pixel_size_um: float,
    params: DrgParams | None = None,
    dark_levels: Mapping[str, float] | None = None,
    tile_px: int = 2048,
    client: Any = None,
    scheduler: str | None = None,
) -> DrgContext:
    """Compute a section's :class:`histo_fms.drg.DrgContext` from tiles, exactly.

    As :func:`context_and_clipping_tiled` without the clipping (same parameters).
    """
    return _context_tiled(channels, pixel_size_um=pixel_size_um, params=params,
                          dark_levels=dark_levels, tile_px=tile_px, client=client,
                          scheduler=scheduler, clipping=False)[0]


def context_and_clipping_tiled(
    channels: Mapping[str, Any],
    *,
    pixel_size_um: float,
    params: DrgParams | None = None,
    dark_levels: Mapping[str, float] | None = None,
    tile_px: int = 2048,
    client: Any = None,
    scheduler: str | None = None,
) -> tuple[DrgContext, dict[str, tuple[int | None, float]], list[str],
           dict[str, tuple[int, list[float]] | None]]:
    """Compute a section's :class:`histo_fms.drg.DrgContext` and clipping from tiles.

    Gives bit-identical values to :func:`histo_fms.drg.compute_context` on the whole
    image, holding about one tile (plus a small margin) of the channels per task. The
    image is read twice: once for the smoothed channels' quantised quantiles and
    maxima, once (only when lipofuscin is rejected) for the lipofuscin thresholds.

    Parameters
    ----------
    channels : mapping of str to dask.array.Array
        Channel role -> lazy 2-D image (numpy arrays work too).
    pixel_size_um : float
        Pixel size in µm.
    params : DrgParams, optional
        Pipeline parameters.
    dark_levels : mapping, optional
        Known camera offsets by role.
    tile_px : int
        Core edge of the tiles (rounded up to the block grid).
    client : distributed.Client, optional
        Run on this cluster; else on dask's local ``scheduler`` (default threads).
    scheduler : str, optional
        Local dask scheduler (``"threads"``, ``"synchronous"``) when no client.

    Returns
    -------
    DrgContext
        The section's statistics.
    clipped : dict of str to (int or None, float)
        Per role, :func:`histo_fms.io._clipping.clipped_fraction` of the raw channel,
        from the first read's tile cores (no extra read of the image).
    constant : list of str
        The roles whose (integer) raw channel holds one value everywhere
        (:func:`histo_fms.io._clipping.constant_from_blocks`).
    levels : dict of str to (int, list of float) or None
        Per role, :func:`histo_fms.io._levels.grey_levels` of the raw channel.
    """
    return _context_tiled(channels, pixel_size_um=pixel_size_um, params=params,
                          dark_levels=dark_levels, tile_px=tile_px, client=client,
                          scheduler=scheduler, clipping=True)


def _context_tiled(channels: Mapping[str, Any], *, pixel_size_um: float,
                   params: DrgParams | None, dark_levels: Mapping[str, float] | None,
                   tile_px: int, client: Any, scheduler: str | None, clipping: bool
                   ) -> tuple[DrgContext, dict[str, tuple[int | None, float]], list[str],
                              dict[str, tuple[int, list[float]] | None]]:
    import dask.array as da

    p = params or DrgParams()
    px = float(pixel_size_um)
    given = dict(dark_levels or {})
    unknown = (set(given) | set(channels)) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown channel roles: {sorted(unknown)}")
    roles = [r for r in ROLES if r in channels]
    chans = {r: da.asarray(channels[r]) for r in roles}
    shape = tuple(chans[roles[0]].shape)
    a = alignment_px(p, px)
    tile_px = -(-int(tile_px) // a) * a
    m_stats, m_lipo = context_margins_px(p, px)
    m_lipo = -(-m_lipo // a) * a

    # read 1: quantised quantiles and exact maximum of the smoothed channels
    tiles = tile_grid(shape, tile_px, m_stats)

    def stats_values(tile, *arrs):
        for r, x in zip(roles, arrs, strict=True):
            raw = _load(x)
            core = _core(raw, tile)
            blocks = (clip_block(core), level_block(core)) if clipping else None
            smoothed = _core(smooth_for_stats(raw), tile)
            del raw  # not held while the tile's histogram is made
            if r in ("neuron", "sgc"):  # its pixel-scale residual: its noise scale
                res = residual(core, smoothed)
                del core
                yield f"{r}_residual", res, None
                del res
            else:
                del core
            yield r, smoothed, blocks

    qs = {r: [DARK_QUANTILE, *SPREAD_QUANTILES] for r in roles}
    for r in ("neuron", "sgc"):
        if r in roles:
            qs[f"{r}_residual"] = list(NOISE_QUANTILES)
    args = [(t, *_outer_arrays(chans, roles, t)) for t in tiles]
    quant, maxima, clips = _tiled_quantiles(stats_values, args, qs, client, scheduler)
    clipped = {r: clipped_from_blocks([clips[r][0]], chans[r].dtype) for r in clips}
    constant = [r for r in clips if constant_from_blocks([clips[r][0]])]
    levels = {r: grey_levels([clips[r][1]]) for r in clips}
    dark, med, mx, hi = {}, {}, {}, {}
    for r in roles:
        if min(shape) == 0:
            dark[r], med[r], mx[r], hi[r] = 0.0, 0.0, 0.0, 0.0
            continue
        dark[r], med[r], mx[r] = stats_from_quantiles(quant[r], maxima[r],
                                                      dark_level=given.get(r, p.dark_level))
        hi[r] = max(float(quant[r][0.995]) - dark[r], 0.0)
    spread = quant["neuron"][0.995] - quant["neuron"][0.5] if "neuron" in roles else 0.0
    sgc_spread = quant["sgc"][0.995] - quant["sgc"][0.5] if "sgc" in roles else 0.0
    ratios = {r: signal_ratio(s, tuple(quant[f"{r}_residual"][q] for q in NOISE_QUANTILES))
              for r, s in (("neuron", spread), ("sgc", sgc_spread))
              if r in roles and min(shape) > 0}

    # read 2: lipofuscin thresholds on the flat-fielded channels (need read 1)
    thresholds: dict[str, float] = {}
    lroles = lipofuscin_roles(roles, p)
    if lroles and min(shape) >= 3:
        ltiles = tile_grid(shape, tile_px, m_lipo)

        def flat_values(tile, *arrs):
            for r, x in zip(lroles, arrs, strict=True):
                flat, _, _ = lipofuscin_flat(_load(x), dark_level=dark[r], median=med[r],
                                             maximum=mx[r], pixel_size_um=px,
                                             max_area_um2=p.lipofuscin_max_area_um2,
                                             min_contrast=p.lipofuscin_min_contrast,
                                             spots=False)
                yield r, _core(flat, tile), None

        args = [(t, *_outer_arrays(chans, lroles, t)) for t in ltiles]
        lq, _, _ = _tiled_quantiles(flat_values, args,
                                    {r: [p.lipofuscin_quantile] for r in lroles},
                                    client, scheduler)
        thresholds = {r: lq[r][p.lipofuscin_quantile] for r in lroles}
    return DrgContext(dark_levels=dark, medians=med, maxima=mx,
                      lipofuscin_thresholds=thresholds, neuron_spread=float(spread),
                      sgc_spread=float(sgc_spread), highs=hi,
                      sgc_signal_ratio=ratios.get("sgc"),
                      neuron_signal_ratio=ratios.get("neuron")), clipped, constant, levels


# ------------------------------------------------------------------------ label store

def _labels_metadata(group: Any, name: str, pixel_size_um: float) -> None:
    from ..io._write import label_group_attrs

    group.attrs.update(label_group_attrs(name, pixel_size_um))


def _create_store(root_path: Path, shape: tuple[int, int], chunk: int,
                  pixel_size_um: float) -> None:
    """OME-Zarr labels layout of ``write_labels_zarr`` plus provisional-id arrays."""
    import zarr

    root = zarr.open_group(str(root_path), mode="w", zarr_format=2)
    root.attrs["labels"] = list(LABEL_NAMES)
    lab = root.create_group("labels")
    lab.attrs["labels"] = list(LABEL_NAMES)
    chunks = tuple(max(1, min(chunk, s)) for s in shape)
    tmp = root.create_group("_provisional")
    for name in LABEL_NAMES:
        g = lab.create_group(name)
        _labels_metadata(g, name, pixel_size_um)
        g.create_array("0", shape=shape, dtype=np.int32, chunks=chunks, fill_value=0)
        tmp.create_array(name, shape=shape, dtype=_provisional_dtype(shape), chunks=chunks,
                         fill_value=0)
    for name in _EXTRA:
        tmp.create_array(name, shape=shape, dtype=np.uint8, chunks=chunks, fill_value=0)


def _provisional_dtype(shape: tuple[int, int]) -> np.dtype:
    """int32 while 1 + every flat pixel index fits (images up to ~46k x 46k), else int64."""
    return np.dtype(np.int32 if int(shape[0]) * int(shape[1]) < 2**31 - 1 else np.int64)


def _write_core(root_path: str, name: str, tile: Tile, data: np.ndarray) -> None:
    import zarr

    arr = zarr.open_array(str(Path(root_path) / "_provisional" / name), mode="r+")
    arr[tile.core_slices] = data.astype(arr.dtype, copy=False)


def _read_outer(root_path: str, name: str, tile: Tile) -> np.ndarray:
    import zarr

    arr = zarr.open_array(str(Path(root_path) / "_provisional" / name), mode="r")
    return np.asarray(arr[tile.outer_slices])


def _relabel_chunk(root_path: str, name: str, sl: tuple[slice, slice],
                   sorted_first: np.ndarray) -> int:
    import zarr

    src = zarr.open_array(str(Path(root_path) / "_provisional" / name), mode="r")
    dst = zarr.open_array(str(Path(root_path) / "labels" / name / "0"), mode="r+")
    prov = np.asarray(src[sl]).astype(np.int64)
    out = np.zeros(prov.shape, np.int32)
    sel = prov > 0
    if sel.any() and sorted_first.size:
        f = prov[sel] - 1
        pos = np.clip(np.searchsorted(sorted_first, f), 0, sorted_first.size - 1)
        hit = sorted_first[pos] == f
        vals = np.where(hit, pos + 1, 0).astype(np.int32)
        out[sel] = vals
    dst[sl] = out
    return int(sel.sum())


# ------------------------------------------------------------------------------ tiles

def _exact_zone(tile: Tile, shape: tuple[int, int], r: int) -> tuple[int, int, int, int]:
    """Outer-region coordinates farther than ``r`` from non-image edges."""
    oy0, oy1, ox0, ox1 = tile.outer
    h, w = oy1 - oy0, ox1 - ox0
    return (0 if oy0 == 0 else r, h if oy1 == shape[0] else h - r,
            0 if ox0 == 0 else r, w if ox1 == shape[1] else w - r)


def _clusters_ok(foreground: np.ndarray | None, labels: np.ndarray, tile: Tile,
                 shape: tuple[int, int], seg_r: int, region_r: int) -> bool:
    """Whether all clusters near the core lie where segmentation is exact.

    The region is the core grown by ``region_r``; it must lie in the exact zone (the
    outer region less ``seg_r`` at non-image edges), and so must every cluster of
    foreground (grown by 5 px: the smoothed distance transform links them) that meets it.
    """
    return _margin_shortfall(foreground, labels, tile, shape, seg_r, region_r) == 0


def _margin_shortfall(foreground: np.ndarray | None, labels: np.ndarray, tile: Tile,
                      shape: tuple[int, int], seg_r: int, region_r: int) -> int:
    """How many pixels of margin a tile lacks for :func:`_clusters_ok` (0: none).

    The largest distance by which the core's neighbourhood, or a cluster meeting it,
    reaches beyond the exact zone on a side that is not an image edge.
    """
    ey0, ey1, ex0, ex1 = _exact_zone(tile, shape, seg_r)
    cy, cx = tile.core_in_outer
    h, w = labels.shape
    ry0, ry1 = max(0, cy.start - region_r), min(h, cy.stop + region_r)
    rx0, rx1 = max(0, cx.start - region_r), min(w, cx.stop + region_r)

    def short(y0: int, y1: int, x0: int, x1: int) -> int:
        return max(0, ey0 - y0, y1 - ey1, ex0 - x0, x1 - ex1)

    need = short(ry0, ry1, rx0, rx1)
    if need:
        return need
    fg = (labels > 0) if foreground is None else (foreground | (labels > 0))
    if not fg.any():
        return 0
    grown = ndi.binary_dilation(fg, structure=np.ones((11, 11), bool))
    comp, _ = ndi.label(grown)
    near = np.unique(comp[ry0:ry1, rx0:rx1])
    near = near[near > 0]
    if near.size == 0:
        return 0
    near_set = set(near.tolist())
    for k, sl in enumerate(ndi.find_objects(comp), start=1):
        if sl is None or k not in near_set:
            continue
        need = max(need, short(sl[0].start, sl[0].stop, sl[1].start, sl[1].stop))
    return need


def _measure_tile(tile: Tile, *arrays: np.ndarray, roles: Sequence[str],
                  shape: tuple[int, int], pixel_size_um: float, params: DrgParams,
                  context: DrgContext, store: str, seg_r: int, region_r: int,
                  check: bool) -> dict:
    """Measure one tile; write its core labels (provisional ids) when exact."""
    ch = {r: _load(a) for r, a in zip(roles, arrays, strict=True)}
    px = float(pixel_size_um)
    res = measure_drg(ch["neuron"], ch.get("igg"), pixel_size_um=px, sgc=ch.get("sgc"),
                      nuclei=ch.get("nuclei"), params=params, context=context)
    labels = res.neurons
    if check:
        short = _margin_shortfall(res.foreground, labels, tile, shape, seg_r, region_r)
        if short:
            return {"ok": False, "tile": tile, "short": short}
    oy0, _, ox0, _ = tile.outer
    ids, first = global_first_pixels(labels, (oy0, ox0), shape[1])
    # provisional ids: 1 + flat index of the first pixel (unique across tiles)
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.int64)
    lut[ids] = first + 1
    for name, lab in (("neurons", labels), ("rings", res.rings)):
        _write_core(store, name, tile, lut[lab[tile.core_in_outer]])
    return {"ok": True, "tile": tile,
            "table": _owned_rows(res.table, labels, lut, tile, shape, px)}


def _owned_rows(table: pd.DataFrame, labels: np.ndarray, lut: np.ndarray, tile: Tile,
                shape: tuple[int, int], px: float) -> pd.DataFrame:
    """Rows of the neurons whose first pixel lies in the core, in section coordinates.

    ``lut`` maps the tile's label ids to provisional ids (1 + the section flat index
    of the first pixel); the rows get that first pixel (``_first``), section
    coordinates and their border contact with the whole image.
    """
    oy0, oy1, ox0, ox1 = tile.outer
    cy0, cy1, cx0, cx1 = tile.core
    nid = table["neuron_id"].to_numpy()
    fy, fx = np.divmod(lut[nid] - 1, shape[1])
    own = (fy >= cy0) & (fy < cy1) & (fx >= cx0) & (fx < cx1) & (lut[nid] > 0)
    table = table[own].copy()
    table["_first"] = lut[table["neuron_id"].to_numpy()] - 1
    table["y_um"] = table["y_um"] + oy0 * px
    table["x_um"] = table["x_um"] + ox0 * px
    edge = np.zeros(lut.size, bool)
    if oy0 == 0:
        edge[labels[0]] = True
    if oy1 == shape[0]:
        edge[labels[-1]] = True
    if ox0 == 0:
        edge[labels[:, 0]] = True
    if ox1 == shape[1]:
        edge[labels[:, -1]] = True
    edge[0] = False
    table["touches_border"] = edge[table["neuron_id"].to_numpy()]
    return table


def _segment_tile(tile: Tile, *arrays: Any, roles: Sequence[str], shape: tuple[int, int],
                  pixel_size_um: float, params: DrgParams, context: DrgContext, store: str,
                  seg_r: int, check: bool) -> dict:
    """Pass 1 of the exact run: segment one tile, write its core's labels and lipofuscin.

    The core's labels are written only when every cluster of foreground meeting the
    core lies where the segmentation is exact (else the tile reports the margin it
    lacks); each object meeting the core then lies wholly in the outer region, so its
    provisional id (1 + the section flat index of its first pixel) is its own.
    """
    ch = {r: _load(a) for r, a in zip(roles, arrays, strict=True)}
    labels, fg, lipo = segment_drg(ch["neuron"], pixel_size_um=float(pixel_size_um),
                                   context=context, igg=ch.get("igg"), sgc=ch.get("sgc"),
                                   nuclei=ch.get("nuclei"), params=params)
    del ch
    if check:
        short = _margin_shortfall(fg, labels, tile, shape, seg_r, 0)
        if short:
            return {"ok": False, "tile": tile, "short": short}
    oy0, _, ox0, _ = tile.outer
    core = labels[tile.core_in_outer]
    if core.any():
        gids, gfirst = global_first_pixels(labels, (oy0, ox0), shape[1])
        lut = np.zeros(int(labels.max()) + 1, np.int64)
        lut[gids] = gfirst + 1
        core = lut[core]
    _write_core(store, "neurons", tile, core)
    _write_core(store, "lipofuscin", tile, lipo[tile.core_in_outer])
    return {"ok": True, "tile": tile}


def _measure_labelled_tile(tile: Tile, *arrays: Any, roles: Sequence[str],
                           shape: tuple[int, int], pixel_size_um: float, params: DrgParams,
                           context: DrgContext, store: str) -> dict:
    """Pass 2 of the exact run: measure one tile with the section's labels and lipofuscin.

    The labels of the outer region (provisional ids, exact everywhere after pass 1)
    are renumbered 1..n in raster order of their first pixel in the region, as the
    region's own segmentation numbers them; the core's measured rings are written with
    provisional ids.
    """
    ch = {r: _load(a) for r, a in zip(roles, arrays, strict=True)}
    px = float(pixel_size_um)
    prov = _read_outer(store, "neurons", tile)
    lipo = _read_outer(store, "lipofuscin", tile).astype(bool)
    ids, first, inverse = np.unique(prov.ravel(), return_index=True, return_inverse=True)
    del prov
    if ids.size and ids[0] == 0:
        local = np.concatenate([[0], canonical_mapping(ids[1:], first[1:])])
    else:
        local = canonical_mapping(ids, first)
    labels = local.astype(np.int32)[inverse].reshape(lipo.shape)
    del inverse
    lut = np.zeros(int(local.max()) + 1 if local.size else 1, np.int64)
    lut[local] = ids
    res = measure_drg(ch["neuron"], ch.get("igg"), pixel_size_um=px, sgc=ch.get("sgc"),
                      nuclei=ch.get("nuclei"), params=params, context=context,
                      labels=labels, lipofuscin=lipo)
    _write_core(store, "rings", tile, lut[res.rings[tile.core_in_outer]])
    return {"ok": True, "tile": tile, "table": _owned_rows(res.table, labels, lut, tile,
                                                           shape, px)}


#: pixel work of the last :func:`measure_drg_tiled` in this process, by pass (outer-region
#: pixels summed over the tasks, retries included), rounds and retried tiles: read by
#: the benchmarks (``benchmarks/bench_drg_mosaic.py``)
LAST_RUN: dict[str, Any] = {}


def _run_rounds(pending: list[tuple[Tile, int]], make_task: Callable[[Tile], Any],
                shape: tuple[int, int], a: int, client: Any, scheduler: str | None,
                on_done: Callable[[dict], None], stage: str = "tiles") -> None:
    """Run tiles, each with its margin; run those that lack margin again with more."""
    work = LAST_RUN.setdefault(stage, {"outer_px": 0, "tasks": 0, "retried": 0, "rounds": 0})
    # a retried tile's margin grows by half at least (and one block), so after this
    # many rounds every tile spans the whole image, which is never checked: the loop
    # is bounded
    max_rounds = 2 + int(np.ceil(np.log(max(2, max(shape) / a)) / np.log(1.5)))
    rounds = 0
    while pending:
        rounds += 1
        if rounds > max_rounds:  # pragma: no cover - defensive
            raise RuntimeError(f"tiles still need a larger margin after {max_rounds} rounds")
        tasks = []
        for t, m in pending:
            y0, y1, x0, x1 = t.core
            outer = (max(0, y0 - m), min(shape[0], y1 + m),
                     max(0, x0 - m), min(shape[1], x1 + m))
            tasks.append(make_task(Tile(t.index, t.core, outer)))
            work["outer_px"] += (outer[1] - outer[0]) * (outer[3] - outer[2])
        work["tasks"] += len(tasks)
        work["rounds"] = rounds
        margins = {t.index: m for t, m in pending}
        results = _compute(tasks, client, scheduler)
        pending = []
        for res in results:
            if res["ok"]:
                on_done(res)
            else:
                # the margin it lacked, plus the same again (a cluster cut at the
                # zone's edge may reach farther) and at least half the margin more:
                # the margin grows geometrically, so the rounds stay bounded
                t = res["tile"]
                m = margins[t.index]
                work["retried"] += 1
                grow = max(2 * int(res["short"]), m // 2, a)
                pending.append((t, -(-(m + grow) // a) * a))


def measure_drg_tiled(
    channels: Mapping[str, Any],
    *,
    pixel_size_um: float,
    params: DrgParams | None = None,
    tile_px: int,
    margin_px: int | None = None,
    labels_path: str | Path,
    client: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
    context: DrgContext | None = None,
    scheduler: str | None = None,
    check_margin: bool = True,
) -> pd.DataFrame:
    """Measure a large DRG section tile by tile; the result equals the untiled run's.

    Neurons, their ids (1..n in raster order of each neuron's first pixel), label
    images and every table column equal those of :func:`histo_fms.drg.measure_drg` on
    the whole section (to float rounding of the centroids), for the classical
    segmentation backend.

    Parameters
    ----------
    channels : mapping of str to dask.array.Array
        Channel role (``"neuron"``, ``"igg"``, optional ``"sgc"``, ``"nuclei"``) ->
        lazy 2-D image of the section (e.g. ``img.data[i]`` of
        :func:`histo_fms.io.read_image`).
    pixel_size_um : float
        Pixel size in µm.
    params : DrgParams, optional
        Pipeline parameters.
    tile_px : int
        Core edge in pixels (rounded up to the block grid, see
        :func:`histo_fms.drg._context.alignment_px`); also the chunk edge of the labels.
    margin_px : int, optional
        Context around each core, rounded up to the block grid: with ``check_margin``
        the segmentation pass's first margin (default
        :func:`histo_fms.drg._context.exact_tile_margins_px` ``[0]``; a tile whose
        clusters need more is run again with a larger margin, so a smaller value
        costs time, not exactness; the measurement pass always uses the rule's
        ``[1]``); without, the one pass's margin (default
        :func:`histo_fms.drg.required_margin_px`).
    labels_path : str or Path
        Destination ``.zarr``: ``labels/neurons/0`` and ``labels/rings/0`` (int32),
        the layout of :func:`histo_fms.io.write_labels_zarr`, written atomically.
    client : distributed.Client, optional
        Run the tiles on this cluster; else dask's local ``scheduler``.
    progress : callable, optional
        Called as ``progress(stage, done, total)``.
    context : DrgContext, optional
        The section's statistics, if already computed (else
        :func:`compute_context_tiled`).
    scheduler : str, optional
        Local dask scheduler when no client (default ``"threads"``).
    check_margin : bool
        Exact run in two passes (segment, then measure with the section's labels):
        each segmented tile is checked (every cluster of touching neurons meeting
        the core inside the exactly segmented zone) and run again with more margin
        if not. ``False``: one pass per tile, ``margin_px`` trusted (faster with a
        margin below the conservative rule; exactness is then not guaranteed).

    Returns
    -------
    pandas.DataFrame
        One row per neuron, columns :data:`histo_fms.drg.TABLE_COLUMNS`, sorted by
        ``neuron_id``.
    """
    import dask
    import dask.array as da

    from ..io._write import atomic_path

    p = params or DrgParams()
    px = float(pixel_size_um)
    if "neuron" not in channels:
        raise ValueError("channel role 'neuron' is required")
    roles = [r for r in ROLES if r in channels]
    chans = {r: da.asarray(channels[r]) for r in roles}
    shape = tuple(int(s) for s in chans["neuron"].shape)
    if len(shape) != 2 or any(tuple(c.shape) != shape for c in chans.values()):
        raise ValueError("channels must be 2-D images of one shape")
    a = alignment_px(p, px)
    tile_px = max(a, -(-int(tile_px) // a) * a)
    seg_margin, meas_margin = exact_tile_margins_px(p, px)
    if margin_px is None:
        margin = seg_margin if check_margin else required_margin_px(p, px)
    else:
        margin = int(margin_px)
    margin = -(-max(margin, 0) // a) * a
    seg_r = segmentation_radius_px(p, px)
    region_r = object_reach_px(p, px) + measurement_radius_px(p, px)
    say = progress or (lambda *_: None)

    if context is None:
        say("context", 0, 1)
        context = compute_context_tiled(chans, pixel_size_um=px, params=p, tile_px=tile_px,
                                        client=client, scheduler=scheduler)
        say("context", 1, 1)

    tables: list[pd.DataFrame] = []
    LAST_RUN.clear()
    LAST_RUN.update(image_px=shape[0] * shape[1], margins=(margin, meas_margin),
                    tile_px=tile_px, two_pass=bool(check_margin))
    labels_path = Path(labels_path)
    with atomic_path(labels_path) as tmp:
        _create_store(tmp, shape, tile_px, px)
        store = str(tmp)
        grid = tile_grid(shape, tile_px, 0)
        total = len(grid)
        common = dict(roles=roles, shape=shape, pixel_size_um=px, params=p, context=context,
                      store=store)
        done = [0]

        def finished(stage: str) -> Callable[[dict], None]:
            def on_done(res: dict) -> None:
                if "table" in res:
                    tables.append(res["table"])
                done[0] += 1
                say(stage, done[0], total)
            return on_done

        def task(fn: Callable, **kw: Any) -> Callable[[Tile], Any]:
            return lambda t: dask.delayed(fn)(t, *_outer_arrays(chans, roles, t), **common,
                                              **kw)

        def whole(t: Tile) -> bool:
            return t.outer == (0, shape[0], 0, shape[1])

        if not check_margin:
            # one pass, the margin trusted (fast tiles)
            say("tiles", 0, total)
            _run_rounds([(t, margin) for t in grid],
                        lambda t: task(_measure_tile, seg_r=seg_r, region_r=region_r,
                                       check=False)(t),
                        shape, a, client, scheduler, finished("tiles"))
        else:
            # pass 1: segment every tile (checked, run again with more margin if a
            # cluster near its core reaches the inexact band); pass 2: measure with the
            # section's labels, which are exact everywhere, so its margin is only the
            # measurement's reach
            say("segment", 0, total)
            _run_rounds([(t, margin) for t in grid],
                        lambda t: task(_segment_tile, seg_r=seg_r, check=not whole(t))(t),
                        shape, a, client, scheduler, finished("segment"), "segment")
            done[0] = 0
            say("tiles", 0, total)
            _run_rounds([(t, meas_margin) for t in grid], task(_measure_labelled_tile),
                        shape, a, client, scheduler, finished("tiles"))

        table = (pd.concat(tables, ignore_index=True) if tables
                 else pd.DataFrame(columns=[*TABLE_COLUMNS, "_first"]))
        first = np.sort(table["_first"].to_numpy(np.int64))
        if np.unique(first).size != first.size:
            raise RuntimeError("a neuron was kept by two tiles")  # pragma: no cover
        table["neuron_id"] = (np.searchsorted(first, table["_first"].to_numpy(np.int64))
                              + 1).astype(np.int64)
        table = table.sort_values("neuron_id").drop(columns="_first")
        table = table[TABLE_COLUMNS].reset_index(drop=True)
        if len(table) == 0:
            from ..drg._measure import _empty

            table = _empty(TABLE_COLUMNS)

        # canonical ids, chunk by chunk (chunks = tile cores: no write races)
        say("relabel", 0, 1)
        tasks = [dask.delayed(_relabel_chunk)(store, name, t.core_slices, first)
                 for name in LABEL_NAMES for t in tile_grid(shape, tile_px, 0)]
        _compute(tasks, client, scheduler)
        shutil.rmtree(Path(store) / "_provisional", ignore_errors=True)
        say("relabel", 1, 1)
    return table
