"""Where each neuron is, without whole-image scans: a bounding-box index of a label image.

A review of a whole section (16k x 16k pixels, ~60,000 neurons) must open in seconds
and edit in milliseconds, so it never scans the whole label image to find a neuron.
:class:`BoxIndex` knows each neuron's bounding box at one of three levels:

- *exact*: the box of the neuron's pixels (kept up to date by the edits);
- *superset*: a box known to contain every pixel of the neuron (the union of its
  automatic box and every pixel an edit wrote or removed with its id); shrunk to the
  exact box on first use;
- *hint*: the neuron's centroid and pixel count from the measurement table (the
  labels were measured as they are); the box is found on first use by looking around
  the centroid until all the counted pixels are found, so it is exact too.

Only when a hinted neuron cannot be completed this way (a table that does not match
its labels) is the whole image searched, for that neuron alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

Box = list[int]  # [y0, x0, y1, x1], half-open


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None:
        return b
    if b is None:
        return a
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


def _mask_box(mask: np.ndarray, y0: int, x0: int) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return [y0 + int(rows[0]), x0 + int(cols[0]), y0 + int(rows[-1]) + 1,
            x0 + int(cols[-1]) + 1]


def find_boxes(lab: Any) -> dict[int, Box]:
    """Return the exact box of every label of an image (one whole-image pass).

    Parameters
    ----------
    lab : array_like of int, shape (Y, X)
        Label image.

    Returns
    -------
    dict of int to [y0, x0, y1, x1]
    """
    from scipy import ndimage as ndi

    lab = np.asarray(lab)
    if lab.size == 0 or int(lab.max(initial=0)) <= 0:
        return {}
    out = {}
    for i, sl in enumerate(ndi.find_objects(lab.astype(np.int32, copy=False)), start=1):
        if sl is not None:
            out[i] = [sl[0].start, sl[1].start, sl[0].stop, sl[1].stop]
    return out


class BoxIndex:
    """Bounding boxes of the labels of one image, found lazily (see the module doc).

    Parameters
    ----------
    labels : callable
        Returns the current label image (a numpy array or a lazily read zarr array;
        only boxes of it are read).
    shape : tuple of int
        Its shape.
    exact : dict of int to box, optional
        Exact boxes.
    superset : dict of int to box, optional
        Boxes known to contain every pixel of their label.
    hints : dict of int to (y_px, x_px, n_pixels), optional
        Centroid (pixels) and pixel count of labels as measured.
    """

    def __init__(self, labels: Callable[[], Any], shape: tuple[int, int], *,
                 exact: dict[int, Box] | None = None,
                 superset: dict[int, Box] | None = None,
                 hints: dict[int, tuple[float, float, int]] | None = None):
        self._labels = labels
        self.shape = (int(shape[0]), int(shape[1]))
        self.exact: dict[int, Box] = dict(exact or {})
        self.superset: dict[int, Box] = {k: v for k, v in (superset or {}).items()
                                         if k not in self.exact}
        self.hints = {k: v for k, v in (hints or {}).items()
                      if k not in self.exact and k not in self.superset}
        self.full_searches = 0  # hinted labels that needed a whole-image search

    # ---------------------------------------------------------------- container
    def _settle(self) -> None:
        """Shrink the superset boxes (few: the edited labels), dropping absent labels."""
        for nid in list(self.superset):
            self._shrink(nid, self.superset.pop(nid))

    def __iter__(self) -> Iterator[int]:
        self._settle()
        yield from list(self.exact)
        yield from self.superset
        yield from self.hints

    def __contains__(self, nid: object) -> bool:
        if nid in self.superset:
            return self.get(int(nid)) is not None  # type: ignore[arg-type]
        return nid in self.exact or nid in self.superset or nid in self.hints

    def __len__(self) -> int:
        self._settle()
        return len(self.exact) + len(self.superset) + len(self.hints)

    def max_id(self) -> int:
        """Largest label present (0 when none)."""
        self._settle()
        return max((max(d, default=0) for d in (self.exact, self.superset, self.hints)),
                   default=0)

    # ---------------------------------------------------------------- lookup
    def get(self, nid: int) -> Box | None:
        """Return the exact box of a label (None when it is absent)."""
        nid = int(nid)
        b = self.exact.get(nid)
        if b is not None:
            return b
        if nid in self.superset:
            return self._shrink(nid, self.superset.pop(nid))
        if nid in self.hints:
            return self._resolve(nid, self.hints.pop(nid))
        return None

    def ensure(self, ids: Iterable[int]) -> None:
        """Make the boxes of some labels exact (before their pixels change)."""
        for i in ids:
            i = int(i)
            if i > 0 and i not in self.exact:
                self.get(i)

    def _crop(self, box: Box) -> np.ndarray:
        return np.asarray(self._labels()[box[0]:box[2], box[1]:box[3]])

    def _shrink(self, nid: int, box: Box) -> Box | None:
        b = _mask_box(self._crop(box) == nid, box[0], box[1])
        if b is not None:
            self.exact[nid] = b
        return b

    def _resolve(self, nid: int, hint: tuple[float, float, int]) -> Box | None:
        cy, cx, count = float(hint[0]), float(hint[1]), int(hint[2])
        h, w = self.shape
        r = int(max(4.0, 1.5 * np.sqrt(max(count, 1) / np.pi) + 4))
        if np.isfinite(cy) and np.isfinite(cx):
            for _ in range(4):
                box = [max(int(cy) - r, 0), max(int(cx) - r, 0), min(int(cy) + r + 2, h),
                       min(int(cx) + r + 2, w)]
                if box[2] > box[0] and box[3] > box[1]:
                    m = self._crop(box) == nid
                    if int(m.sum()) == count:  # every counted pixel found: the box is exact
                        b = _mask_box(m, box[0], box[1])
                        if b is not None:
                            self.exact[nid] = b
                        return b
                r *= 2
        # the table does not match the labels here: look for this label everywhere
        self.full_searches += 1
        b = _mask_box(np.asarray(self._labels()) == nid, 0, 0)
        if b is not None:
            self.exact[nid] = b
        return b

    # ---------------------------------------------------------------- updates
    def grow(self, nid: int, box: Box) -> None:
        """Record that label ``nid`` now also has pixels in ``box`` (make it exact first)."""
        nid = int(nid)
        cur = self.get(nid)
        self.exact[nid] = _union(cur, list(box))

    def drop_if_gone(self, nid: int) -> None:
        """Forget a label whose box no longer holds any of its pixels (after an edit)."""
        nid = int(nid)
        b = self.exact.get(nid)
        if b is None:
            return
        nb = _mask_box(self._crop(b) == nid, b[0], b[1])
        if nb is None:
            del self.exact[nid]
        else:
            self.exact[nid] = nb


def pixel_boxes(idx: np.ndarray, old: np.ndarray, new: np.ndarray, width: int
                ) -> dict[int, Box]:
    """Return, per label value, the box of the pixels a diff wrote or removed with it.

    Parameters
    ----------
    idx : ndarray of int
        Flat pixel indices.
    old, new : ndarray of int
        Values before and after.
    width : int
        Image width.

    Returns
    -------
    dict of int to box
        Label (> 0) -> box of its pixels in ``old`` or ``new``.
    """
    out: dict[int, Box] = {}
    if not np.size(idx):
        return out
    ys, xs = np.divmod(np.asarray(idx, np.int64), int(width))
    for vals in (np.asarray(old), np.asarray(new)):
        order = np.argsort(vals, kind="stable")
        v = vals[order]
        cuts = np.flatnonzero(np.diff(v)) + 1
        starts = np.r_[0, cuts]
        ends = np.r_[cuts, v.size]
        for s, e in zip(starts, ends, strict=True):
            lab = int(v[s])
            if lab <= 0:
                continue
            sel = order[s:e]
            b = [int(ys[sel].min()), int(xs[sel].min()), int(ys[sel].max()) + 1,
                 int(xs[sel].max()) + 1]
            out[lab] = _union(out.get(lab), b)
    return out
