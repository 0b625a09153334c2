"""Counting fibre crossings of the DEJ by the EFNS/PNS rules, and IENFD."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage import morphology

from .._numerics._edt import distance_transform_edt as edt  # scipy's, compiled
from .._numerics._labelstats import label_extrema
from .._numerics._noise import channel_signal_ratio
from ._epidermis import (
    Epidermis,
    NoEpidermisError,
    epidermis_from_polylines,
    find_epidermis,
)
from ._fibres import trace_fibres
from ._params import SkinParams

__all__ = ["SkinResult", "analyze_skin", "count_crossings", "dej_depth", "ienfd",
           "qc_flag", "recount_skin", "summarize"]

_EIGHT = np.ones((3, 3), bool)
CROSSING_COLUMNS = ["y_um", "x_um", "fibre_id"]


def ienfd(n_crossings: int, length_mm: float) -> float:
    """Return the intraepidermal nerve fibre density.

    Parameters
    ----------
    n_crossings : int
        Counted fibres.
    length_mm : float
        Length of the epidermis (along its surface), mm.

    Returns
    -------
    float
        Fibres per mm (NaN when the length is not positive).
    """
    if length_mm <= 0:
        return float("nan")
    return float(n_crossings) / float(length_mm)


def _raster_line(points_px: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean image of a polyline (pixel coordinates), sampled every 0.25 px."""
    p = np.asarray(points_px, float)
    out = np.zeros(shape, bool)
    if len(p) == 0:
        return out
    if len(p) > 1:
        seg = np.hypot(*np.diff(p, axis=0).T)
        s = np.concatenate([[0], np.cumsum(seg)])
        t = np.arange(0, s[-1] + 1e-9, 0.25)
        p = np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], 1)
    iy, ix = np.round(p[:, 0]).astype(int), np.round(p[:, 1]).astype(int)
    ok = (iy >= 0) & (iy < shape[0]) & (ix >= 0) & (ix < shape[1])
    out[iy[ok], ix[ok]] = True
    return out


def dej_depth(epidermis: Epidermis, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Signed distance to the DEJ, µm: positive inside the epidermis, negative outside.

    Parameters
    ----------
    epidermis : Epidermis
        Mask and DEJ polyline.
    shape : tuple of int, optional
        Image shape (default: the mask's).

    Returns
    -------
    ndarray of float32, shape (Y, X)
        Depth into the epidermis measured from the DEJ line.
    """
    shape = epidermis.mask.shape if shape is None else shape
    px = epidermis.pixel_size_um
    line = _raster_line(np.asarray(epidermis.dej_um, float) / px, shape)
    if not line.any():
        return np.full(shape, -np.inf, np.float32)
    dist = edt(~line).astype(np.float32) * px
    return np.where(epidermis.mask, dist, -dist)


def count_crossings(
    fibre_labels: np.ndarray,
    epidermis: Epidermis,
    *,
    pixel_size_um: float,
    params: SkinParams | None = None,
    depth: np.ndarray | None = None,
) -> pd.DataFrame:
    """Count fibres crossing the DEJ into the epidermis (EFNS/PNS rules).

    Counting runs on the fibres' centre lines, cut ``crossing_band_um`` below the
    DEJ, so fibres that join only in the dermis (the sub-epidermal plexus) are
    treated separately. A connected piece qualifies when it reaches at least
    ``min_penetration_um`` into the epidermis (and, when it reaches less than
    ``shallow_entry_um``, crosses the DEJ steeply: its centre line at most
    ``max_entry_obliquity`` µm long per µm of depth spanned); each of its stubs that reaches at
    least ``dermal_extent_um`` below the DEJ is one fibre crossing (stubs closer
    than ``merge_distance_um`` merge); a piece that comes down to the DEJ without
    such a stub (its dermal part too faint to trace) is one crossing, at its deepest
    stub, and so is a piece reaching at least ``shallow_entry_um`` into the epidermis
    whose lower end stops at most ``entry_tolerance_um`` short of the DEJ (the DEJ is
    drawn to a µm or two; a fragment ending higher up does not count).
    Hence branches that split inside the epidermis count once, two fibres that touch
    inside the epidermis count twice,
    fragments wholly inside the epidermis do not count, and neither do fibres
    running along or beneath the DEJ without entering, nor dermal bundles. Pieces
    beyond an out-of-plane gap inside the epidermis do not reach the dermis, so a
    gap never counts twice.

    Parameters
    ----------
    fibre_labels : ndarray of int, shape (Y, X)
        Traced fibres (see :func:`trace_fibres`), or any fibre mask.
    epidermis : Epidermis
        Epidermis mask and DEJ polyline.
    pixel_size_um : float
        Pixel size in µm.
    params : SkinParams, optional
        Counting parameters.
    depth : ndarray of float32, optional
        ``dej_depth(epidermis, fibre_labels.shape)``, when already computed.

    Returns
    -------
    pandas.DataFrame
        One row per counted fibre: ``y_um, x_um`` (where the fibre meets the DEJ),
        ``fibre_id`` (label of the fibre in ``fibre_labels`` at that point),
        ``penetration_um`` (deepest point inside the epidermis).
    """
    p = params or SkinParams()
    px = float(pixel_size_um)
    fl = np.asarray(fibre_labels)
    depth = dej_depth(epidermis, fl.shape) if depth is None else depth
    # count on the centre lines, so fibre width never reaches across the band
    skel = morphology.skeletonize(fl > 0)
    near = skel & (depth > -p.crossing_band_um)
    lab, n = ndi.label(near, _EIGHT)
    rows = []
    if n:
        dmin, dmax = label_extrema(depth, lab, n)
        objs = ndi.find_objects(lab)
        # a piece that comes down to the DEJ but whose dermal part is too faint to trace
        # (no stub ``dermal_extent_um`` deep) still entered there: it counts once; so does
        # one reaching well into the epidermis whose lower end stops just short of the
        # drawn DEJ (within the DEJ's placement error): its lowest point is its stub
        short = ((dmin > 0) & (dmin <= p.entry_tolerance_um)
                 & (dmax >= max(p.shallow_entry_um, p.min_penetration_um)))
        for i in np.flatnonzero((dmax >= p.min_penetration_um) & ((dmin <= 0) | short)):
            sl = objs[i]
            sub = lab[sl] == i + 1
            dsub = depth[sl]
            if dmax[i] < p.shallow_entry_um:
                # a shallow piece must cross the DEJ, not run along it weaving across the
                # drawn line (whose placement error is a few µm)
                span = float(dmax[i] - dmin[i])
                if int(sub.sum()) * px > p.max_entry_obliquity * max(span, px):
                    continue
            # each dermal stub that enters this intraepidermal tree is one fibre: branches
            # splitting inside the epidermis share a stub, fibres meeting there do not
            stubs, ns = ndi.label(sub & (dsub <= max(float(dmin[i]), 0.0)), _EIGHT)
            if ns == 0:
                continue
            sids = np.arange(1, ns + 1)
            smin = label_extrema(dsub, stubs, ns)[0]
            entries = []
            deep = sids[smin <= -p.dermal_extent_um]
            if deep.size == 0:
                deep = sids[[int(np.argmin(smin))]]
            for j in deep:
                cand = np.where(stubs == j, dsub, -np.inf)
                yy, xx = np.unravel_index(np.argmax(cand), cand.shape)
                y, x = int(yy + sl[0].start), int(xx + sl[1].start)
                if all(np.hypot(y - a, x - b) * px > p.merge_distance_um for a, b in entries):
                    entries.append((y, x))
            for y, x in entries:
                rows.append((y * px, x * px, int(fl[y, x]), float(dmax[i])))
    df = pd.DataFrame(rows, columns=[*CROSSING_COLUMNS, "penetration_um"])
    df["fibre_id"] = df["fibre_id"].astype(np.int64)
    return df.sort_values(["x_um", "y_um"], ignore_index=True)


def _split_at_dej(labels: np.ndarray, depth: np.ndarray, band_um: float) -> np.ndarray:
    """Relabel fibres: the parts above ``-band_um`` and those below get separate ids."""
    fmask = labels > 0
    upper = fmask & (depth > -band_um)
    lu, nu = ndi.label(upper, _EIGHT)
    ll, _ = ndi.label(fmask & ~upper, _EIGHT)
    out = lu.astype(np.int32)
    out[ll > 0] = ll[ll > 0] + nu
    return out


@dataclass
class SkinResult:
    """Result of the IENFD analysis of one skin section.

    Attributes
    ----------
    epidermis : ndarray of bool, shape (Y, X)
        Epidermis mask (stratum corneum included).
    fibres : ndarray of int32, shape (Y, X)
        Traced fibres. The part of each fibre above the crossing band (inside or
        just below the epidermis) has its own id, so a counted crossing's
        ``fibre_id`` names exactly the intraepidermal fibre it counts; dermal
        parts have further ids.
    crossings : pandas.DataFrame
        ``y_um, x_um, fibre_id, penetration_um``: one row per counted fibre.
    dej_um, surface_um : ndarray, shape (N, 2)
        DEJ and epidermal surface polylines, ``(y_um, x_um)``.
    epidermis_length_mm : float
        Length of the epidermis along its surface, mm.
    dej_length_mm : float
        Length of the DEJ, mm.
    n_crossings : int
        Number of counted fibres.
    ienfd_per_mm : float
        ``n_crossings / epidermis_length_mm``.
    pixel_size_um : float
        Pixel size in µm.
    dej_source : str
        ``"collagen_iv"``, ``"nuclei"``, ``"autofluorescence"`` or ``"reviewer"``.
    qc : dict
        Plausibility figures of the DEJ (see :attr:`Epidermis.qc`).
    """

    epidermis: np.ndarray
    fibres: np.ndarray
    crossings: pd.DataFrame
    dej_um: np.ndarray
    surface_um: np.ndarray
    epidermis_length_mm: float
    dej_length_mm: float
    n_crossings: int
    ienfd_per_mm: float
    pixel_size_um: float
    dej_source: str = "reviewer"
    qc: dict = field(default_factory=dict)


def _result(fibres, epi: Epidermis, px: float, p: SkinParams,
            depth: np.ndarray | None = None) -> SkinResult:
    depth = dej_depth(epi, fibres.shape) if depth is None else depth
    fibres = _split_at_dej(np.asarray(fibres), depth, p.crossing_band_um)
    cr = count_crossings(fibres, epi, pixel_size_um=px, params=p, depth=depth)
    length_mm = epi.surface_length_um / 1000.0
    n = int(len(cr))
    return SkinResult(
        epidermis=epi.mask.astype(bool), fibres=fibres, crossings=cr,
        dej_um=np.asarray(epi.dej_um, float), surface_um=np.asarray(epi.surface_um, float),
        epidermis_length_mm=length_mm, dej_length_mm=epi.dej_length_um / 1000.0,
        n_crossings=n, ienfd_per_mm=ienfd(n, length_mm), pixel_size_um=px,
        dej_source=getattr(epi, "dej_source", "reviewer"), qc=dict(getattr(epi, "qc", {})),
    )


def analyze_skin(
    fibre: np.ndarray,
    *,
    pixel_size_um: float,
    membrane: np.ndarray | None = None,
    nuclei: np.ndarray | None = None,
    params: SkinParams | None = None,
    tissue: np.ndarray | None = None,
) -> SkinResult:
    """Measure the intraepidermal nerve fibre density (IENFD) of a skin section.

    Parameters
    ----------
    fibre : ndarray, shape (Y, X)
        Fibre stain (PGP9.5).
    pixel_size_um : float
        Pixel size in µm.
    membrane : ndarray, shape (Y, X), optional
        Basement-membrane stain (collagen IV): places the DEJ on its line.
    nuclei : ndarray, shape (Y, X), optional
        Nuclear stain (DAPI): marks the epidermis by its dense nuclei.
    params : SkinParams, optional
        Pipeline parameters (defaults when omitted).
    tissue : ndarray of bool, shape (Y, X), optional
        Tissue versus slide background (see :func:`find_epidermis`).

    Returns
    -------
    SkinResult
        Epidermis, DEJ and surface, traced fibres, counted crossings and IENFD.
        A section without fibres gives 0 crossings and IENFD 0.0.

    Raises
    ------
    NoEpidermisError
        No epidermis could be found (blank or dermis-only image).
    """
    p = params or SkinParams()
    px = float(pixel_size_um)
    fibre = np.asarray(fibre)
    # a channel of noise only would place the DEJ on noise ridges: leave it out
    unused = [role for role, ch in (("membrane", membrane), ("nuclei", nuclei))
              if ch is not None and p.min_signal_ratio > 0
              and channel_signal_ratio(ch) < p.min_signal_ratio]
    try:
        epi = find_epidermis(pixel_size_um=px, nuclei=None if "nuclei" in unused else nuclei,
                             membrane=None if "membrane" in unused else membrane,
                             fibre=fibre, params=p, tissue=tissue)
    except NoEpidermisError as exc:
        if not unused:
            raise
        raise NoEpidermisError(f"{exc} (channel role(s) {', '.join(unused)} left out: no "
                               "structure above their pixel noise; the wrong channel, or a "
                               "failed stain?)") from None
    depth = dej_depth(epi, fibre.shape)
    region = depth > -(p.crossing_band_um + 20.0)
    fibres = trace_fibres(fibre, pixel_size_um=px, params=p, mask=region)
    res = _result(fibres, epi, px, p, depth)
    if unused:
        res.qc["no_signal"] = unused
    return res


def recount_skin(
    fibres: np.ndarray,
    *,
    pixel_size_um: float,
    dej_um: np.ndarray,
    surface_um: np.ndarray,
    epidermis: np.ndarray | None = None,
    params: SkinParams | None = None,
) -> SkinResult:
    """Recount crossings with a given (e.g. reviewer-edited) DEJ and surface.

    No segmentation is redone: the traced (or edited) fibres are counted against
    the given lines.

    Parameters
    ----------
    fibres : ndarray of int, shape (Y, X)
        Fibre labels or mask (e.g. ``SkinResult.fibres``, possibly edited).
    pixel_size_um : float
        Pixel size in µm.
    dej_um, surface_um : ndarray, shape (N, 2)
        DEJ and surface polylines, ``(y_um, x_um)``.
    epidermis : ndarray of bool, optional
        Epidermis mask; by default the polygon between surface and DEJ.
    params : SkinParams, optional
        Counting parameters.

    Returns
    -------
    SkinResult
        As :func:`analyze_skin`.
    """
    p = params or SkinParams()
    fibres = np.asarray(fibres)
    if fibres.dtype == bool:
        fibres = ndi.label(fibres, _EIGHT)[0]
    if epidermis is None:
        epi = epidermis_from_polylines(surface_um, dej_um, fibres.shape,
                                       pixel_size_um=pixel_size_um)
    else:
        epi = Epidermis(mask=np.asarray(epidermis, bool), dej_um=np.asarray(dej_um, float),
                        surface_um=np.asarray(surface_um, float), pixel_size_um=pixel_size_um)
    return _result(fibres, epi, float(pixel_size_um), p)


def qc_flag(result: SkinResult, params: SkinParams | None = None) -> str:
    """Return the quality flags of a section ('' when nothing looks implausible).

    Flags (joined by ``;``): ``thin_epidermis`` / ``thick_epidermis`` (median
    surface-to-DEJ distance under ``min_epidermis_thickness_um`` or over 90 % of
    ``max_epidermis_thickness_um``), ``dej_length`` (DEJ shorter than 0.9 x or longer
    than 3 x the surface), ``dej_jagged`` (over 25 % of the DEJ at the slope bound),
    ``membrane_gaps`` (collagen IV DEJ with a ridge under less than half of it); first,
    ``membrane_no_signal`` / ``nuclei_no_signal`` (that channel showed no structure
    above its pixel noise and was left out: ``SkinParams.min_signal_ratio``).

    Parameters
    ----------
    result : SkinResult
        Analysis result.
    params : SkinParams, optional
        The parameters it was made with.

    Returns
    -------
    str
        Flags, most important first.
    """
    p = params or SkinParams()
    q = result.qc
    flags = [f"{role}_no_signal" for role in q.get("no_signal", ())]
    th = q.get("epidermis_thickness_um")
    if th is not None and th < p.min_epidermis_thickness_um:
        flags.append("thin_epidermis")
    if th is not None and th > 0.9 * p.max_epidermis_thickness_um:
        flags.append("thick_epidermis")
    ratio = _dej_ratio(result)
    if np.isfinite(ratio) and not 0.9 <= ratio <= 3.0:
        flags.append("dej_length")
    if q.get("dej_at_slope_bound", 0.0) > 0.25:
        flags.append("dej_jagged")
    sup = q.get("membrane_support", float("nan"))
    if result.dej_source == "collagen_iv" and np.isfinite(sup) and sup < 0.5:
        flags.append("membrane_gaps")
    return ";".join(flags)


def _dej_ratio(result: SkinResult) -> float:
    if result.epidermis_length_mm <= 0:
        return float("nan")
    return float(result.dej_length_mm / result.epidermis_length_mm)


def summarize(result: SkinResult, params: SkinParams | None = None) -> dict:
    """Return the per-image summary of a :class:`SkinResult`.

    Parameters
    ----------
    result : SkinResult
        Analysis result.
    params : SkinParams, optional
        The parameters it was made with (for the quality flags).

    Returns
    -------
    dict
        ``n_crossings, epidermis_length_mm, dej_length_mm, ienfd_per_mm, dej_source,
        dej_to_surface_ratio, epidermis_thickness_um, qc_flag`` (see :func:`qc_flag`).
    """
    return {
        "n_crossings": int(result.n_crossings),
        "epidermis_length_mm": float(result.epidermis_length_mm),
        "dej_length_mm": float(result.dej_length_mm),
        "ienfd_per_mm": float(result.ienfd_per_mm),
        "dej_source": result.dej_source,
        "dej_to_surface_ratio": _dej_ratio(result),
        "epidermis_thickness_um": float(result.qc.get("epidermis_thickness_um", np.nan)),
        "qc_flag": qc_flag(result, params),
    }
