"""Tiles with overlap, object ownership and canonical label numbering.

A large image is cut into *cores* that partition it; each core is processed with a
*margin* of context around it (its *outer* region). Objects are kept by the tile whose
core holds their first pixel (the topmost, then leftmost pixel), so every object is
counted exactly once. Label ids are made canonical – numbered 1..n in raster order of
their first pixel – so a tiled run and an untiled run of the same image give the same
ids, not just the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile: the core it owns and the outer region it reads (both half-open, px)."""

    index: int
    core: tuple[int, int, int, int]  # y0, y1, x0, x1
    outer: tuple[int, int, int, int]

    @property
    def outer_slices(self) -> tuple[slice, slice]:
        """Slices of the outer region in image coordinates."""
        y0, y1, x0, x1 = self.outer
        return slice(y0, y1), slice(x0, x1)

    @property
    def core_in_outer(self) -> tuple[slice, slice]:
        """Slices of the core within the outer region's array."""
        cy0, cy1, cx0, cx1 = self.core
        oy0, _, ox0, _ = self.outer
        return slice(cy0 - oy0, cy1 - oy0), slice(cx0 - ox0, cx1 - ox0)

    @property
    def core_slices(self) -> tuple[slice, slice]:
        """Slices of the core in image coordinates."""
        y0, y1, x0, x1 = self.core
        return slice(y0, y1), slice(x0, x1)


def tile_grid(shape: tuple[int, int], tile: int, margin: int) -> list[Tile]:
    """Cut an image into square cores of ``tile`` px, each read with ``margin`` px around.

    Parameters
    ----------
    shape : tuple of int
        Image (Y, X) size in pixels.
    tile : int
        Core edge in pixels (the last row/column of tiles may be smaller).
    margin : int
        Context in pixels added on every side (clipped at the image border).

    Returns
    -------
    list of Tile
        Tiles in raster order; their cores partition the image.
    """
    h, w = (int(s) for s in shape)
    if tile < 1 or margin < 0:
        raise ValueError("tile must be >= 1 px and margin >= 0 px")
    tiles = []
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            outer = (max(0, y0 - margin), min(h, y1 + margin),
                     max(0, x0 - margin), min(w, x1 + margin))
            tiles.append(Tile(len(tiles), (y0, y1, x0, x1), outer))
    return tiles


def first_pixels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each object's id and the raster index of its first (top, then left) pixel.

    Parameters
    ----------
    labels : ndarray of int
        2-D label image (0 = background).

    Returns
    -------
    ids : ndarray of int
        Object ids, sorted.
    first : ndarray of int64
        Flat index (``row * width + col``) of each object's first pixel.
    """
    flat = np.asarray(labels).ravel()
    ids, first = np.unique(flat, return_index=True)
    keep = ids != 0
    return ids[keep], first[keep].astype(np.int64)


def global_first_pixels(labels: np.ndarray, offset: tuple[int, int], image_width: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`first_pixels` of a crop, as flat indices into the whole image.

    Parameters
    ----------
    labels : ndarray of int
        Labels of a crop whose top-left pixel is at ``offset`` in the image.
    offset : tuple of int
        (y0, x0) of the crop.
    image_width : int
        Width of the whole image in pixels.

    Returns
    -------
    ids : ndarray of int
        Object ids of the crop.
    first : ndarray of int64
        Flat index of each object's first pixel in the whole image.
    """
    ids, first = first_pixels(labels)
    w = labels.shape[1]
    r, c = np.divmod(first, w)
    return ids, (r + offset[0]) * int(image_width) + (c + offset[1])


def canonical_mapping(ids: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Map ids to 1..n in raster order of their first pixels.

    Parameters
    ----------
    ids : ndarray of int
        Object ids.
    first : ndarray of int
        Flat first-pixel index of each object (unique per object).

    Returns
    -------
    ndarray of int32
        New id for each entry of ``ids``.
    """
    order = np.argsort(first, kind="stable")
    new = np.empty(len(ids), np.int32)
    new[order] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return new


def apply_mapping(labels: np.ndarray, ids: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Relabel ``labels``: ``ids[i]`` becomes ``new[i]``; other ids become 0.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    ids, new : ndarray of int
        Old and new ids.

    Returns
    -------
    ndarray of int32
        The relabelled image.
    """
    labels = np.asarray(labels)
    if len(ids) == 0:
        return np.zeros(labels.shape, np.int32)
    ids = np.asarray(ids, np.int64)
    order = np.argsort(ids)
    sid, snew = ids[order], np.asarray(new, np.int32)[order]
    flat = labels.ravel().astype(np.int64)
    pos = np.clip(np.searchsorted(sid, flat), 0, len(sid) - 1)
    out = np.where(sid[pos] == flat, snew[pos], 0).astype(np.int32)
    return out.reshape(labels.shape)
