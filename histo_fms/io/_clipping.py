"""Detector clipping: pixels at the top of the camera's range carry no intensity.

One definition for a whole channel (:func:`clipped_fraction`) and for a channel read in
blocks (:func:`clip_block` per block, merged with :func:`add_clip_blocks`, judged by
:func:`clipped_from_blocks`): the whole channel is the one-block case, so a tiled run
reports exactly the numbers of an untiled one.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce

import numpy as np

#: ranges of common detectors stored in integer images (8-, 10-, 12-, 14-, 16-bit)
DETECTOR_MAXIMA = (255, 1023, 4095, 16383, 65535)
#: share of a channel's pixels at the detector maximum above which a run warns
CLIPPED_WARN_FRACTION = 0.001

#: one block's ``(maximum, pixels equal to it, pixels)``; maximum None: float or empty
ClipBlock = tuple[int | None, int, int]
#: the merge identity (no pixels)
NO_PIXELS: ClipBlock = (None, 0, 0)


def clip_block(arr: np.ndarray) -> ClipBlock:
    """Return one block's largest value, how many pixels equal it, and its pixel count.

    Parameters
    ----------
    arr : ndarray
        A block of one channel (any shape).

    Returns
    -------
    ClipBlock
        ``(maximum, count, size)``; ``maximum`` is None (and ``count`` 0) for float
        or empty blocks.
    """
    if arr.dtype.kind not in "ui" or arr.size == 0:
        return None, 0, int(arr.size)
    top = int(arr.max())
    return top, int(np.count_nonzero(arr == top)), int(arr.size)


def add_clip_blocks(a: ClipBlock, b: ClipBlock) -> ClipBlock:
    """Merge two blocks' :func:`clip_block` results (associative, commutative).

    Parameters
    ----------
    a, b : ClipBlock
        ``(maximum, count, size)`` of two disjoint blocks of one channel.

    Returns
    -------
    ClipBlock
        Those of the two blocks together: the larger maximum, the pixels equal to it
        (both counts when the maxima are equal) and the summed size.
    """
    (ma, ca, na), (mb, cb, nb) = a, b
    if ma is None or (mb is not None and mb > ma):
        top, count = mb, cb
    elif mb is None or ma > mb:
        top, count = ma, ca
    else:
        top, count = ma, ca + cb
    return top, count, na + nb


def clipped_from_blocks(blocks: Iterable[ClipBlock], dtype: np.dtype | type | str
                        ) -> tuple[int | None, float]:
    """Return a channel's detector maximum and share of pixels at it from its blocks.

    Parameters
    ----------
    blocks : iterable of ClipBlock
        :func:`clip_block` of blocks that partition the channel (or results already
        merged with :func:`add_clip_blocks`).
    dtype : dtype
        The channel's dtype.

    Returns
    -------
    maximum : int or None
        As :func:`clipped_fraction`.
    fraction : float
        As :func:`clipped_fraction`.
    """
    dtype = np.dtype(dtype)
    top, count, size = reduce(add_clip_blocks, blocks, NO_PIXELS)
    if dtype.kind not in "ui" or size == 0 or top is None:
        return None, 0.0
    if top not in DETECTOR_MAXIMA or top > np.iinfo(dtype).max:
        return None, 0.0
    return top, float(count) / size


def clipped_fraction(arr: np.ndarray) -> tuple[int | None, float]:
    """Return a channel's detector maximum and the share of its pixels at it.

    Parameters
    ----------
    arr : ndarray
        One channel of an integer image (any shape).

    Returns
    -------
    maximum : int or None
        The image's largest value when it is the top of a common detector range
        (:data:`DETECTOR_MAXIMA`, e.g. 4095 for 12-bit data stored in uint16) and at most
        the dtype's maximum; ``None`` for float images or when the largest value is not
        such a ceiling (nothing is clipped).
    fraction : float
        Share of the pixels equal to ``maximum`` (0.0 when ``maximum`` is None).
    """
    return clipped_from_blocks([clip_block(arr)], arr.dtype)


def clipping_warning(name: str, clipped: dict[str, list]) -> str | None:
    """One warning line for the roles of a file with clipped pixels, or None.

    Parameters
    ----------
    name : str
        The file's name.
    clipped : dict of str to [int, float]
        Per channel role, ``[maximum, fraction]`` from :func:`clipped_fraction`.
    """
    bad = {r: v for r, v in clipped.items()
           if v[0] is not None and v[1] > CLIPPED_WARN_FRACTION}
    if not bad:
        return None
    what = ", ".join(f"{r} {100 * f:.2f} % at {m}" for r, (m, f) in bad.items())
    return (f"{name}: pixels at the detector's maximum ({what}): their intensities are "
            "clipped, so measured intensities there are too low; image with a shorter "
            "exposure or lower gain")


def constant_from_blocks(blocks: Iterable[ClipBlock]) -> bool:
    """Tell from its blocks whether an integer channel holds one value everywhere.

    Parameters
    ----------
    blocks : iterable of ClipBlock
        :func:`clip_block` of blocks that partition the channel (or merged results).

    Returns
    -------
    bool
        True when every pixel equals the channel's maximum (False for float or empty
        channels, which blocks cannot tell).
    """
    top, count, size = reduce(add_clip_blocks, blocks, NO_PIXELS)
    return top is not None and size > 0 and count == size
