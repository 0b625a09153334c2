"""Grey levels: a channel quantised to a handful of values carries no measurement.

A 16-bit export divided by 256 (12-bit data becomes 0-15, dim data 0/1), or an 8-bit
export of a dim channel at the wrong display range, leaves each pixel one of a few
values: the quantisation step is larger than the noise, so ridge and blob filters see
steps instead of fibres and somata, and a run would report a confident 0 fibres/mm.
Such a channel is refused (:func:`coarse_levels_error`), not measured.

One definition for a whole channel and for a channel read in blocks, as for clipping
(:mod:`histo_fms.io._clipping`): :func:`level_block` per block, merged with
:func:`add_level_blocks`, judged by :func:`grey_levels`; the whole channel is the
one-block case, so a tiled run decides exactly as an untiled one.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce

import numpy as np

#: fewer distinct values than this in the central 99 % of a channel's pixels: refused
MIN_GREY_LEVELS = 16
#: share of the pixels left out at each end when counting levels (hot pixels, debris)
TAIL_FRACTION = 0.005
#: float blocks are first judged on every 97th pixel (a shortcut that cannot change
#: the answer: a subset that takes enough values proves the whole block does)
_SAMPLE_STEP = 97

#: one block's distinct values and their pixel counts; ``MANY``: a float block with
#: at least :data:`MIN_GREY_LEVELS` distinct values
LevelBlock = tuple[np.ndarray, np.ndarray] | str
MANY = "many"
#: the merge identity (no pixels)
NO_LEVELS: LevelBlock = (np.zeros(0), np.zeros(0, np.int64))


def level_block(arr: np.ndarray) -> LevelBlock:
    """Return one block's distinct values with their pixel counts (or :data:`MANY`).

    Parameters
    ----------
    arr : ndarray
        A block of one channel (any shape, integer or float).

    Returns
    -------
    LevelBlock
        ``(values, counts)`` sorted by value; for a float block :data:`MANY` when it
        takes at least :data:`MIN_GREY_LEVELS` distinct values.
    """
    flat = np.ravel(arr)
    if flat.size == 0:
        return NO_LEVELS
    if flat.dtype.kind == "f":
        if (len(np.unique(flat[::_SAMPLE_STEP])) >= MIN_GREY_LEVELS
                or len(np.unique(flat)) >= MIN_GREY_LEVELS):
            return MANY
    elif flat.dtype.kind in "ui" and flat.dtype.itemsize <= 2:
        lo = int(flat.min()) if flat.dtype.kind == "i" else 0
        counts = np.bincount(flat.astype(np.int32) - lo if lo else flat)
        values = np.flatnonzero(counts)
        return (values + lo).astype(np.int64), counts[values].astype(np.int64)
    values, counts = np.unique(flat, return_counts=True)
    return values, counts.astype(np.int64)


def add_level_blocks(a: LevelBlock, b: LevelBlock) -> LevelBlock:
    """Merge two blocks' :func:`level_block` results (associative, commutative).

    Parameters
    ----------
    a, b : LevelBlock
        Results for two disjoint blocks of one channel.

    Returns
    -------
    LevelBlock
        Those of the two blocks together (:data:`MANY` if either is).
    """
    if isinstance(a, str) or isinstance(b, str):
        return MANY
    if a[0].size == 0 or b[0].size == 0:
        return b if a[0].size == 0 else a
    values = np.concatenate([a[0], b[0]])
    counts = np.concatenate([a[1], b[1]])
    merged, inverse = np.unique(values, return_inverse=True)
    return merged, np.bincount(inverse.ravel(), weights=counts,
                               minlength=len(merged)).astype(np.int64)


def grey_levels(blocks: Iterable[LevelBlock]) -> tuple[int, list[float]] | None:
    """Return how many distinct values hold the central 99 % of a channel's pixels.

    Parameters
    ----------
    blocks : iterable of LevelBlock
        :func:`level_block` of blocks that partition the channel (or merged results).

    Returns
    -------
    (int, list of float) or None
        For an integer channel the number of distinct values between the 0.5 % and
        99.5 % points of its pixels' distribution (hot pixels and debris left out), for
        a float channel the number of its distinct values, and those values (at most
        the first 8); None for a channel without pixels, or a float channel with at
        least :data:`MIN_GREY_LEVELS` values.
    """
    total = reduce(add_level_blocks, blocks, NO_LEVELS)
    if isinstance(total, str) or total[0].size == 0:
        return None
    values, counts = total
    if values.dtype.kind == "f":
        return len(values), [float(v) for v in values[:8]]
    cum = np.cumsum(counts)
    n = cum[-1]
    lo = int(np.searchsorted(cum, TAIL_FRACTION * n, side="right"))
    hi = int(np.searchsorted(cum, (1 - TAIL_FRACTION) * n, side="left"))
    hi = max(lo, min(hi, len(values) - 1))
    central = values[lo:hi + 1]
    return len(central), [float(v) for v in central[:8]]


def coarse_levels_error(levels: dict[str, tuple[int, list[float]] | None],
                        constant: Iterable[str] = ()) -> str | None:
    """One-line problem for the roles quantised too coarsely to measure, or None.

    Parameters
    ----------
    levels : dict of str to (int, list of float) or None
        Per channel role, :func:`grey_levels` of the raw channel.
    constant : iterable of str
        Roles holding one value everywhere: a blank channel, warned about elsewhere,
        not refused here.

    Returns
    -------
    str or None
        The problem (for :class:`histo_fms.io._errors.InputError`), or None.
    """
    skip = set(constant)
    bad = {r: v for r, v in levels.items()
           if v is not None and r not in skip and v[0] < MIN_GREY_LEVELS}
    if not bad:
        return None
    what = "; ".join(
        f"{r}: {n} level{'s' if n > 1 else ''} "
        f"({', '.join(f'{x:g}' for x in vals)}{', ...' if n > len(vals) else ''})"
        for r, (n, vals) in bad.items())
    return (f"channel role(s) quantised to a few grey levels in 99 % of their pixels "
            f"({what}; at least {MIN_GREY_LEVELS} needed): too coarse to measure (objects "
            "and intensities would be wrong); an export rescaled to fewer bits (16-bit "
            "divided by 256?): re-export at the camera's bit depth")
