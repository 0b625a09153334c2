"""Small geometry helpers in µm: polyline length outside regions, points in polygons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.measure import points_in_poly


def points_in_regions(points: np.ndarray, regions: Sequence[np.ndarray]) -> np.ndarray:
    """Return which points lie inside any of the polygons.

    Parameters
    ----------
    points : ndarray, shape (N, 2)
        Points (y, x).
    regions : sequence of ndarray, shape (M, 2)
        Closed polygons (y, x).

    Returns
    -------
    ndarray of bool, shape (N,)
        True inside a polygon.
    """
    pts = np.asarray(points, float).reshape(-1, 2)
    inside = np.zeros(len(pts), bool)
    for r in regions:
        if len(pts):
            inside |= points_in_poly(pts, np.asarray(r, float).reshape(-1, 2))
    return inside


def polyline_length_um(vertices: np.ndarray, exclude: Sequence[np.ndarray] = (),
                       step_um: float = 0.25) -> float:
    """Return a polyline's length, leaving out the parts inside excluded polygons.

    Parameters
    ----------
    vertices : ndarray, shape (N, 2)
        Vertices (y, x) in µm.
    exclude : sequence of ndarray
        Polygons (y, x) in µm whose inside does not count.
    step_um : float
        Sampling step used to clip the line at the polygons.

    Returns
    -------
    float
        Length in µm (0 for fewer than two vertices).
    """
    v = np.asarray(vertices, float).reshape(-1, 2)
    if len(v) < 2:
        return 0.0
    seg = np.diff(v, axis=0)
    seglen = np.hypot(seg[:, 0], seg[:, 1])
    if not len(exclude):
        return float(seglen.sum())
    total = 0.0
    for a, d, ln in zip(v[:-1], seg, seglen, strict=True):
        if ln == 0:
            continue
        n = max(1, int(np.ceil(ln / step_um)))
        t = (np.arange(n) + 0.5) / n
        mids = a + t[:, None] * d
        total += ln * float((~points_in_regions(mids, exclude)).mean())
    return total


def line_pixels(vertices_px: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels a polyline (pixel vertices) passes, inside ``shape``.

    Parameters
    ----------
    vertices_px : ndarray, shape (N, 2)
        Polyline vertices (row, column) in pixels.
    shape : tuple of int
        The array's shape; pixels outside it are dropped.

    Returns
    -------
    rows, cols : ndarray of int
        The rasterised polyline (``skimage.draw.line`` per segment).
    """
    from skimage.draw import line as draw_line

    pts = np.round(np.asarray(vertices_px, float).reshape(-1, 2)).astype(int)
    rows, cols = [np.zeros(0, int)], [np.zeros(0, int)]
    for (y0, x0), (y1, x1) in zip(pts[:-1], pts[1:], strict=False):
        rr, cc = draw_line(y0, x0, y1, x1)
        ok = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        rows.append(rr[ok])
        cols.append(cc[ok])
    return np.concatenate(rows), np.concatenate(cols)
