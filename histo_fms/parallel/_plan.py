"""Whole image or tiles: the memory budget that decides how a DRG section is processed.

Tiling costs time (every tile reads and computes its margin again; the exact margin is
~520-670 µm) and pays only when the whole image does not fit in a worker's memory. A
section is therefore processed whole when its estimated peak memory
(:data:`DRG_BYTES_PER_PIXEL` x pixels) fits the budget of one worker; above that it is
tiled, with the largest tile cores whose outer regions (core + margin on each side, at
:data:`TILE_BYTES_PER_PIXEL`) fit the same budget, so the margins are paid as few times
as possible.

The budget is :data:`BUDGET_FRACTION` of the memory one worker may use
(``parallel.memory_limit``; ``auto``: the machine's memory over the workers), so a section
that fits is never tiled. To bound a run's memory below that, set ``parallel.memory_limit``
(e.g. ``4GiB`` per worker gives tiles of ~2 GiB) or pass ``target_bytes`` to
:func:`plan_drg`: tiles are then sized from the measured per-pixel peak of a tile
(:data:`TILE_BYTES_PER_PIXEL`), at the cost of reading the exact margins more often.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

#: peak memory of :func:`histo_fms.drg.measure_drg` per pixel of a 4-channel section,
#: input included (bytes). Measured as the child-process peak RSS above the
#: interpreter's with the image loaded (``benchmarks/bench_drg_batch.py
#: --bytes-per-pixel``): 84 B/px of temporaries on a 4096² mosaic phantom (42 on 2048²),
#: plus the 8 B/px uint16 input, rounded up.
DRG_BYTES_PER_PIXEL = 96

#: peak memory of one tile of :func:`histo_fms.parallel.measure_drg_tiled` per pixel of
#: its outer region (4 channels, the section's context given), input included (bytes).
#: Measured as the child-process peak RSS above the interpreter's with the region loaded
#: (``benchmarks/bench_drg_mosaic.py --bytes-per-pixel``): 84 B/px on 2048² and 77 on
#: 3072² outer regions of the mosaic phantom (tracemalloc: 78 B/px), plus the 8 B/px input
TILE_BYTES_PER_PIXEL = 92

#: share of a worker's memory limit one image (or one tile) may take; the rest is the
#: interpreter, the libraries, dask's own buffers and glibc's fragmentation
BUDGET_FRACTION = 0.5



def _size(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


@dataclass(frozen=True)
class TilePlan:
    """How one section is processed.

    Attributes
    ----------
    tiled : bool
        Whether it is processed in tiles.
    tile_px : int or None
        Tile core edge in pixels (``None`` when whole).
    reason : str
        One line saying why (logged and recorded in ``run.json``).
    """

    tiled: bool
    tile_px: int | None
    reason: str


def system_memory_bytes() -> int:
    """Return the physical memory of this machine (bytes; 8 GiB when it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def parse_memory(limit: str | int | float | None, workers: int) -> int:
    """Return one worker's memory in bytes from a dask-style limit.

    Parameters
    ----------
    limit : str, int, float or None
        ``"4GiB"``, a number of bytes, a fraction of the machine's memory (<= 1), or
        ``"auto"``/``None``: the machine's memory shared by ``workers`` (dask's rule).
    workers : int
        Worker processes sharing the machine.

    Returns
    -------
    int
        Bytes.
    """
    total = system_memory_bytes()
    if limit is None or limit == "auto":
        return total // max(1, int(workers))
    if isinstance(limit, str):
        from dask.utils import parse_bytes

        return int(parse_bytes(limit))
    v = float(limit)
    return int(v * total) if v <= 1 else int(v)


def current_worker_memory() -> int | None:
    """Return the memory limit of the dask worker this runs in (``None`` outside a worker)."""
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return None
    lim = getattr(getattr(w, "memory_manager", None), "memory_limit", None)
    return int(lim) if lim else system_memory_bytes()


def cluster_worker_memory(client: Any) -> int | None:
    """Return the smallest memory limit among a cluster's workers (``None`` if none reported)."""
    try:
        workers = client.scheduler_info().get("workers", {})
    except Exception:  # noqa: BLE001 - an unreachable scheduler fails later, clearly
        return None
    lims = [int(w.get("memory_limit") or system_memory_bytes()) for w in workers.values()]
    return min(lims) if lims else None


def plan_drg(shape_yx: tuple[int, int], *, memory_bytes: int, margin_px: int, align_px: int,
             tile_px: int | None = None, min_tile_px: int = 0,
             bytes_per_pixel: float = DRG_BYTES_PER_PIXEL,
             tile_bytes_per_pixel: float | None = None,
             target_bytes: float | None = None) -> TilePlan:
    """Decide whole image or tiles, and the tile core, for one DRG section.

    Parameters
    ----------
    shape_yx : tuple of int
        Section shape.
    memory_bytes : int
        Memory one worker (or this process) may use.
    margin_px : int
        Tile margin in pixels (context read around each core).
    align_px : int
        Tile cores are multiples of this (the block grid).
    tile_px : int, optional
        A core edge the user asked for (``parallel.tile_size_um``): tiles whenever the
        section is larger, whatever the budget.
    min_tile_px : int
        Smallest core edge chosen from the budget (the default tile size).
    bytes_per_pixel : float
        Peak memory of the whole-image measurement per pixel.
    tile_bytes_per_pixel : float, optional
        Peak memory of one tile per pixel of its outer region (default
        :data:`TILE_BYTES_PER_PIXEL`, or ``bytes_per_pixel`` when that is given).
    target_bytes : float, optional
        Per-worker peak the image or a tile may take, whatever the memory (default
        ``None``: only ``BUDGET_FRACTION x memory_bytes``).

    Returns
    -------
    TilePlan
        The decision and why.
    """
    h, w = (int(s) for s in shape_yx)
    need = bytes_per_pixel * h * w
    budget = BUDGET_FRACTION * float(memory_bytes)
    of = f"{BUDGET_FRACTION:g} x {_size(memory_bytes)} per worker"
    if target_bytes is not None and float(target_bytes) < budget:
        budget = float(target_bytes)
        of = "the per-worker memory target"
    if tile_bytes_per_pixel is None:
        tile_bytes_per_pixel = (TILE_BYTES_PER_PIXEL if bytes_per_pixel == DRG_BYTES_PER_PIXEL
                                else bytes_per_pixel)
    if tile_px is not None:
        if max(h, w) > tile_px:
            return TilePlan(True, int(tile_px), f"tiled: {h} x {w} px is larger than the "
                                                f"{tile_px} px tiles set by parallel.tile_size_um")
        return TilePlan(False, None, f"whole image: {h} x {w} px fits one "
                                     f"{tile_px} px tile (parallel.tile_size_um)")
    if need <= budget:
        return TilePlan(False, None, f"whole image: ~{_size(need)} needed, within the "
                                     f"{_size(budget)} budget ({of})")
    # largest cores whose outer region (core + 2 margins) fits the budget, as even as the
    # image allows (fewer, equal tiles: the margins are paid fewest times)
    outer = int(math.sqrt(budget / tile_bytes_per_pixel))
    core = max(int(min_tile_px), outer - 2 * int(margin_px), align_px)
    if max(h, w) <= core:
        return TilePlan(False, None, f"whole image: ~{_size(need)} needed, over the "
                                     f"{_size(budget)} budget, but no larger than one "
                                     f"{core} px tile")
    n = max(1, math.ceil(max(h, w) / core))
    core = math.ceil(max(h, w) / n)
    core = -(-core // align_px) * align_px
    tile = tile_bytes_per_pixel * min(h, core + 2 * int(margin_px)) * min(
        w, core + 2 * int(margin_px))
    over = "" if tile <= budget * 1.001 else ", over the budget: the smallest tile"
    return TilePlan(True, core, f"tiled: ~{_size(need)} needed whole, over the "
                                f"{_size(budget)} budget ({of}); {core} px cores "
                                f"with {margin_px} px margins, ~{_size(tile)} per "
                                f"tile{over}")
