"""Re-measure some neurons of a section on a crop, exactly as on the whole section.

Once the section's :class:`~histo_fms.drg.DrgContext` is fixed, the measurement of a
neuron depends only on the labels and images within
:func:`~histo_fms.drg._context.measurement_radius_px` of its pixels (and the lipofuscin
mask there, which depends on the images within :func:`lipofuscin_radius_px` more). A
review edit therefore changes the rows of the neurons it touched and of those within
that radius of its pixels only; :func:`measure_neurons_crop` re-measures such neurons
on a crop (origin on the block grid of every background map), so their rows and rings
equal a whole-section :func:`~histo_fms.drg.measure_drg` bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._context import (
    DrgContext,
    alignment_px,
    context_margins_px,
    lipofuscin_roles,
    measurement_radius_px,
)
from ._lipofuscin import detect_lipofuscin
from ._measure import TABLE_COLUMNS, measure_drg, size_class
from ._params import DrgParams

Box = tuple[int, int, int, int]  # y0, x0, y1, x1 (half-open)


def lipofuscin_radius_px(params: DrgParams, pixel_size_um: float) -> int:
    """Distance (px) beyond which the images do not change the lipofuscin mask.

    Parameters
    ----------
    params : DrgParams
        Parameters.
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    int
        Radius in pixels (0 when lipofuscin is not rejected).
    """
    p = params
    px = float(pixel_size_um)
    if not p.reject_lipofuscin:
        return 0
    _, lipo = context_margins_px(p, px)
    return (lipo + int(np.ceil(p.lipofuscin_max_area_um2 / px**2))
            + int(round(p.lipofuscin_dilate_um / px)) + 1)


def is_local(params: DrgParams) -> bool:
    """Whether a neuron's measurement is local once the context is fixed.

    With several candidate ``glow_sigma_um`` the blur is chosen by the fit over all
    the section's neurons (a whole-section choice): then nothing can be re-measured
    locally.

    Parameters
    ----------
    params : DrgParams
        Parameters.

    Returns
    -------
    bool
    """
    sig = params.glow_sigma_um
    return not (params.glow_correction and isinstance(sig, tuple) and len(sig) > 1)


def grow_box(box: Box, r: int, shape: tuple[int, int], align: int = 1) -> Box:
    """Grow a box by ``r`` px on every side (origin down to a multiple of ``align``).

    Parameters
    ----------
    box : tuple of int
        ``(y0, x0, y1, x1)``.
    r : int
        Margin in pixels.
    shape : tuple of int
        Image shape (the box is clipped to it).
    align : int
        The grown box's origin is rounded down to a multiple of this.

    Returns
    -------
    tuple of int
    """
    y0, x0 = max(0, box[0] - r), max(0, box[1] - r)
    y0, x0 = y0 - y0 % align, x0 - x0 % align
    return (y0, x0, min(shape[0], box[2] + r), min(shape[1], box[3] + r))


def measure_neurons_crop(
    channels: Mapping[str, Any],
    labels: Any,
    boxes: Mapping[int, Box],
    *,
    pixel_size_um: float,
    params: DrgParams,
    context: DrgContext,
) -> tuple[pd.DataFrame, tuple[slice, slice], np.ndarray]:
    """Measure some neurons on a crop of the section, as on the whole section.

    Parameters
    ----------
    channels : mapping of str to array_like
        Channel role (``"neuron"``, ``"igg"``, ``"sgc"``, ``"nuclei"``) -> the whole 2-D
        channel; only the crop is read (numpy, zarr or dask arrays).
    labels : array_like of int, shape (Y, X)
        The section's neuron labels (only the crop is read).
    boxes : mapping of int to (y0, x0, y1, x1)
        The neurons to measure and the bounding box of each one's pixels.
    pixel_size_um : float
        Pixel size in µm.
    params : DrgParams
        Pipeline parameters (:func:`is_local` must hold).
    context : DrgContext
        The whole section's context, with its lipofuscin thresholds when lipofuscin is
        rejected (:func:`~histo_fms.drg.compute_context`).

    Returns
    -------
    table : pandas.DataFrame
        One row per neuron of ``boxes`` present in the labels (columns
        :data:`~histo_fms.drg._measure.TABLE_COLUMNS`), section coordinates; equal to
        those rows of :func:`~histo_fms.drg.measure_drg` on the whole section.
    crop : (slice, slice)
        The region measured.
    rings : ndarray of int32
        The measured rings in ``crop``; exact for the neurons of ``boxes`` only.

    Raises
    ------
    ValueError
        Parameters that make the measurement non-local, or a context without the
        lipofuscin thresholds it needs.
    """
    p = params
    px = float(pixel_size_um)
    if not is_local(p):
        raise ValueError("several glow_sigma_um: the measurement is not local")
    shape = tuple(int(s) for s in np.shape(labels))
    if not boxes:
        raise ValueError("no neurons to measure")
    union = (min(b[0] for b in boxes.values()), min(b[1] for b in boxes.values()),
             max(b[2] for b in boxes.values()), max(b[3] for b in boxes.values()))
    a = alignment_px(p, px)
    crop = grow_box(union, measurement_radius_px(p, px), shape, a)
    sl = (slice(crop[0], crop[2]), slice(crop[1], crop[3]))
    roles = {k: np.asarray(v[sl]) for k, v in channels.items() if v is not None}
    lab = np.asarray(labels[sl]).astype(np.int32, copy=False)
    lipo = None
    lr = lipofuscin_roles(roles, p)
    if lr:
        thr = context.lipofuscin_thresholds
        if not all(k in thr for k in lr):
            raise ValueError("the context lacks the lipofuscin thresholds")
        outer = grow_box(crop, lipofuscin_radius_px(p, px), shape, a)
        osl = (slice(outer[0], outer[2]), slice(outer[1], outer[3]))
        dark = context.dark_levels
        lipo = detect_lipofuscin([np.asarray(channels[k][osl]) for k in lr], pixel_size_um=px,
                                 min_contrast=p.lipofuscin_min_contrast,
                                 quantile=p.lipofuscin_quantile,
                                 max_area_um2=p.lipofuscin_max_area_um2,
                                 dilate_um=p.lipofuscin_dilate_um,
                                 dark_levels=[float(dark[k]) for k in lr],
                                 medians=[context.medians[k] for k in lr],
                                 maxima=[context.maxima[k] for k in lr],
                                 thresholds=[thr[k] for k in lr])
        lipo = lipo[crop[0] - outer[0]:crop[2] - outer[0], crop[1] - outer[1]:crop[3] - outer[1]]
    res = measure_drg(roles["neuron"], roles.get("igg"), pixel_size_um=px, sgc=roles.get("sgc"),
                      nuclei=roles.get("nuclei"), params=p, labels=lab, context=context,
                      lipofuscin=lipo if lipo is not None else np.zeros(lab.shape, bool))
    ids = np.array(sorted(int(i) for i in boxes), np.int64)
    tab = res.table[res.table["neuron_id"].isin(ids)].copy()
    _section_morphology(tab, lab, crop, shape, px, p)
    return tab[TABLE_COLUMNS].reset_index(drop=True), sl, res.rings


def _section_morphology(tab: pd.DataFrame, lab: np.ndarray, crop: Box, shape: tuple[int, int],
                        px: float, p: DrgParams) -> None:
    """Centroids and border contact of a crop's neurons in section coordinates, in place.

    The pixel-coordinate sums are integers (exact in float64), so the centroids equal
    the whole section's bit for bit.
    """
    if not len(tab):
        return
    nmax = int(lab.max())
    flat = lab.ravel()
    idx = np.flatnonzero(flat)
    v = flat[idx]
    yy, xx = np.divmod(idx, lab.shape[1])
    cnt = np.bincount(v, minlength=nmax + 1).astype(float)
    ys = np.bincount(v, weights=yy + crop[0], minlength=nmax + 1)
    xs = np.bincount(v, weights=xx + crop[1], minlength=nmax + 1)
    border = np.zeros(nmax + 1, bool)
    edges = []
    if crop[0] == 0:
        edges.append(lab[0])
    if crop[2] == shape[0]:
        edges.append(lab[-1])
    if crop[1] == 0:
        edges.append(lab[:, 0])
    if crop[3] == shape[1]:
        edges.append(lab[:, -1])
    for e in edges:
        border[e] = True
    border[0] = False
    i = tab["neuron_id"].to_numpy(np.int64)
    tab["y_um"] = ys[i] / cnt[i] * px
    tab["x_um"] = xs[i] / cnt[i] * px
    tab["touches_border"] = border[i]
    area = cnt[i] * px * px
    tab["area_um2"] = area
    diam = np.sqrt(4 * area / np.pi)
    tab["diameter_um"] = diam
    tab["size_class"] = pd.Series(size_class(diam, p.size_class_bounds_um), dtype=object,
                                 index=tab.index)
