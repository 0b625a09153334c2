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
