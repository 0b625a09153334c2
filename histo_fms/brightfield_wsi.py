"""Whole-slide bright-field scans in bounded memory: tissue pieces, windows, one result.

A scan too large to analyse whole (more pixels than ``brightfield.memory_gib`` allows) is
never loaded: the slide is read once on a coarse grid (``rgb[::s, ::s]``, full-resolution
pixels) to estimate the white level and stain vectors and to find the tissue; each tissue
piece is then read from the file as a region at full resolution, colour-deconvolved in
float32 blocks and analysed by :func:`histo_fms.skin.analyze_skin`. A piece larger than
the budget is analysed in windows along its long axis that overlap by
``brightfield.window_overlap_um``: each window owns the crossings and the length of
epidermis in its core (the overlaps are split in the middle), and a crossing seen on both
sides of a core boundary is counted once. Crossings, lines and labels are in slide
coordinates; the file still gives one summary row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from .parallel._local_read import read_local

#: Peak working memory per analysed pixel (RGB region, stain planes, skin analysis), bytes;
#: measured with benchmarks/bench_brightfield_wsi.py (about 100 B/px in the skin analysis).
BYTES_PER_PIXEL = 130

__all__ = ["BYTES_PER_PIXEL", "RegionResult", "Window", "analyze_tissue_pieces",
           "clip_polyline", "find_tissue_pieces", "needs_regions", "plan_windows",
           "region_budget_px", "run_brightfield_pieces", "run_brightfield_wsi",
           "window_digest"]


def region_budget_px(memory_gib: float) -> int:
    """Return the most pixels analysed at once within ``memory_gib`` GiB."""
    return max(1, int(float(memory_gib) * 2**30 / BYTES_PER_PIXEL))


def needs_regions(shape_yx: tuple[int, int], memory_gib: float) -> bool:
    """Tell whether an image is too large to analyse whole within ``memory_gib`` GiB."""
    return int(shape_yx[0]) * int(shape_yx[1]) > region_budget_px(memory_gib)


@dataclass(frozen=True)
class Window:
    """One region analysed at full resolution (pixel indices of the slide, half-open).

    ``axis`` is the axis the windows of a piece follow (0: y, 1: x); ``core`` is the
    interval along it that this window owns.
    """

    piece: int
    y0: int
    y1: int
    x0: int
    x1: int
    axis: int
    core0: float
    core1: float

    @property
    def n_pixels(self) -> int:
        """Pixels in the window."""
        return (self.y1 - self.y0) * (self.x1 - self.x0)


def find_tissue_pieces(
    od_sum: np.ndarray,
    step: int,
    pixel_size_um: float,
    *,
    threshold: float = 0.05,
    smooth_um: float = 10.0,
    close_um: float = 50.0,
    min_area_um2: float = 20_000.0,
    margin_um: float = 100.0,
    full_shape: tuple[int, int] | None = None,
) -> list[tuple[int, int, int, int]]:
    """Find the tissue pieces of a slide from a coarse optical-density map.

    Parameters
    ----------
    od_sum : ndarray, shape (y, x)
        Summed optical density of the grid sample (``rgb[::step, ::step]``).
    step : int
        The grid step of the sample (full-resolution pixels per sample).
    pixel_size_um : float
        Full-resolution pixel size.
    threshold : float
        Smoothed OD above which a pixel is tissue (glass is about 0).
    smooth_um, close_um : float
        Gaussian smoothing and morphological closing before labelling, µm.
    min_area_um2 : float
        Smaller objects (dust, debris) are left out.
    margin_um : float
        Glass kept around each piece (the epidermal surface needs the slide beside it).
    full_shape : tuple of int, optional
        Full-resolution (Y, X) to clip the boxes to (default ``od_sum.shape * step``).

    Returns
    -------
    list of tuple
        ``(y0, y1, x0, x1)`` full-resolution boxes (half-open), overlapping boxes merged,
        in reading order.
    """
    full_shape = full_shape or (od_sum.shape[0] * step, od_sum.shape[1] * step)
    od_sum = np.asarray(od_sum, np.float32)
    # work at about 5 µm per pixel: block means of the sample
    f = max(1, int(round(5.0 / (float(step) * float(pixel_size_um)))))
    hy, hx = -(-od_sum.shape[0] // f), -(-od_sum.shape[1] // f)
    pad = np.pad(od_sum, ((0, hy * f - od_sum.shape[0]), (0, hx * f - od_sum.shape[1])),
                 mode="edge")
    coarse = pad.reshape(hy, f, hx, f).mean(axis=(1, 3))
    step = step * f
    sp = float(step) * float(pixel_size_um)  # µm per coarse pixel
    sm = ndi.gaussian_filter(coarse, max(smooth_um / sp, 0.5))
    mask = (sm > threshold).astype(np.uint8)
    r = int(round(close_um / sp))
    if r > 0:  # closing with a square, padded so it does not grow from the border
        size = 2 * r + 1
        mask = ndi.minimum_filter(ndi.maximum_filter(np.pad(mask, r), size), size)[r:-r, r:-r]
    lab, n = ndi.label(mask)
    if n == 0:
        return []
    areas = ndi.sum_labels(np.ones_like(lab), lab, np.arange(1, n + 1)) * sp * sp
    m = int(np.ceil(margin_um / pixel_size_um))
    boxes = []
    for i, sl in enumerate(ndi.find_objects(lab)):
        if sl is None or areas[i] < min_area_um2:
            continue
        boxes.append([max(0, sl[0].start * step - m), min(full_shape[0], sl[0].stop * step + m),
                      max(0, sl[1].start * step - m), min(full_shape[1], sl[1].stop * step + m)])
    merged = True
    while merged:  # boxes whose margins overlap become one piece
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                    boxes[i] = [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]),
                                max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [tuple(int(v) for v in b) for b in sorted(boxes)]


def plan_windows(box: tuple[int, int, int, int], budget_px: int, overlap_px: int,
                 piece: int = 0) -> list[Window]:
    """Split a tissue piece into overlapping windows along its long axis.

    Parameters
    ----------
    box : tuple of int
        ``(y0, y1, x0, x1)`` of the piece.
    budget_px : int
        Most pixels per window (:func:`region_budget_px`).
    overlap_px : int
        Overlap of neighbouring windows, pixels.
    piece : int
        Index of the piece (recorded in the windows).

    Returns
    -------
    list of Window
        One window when the piece fits the budget. Windows are at least three overlaps
        long, so a piece whose short side alone exceeds the budget gets windows over it.
    """
    y0, y1, x0, x1 = box
    axis = 1 if (x1 - x0) >= (y1 - y0) else 0
    lo, hi = (x0, x1) if axis == 1 else (y0, y1)
    long_, short = hi - lo, (y1 - y0) if axis == 1 else (x1 - x0)
    win = max(budget_px // max(short, 1), 3 * overlap_px, 1)
    if win >= long_:
        return [Window(piece, y0, y1, x0, x1, axis, -np.inf, np.inf)]
    n = int(np.ceil((long_ - overlap_px) / (win - overlap_px)))
    starts = np.round(np.linspace(lo, hi - win, n)).astype(int)
    ends = starts + win
    bounds = [-np.inf] + [(ends[i] + starts[i + 1]) / 2.0 for i in range(n - 1)] + [np.inf]
    out = []
    for i in range(n):
        if axis == 1:
            out.append(Window(piece, y0, y1, int(starts[i]), int(ends[i]), 1, bounds[i],
                              bounds[i + 1]))
        else:
            out.append(Window(piece, int(starts[i]), int(ends[i]), x0, x1, 0, bounds[i],
                              bounds[i + 1]))
    return out


def clip_polyline(points: np.ndarray, axis: int, lo: float, hi: float
                  ) -> tuple[np.ndarray, float]:
    """Keep the part of a polyline whose ``axis`` coordinate lies in ``[lo, hi)``.

    Parameters
    ----------
    points : ndarray, shape (N, 2)
        Vertices (y, x).
    axis : int
        Coordinate compared (0: y, 1: x).
    lo, hi : float
        The interval (may be infinite).

    Returns
    -------
    kept : ndarray, shape (M, 2)
        The vertices inside, with the points where the line enters and leaves.
    length : float
        Length of the polyline inside the interval.
    """
    p = np.asarray(points, float).reshape(-1, 2)
    if len(p) < 2:
        inside = p[(p[:, axis] >= lo) & (p[:, axis] < hi)] if len(p) else p
        return inside, 0.0
    kept: list[np.ndarray] = []
    length = 0.0
    for a, b in zip(p[:-1], p[1:], strict=True):
        da = b[axis] - a[axis]
        if da == 0:
            t0, t1 = (0.0, 1.0) if lo <= a[axis] < hi else (1.0, 0.0)
        else:
            ta, tb = (lo - a[axis]) / da, (hi - a[axis]) / da
            t0, t1 = max(0.0, min(ta, tb)), min(1.0, max(ta, tb))
        if t1 > t0:
            q0, q1 = a + t0 * (b - a), a + t1 * (b - a)
            length += float(np.hypot(*(q1 - q0)))
            if not kept or not np.allclose(kept[-1], q0):
                kept.append(q0)
            kept.append(q1)
    return (np.array(kept) if kept else np.zeros((0, 2))), length


def _dedupe(kept: pd.DataFrame, previous: pd.DataFrame, boundary_um: float, axis_col: str,
            distance_um: float) -> pd.DataFrame:
    """Drop crossings of ``kept`` that ``previous`` (the neighbour window) already counted."""
    if kept.empty or previous.empty or not np.isfinite(boundary_um):
        return kept
    near = (kept[axis_col] - boundary_um).abs() <= distance_um
    if not near.any():
        return kept
    prev = previous.loc[(previous[axis_col] - boundary_um).abs() <= distance_um,
                        ["y_um", "x_um"]].to_numpy()
    if not len(prev):
        return kept
    pts = kept[["y_um", "x_um"]].to_numpy()
    d = np.sqrt(((pts[:, None, :] - prev[None, :, :]) ** 2).sum(-1)).min(1)
    return kept.loc[~(near.to_numpy() & (d <= distance_um))]


#: Glass kept around a tissue piece of a window when it is analysed on its own, µm.
PIECE_MARGIN_UM = 60.0
#: Tissue pieces of a window with less area than this inside its core are not analysed,
#: µm²: debris, or the edge of a section that the neighbouring window measures (reported
#: as ``skipped``, not failed).
MIN_PIECE_AREA_UM2 = 20_000.0


@dataclass
class RegionResult:
    """One tissue piece of a window: analysed, failed or skipped.

    ``result`` is the :class:`~histo_fms.skin.SkinResult` of the crop ``(y0, x0)`` (pixel
    offset in the analysed region) or None, with ``reason`` saying why it failed (or, when
    ``skipped``, why it was not analysed: too little tissue in the window's core).
    """

    y0: int
    x0: int
    area_um2: float
    result: Any = None
    reason: str = ""
    skipped: bool = False

    @property
    def status(self) -> str:
        """``"ok"``, ``"failed"`` or ``"skipped"``."""
        return "ok" if self.result is not None else ("skipped" if self.skipped else "failed")


def analyze_tissue_pieces(fibre: np.ndarray, nuclei: np.ndarray, tissue: np.ndarray,
                          px: float, params: Any, *, core: np.ndarray | None = None,
                          margin_um: float = PIECE_MARGIN_UM,
                          min_area_um2: float = MIN_PIECE_AREA_UM2) -> list[RegionResult]:
    """Analyse each tissue piece of a region on its own (glass excluded, never dropped).

    Pieces of tissue separated by glass are labelled; each with at least ``min_area_um2``
    of tissue (inside ``core`` when given) is cropped with ``margin_um`` of glass around it
    and analysed by :func:`histo_fms.skin.analyze_skin` with its own tissue mask (the other
    pieces are background there). A piece without an epidermis is returned with the
    reason (failed). A smaller piece with tissue in the core is returned as skipped, with
    why: debris, or a sliver of a section whose tissue lies mostly in the window's
    overlap (its neighbour measures it). Pieces without tissue in the core are left out
    (they belong to a neighbouring window).

    Parameters
    ----------
    fibre, nuclei : ndarray, shape (Y, X)
        Chromogen and counterstain maps.
    tissue : ndarray of bool, shape (Y, X)
        Tissue versus glass (:func:`histo_fms.stain.tissue_mask`).
    px : float
        Pixel size, µm.
    params : SkinParams
        Skin parameters.
    core : ndarray of bool, shape (Y, X), optional
        The part of the region whose results are kept; pieces without tissue in it are
        not analysed (a piece in a window's overlap alone belongs to its neighbour).
    margin_um : float
        Glass kept around each piece.
    min_area_um2 : float
        Pieces with less tissue (in the core) are skipped.

    Returns
    -------
    list of RegionResult
        In reading order.
    """
    from .skin import NoEpidermisError, analyze_skin

    lab, n = ndi.label(tissue)
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    areas = np.bincount(lab.ravel(), minlength=n + 1)[1:] * px * px
    core_areas = (np.bincount(lab[core].ravel(), minlength=n + 1)[1:] * px * px
                  if core is not None else areas)
    m = int(np.ceil(margin_um / px))
    h, w = tissue.shape
    out = []
    for k, sl in zip(idx, ndi.find_objects(lab), strict=True):
        if sl is None or core_areas[k - 1] <= 0:
            continue
        y0, y1 = max(0, sl[0].start - m), min(h, sl[0].stop + m)
        x0, x1 = max(0, sl[1].start - m), min(w, sl[1].stop + m)
        r = RegionResult(y0, x0, float(areas[k - 1]))
        if core_areas[k - 1] < min_area_um2:
            r.skipped = True
            r.reason = (f"{core_areas[k - 1] / 1e6:.4f} mm² of tissue in the window's core "
                        f"< {min_area_um2 / 1e6:g} mm²: "
                        + ("debris" if areas[k - 1] < min_area_um2 else
                           "the rest lies in the overlap, measured by the neighbouring "
                           "window"))
            out.append(r)
            continue
        crop = (slice(y0, y1), slice(x0, x1))
        mask = lab[crop] == k
        try:
            r.result = analyze_skin(fibre[crop], pixel_size_um=px, nuclei=nuclei[crop],
                                    params=params, tissue=mask)
        except NoEpidermisError as exc:
            r.reason = " ".join(str(exc).split())
        out.append(r)
    return out


def run_brightfield_pieces(ch: dict[str, np.ndarray], px: float, cfg: Any, outdir: Path,
                           path: Path) -> dict:
    """Analyse a bright-field image held in memory, each tissue piece on its own.

    One piece (the usual case) is analysed as the whole image (with its glass mask); with
    several pieces separated by glass, each is analysed on its own
    (:func:`analyze_tissue_pieces`) and the file gives their crossings, lines (``dej``,
    ``surface``, then ``dej_2``, ``surface_2``, ...) and summed lengths, with per piece
    what it gave or why it failed in ``wsi_windows``. A piece without an epidermis is
    listed (``qc_flag`` ``window_failed``), never silently left out; one too small to
    analyse (debris) is listed as skipped.

    Parameters
    ----------
    ch : dict
        ``fibre``, ``nuclei`` (stain maps) and ``tissue`` (glass mask) of the image.
    px : float
        Pixel size, µm.
    cfg : PipelineConfig
        A bright-field skin configuration.
    outdir : Path
        The file's output folder.
    path : Path
        The input file (for messages).

    Returns
    -------
    dict
        The file's summary row.
    """
    from . import schema
    from .io import InputError, write_labels_zarr, write_polylines
    from .skin import NoEpidermisError, analyze_skin, summarize

    params = cfg.params()
    tissue = np.asarray(ch["tissue"], bool)
    lab, n = ndi.label(tissue)
    areas = np.bincount(lab.ravel(), minlength=n + 1)[1:] * px * px
    big = int(np.sum(areas >= MIN_PIECE_AREA_UM2))
    del lab
    if big <= 1:
        try:
            res = analyze_skin(ch["fibre"], pixel_size_um=px, nuclei=ch["nuclei"],
                               params=params, tissue=tissue)
        except NoEpidermisError as exc:
            raise InputError(path, f"no epidermis found ({exc})") from exc
        results = [(res, 0, 0)]
        rows: list[dict] = []
    else:
        parts = analyze_tissue_pieces(ch["fibre"], ch["nuclei"], tissue, px, params)
        results = [(q.result, q.y0, q.x0) for q in parts if q.result is not None]
        rows = [{"window": 1, "piece": 1, "tissue_piece": i + 1, "y0": q.y0, "x0": q.x0,
                 "tissue_area_mm2": round(q.area_um2 / 1e6, 4),
                 "status": q.status, "reason": q.reason,
                 "n_crossings": int(q.result.n_crossings) if q.result is not None else 0,
                 "surface_um": round(q.result.epidermis_length_mm * 1000, 1)
                 if q.result is not None else 0.0,
                 "dej_um": round(q.result.dej_length_mm * 1000, 1)
                 if q.result is not None else 0.0} for i, q in enumerate(parts)]
        if not results:
            why = "; ".join(dict.fromkeys(r["reason"] for r in rows))
            raise InputError(path, f"no epidermis found in any of the {len(parts)} tissue "
                                   f"pieces: {why}")
    shape = tissue.shape
    epi = np.zeros(shape, bool)
    fibres = np.zeros(shape, np.int32)
    lines: dict[str, np.ndarray] = {}
    tables, summs = [], []
    next_id = 0
    for k, (res, y0, x0) in enumerate(results):
        h, w = res.epidermis.shape
        reg = (slice(y0, y0 + h), slice(x0, x0 + w))
        f = np.where(res.fibres > 0, res.fibres + next_id, 0).astype(np.int32)
        fibres[reg] = np.where(f > 0, f, fibres[reg])
        epi[reg] |= res.epidermis
        off = np.array([y0 * px, x0 * px])
        suffix = "" if k == 0 else f"_{k + 1}"
        lines["dej" + suffix] = np.asarray(res.dej_um, float) + off
        lines["surface" + suffix] = np.asarray(res.surface_um, float) + off
        cr = res.crossings.copy()
        cr["y_um"] = cr["y_um"] + off[0]
        cr["x_um"] = cr["x_um"] + off[1]
        cr["fibre_id"] = np.where(cr["fibre_id"] > 0, cr["fibre_id"] + next_id,
                                  cr["fibre_id"])
        tables.append(cr)
        next_id += int(res.fibres.max())
        summs.append(summarize(res, params))
    write_labels_zarr({"epidermis": epi, "fibres": fibres}, outdir / "labels.zarr",
                      pixel_size_um=px)
    write_polylines(lines, outdir / "polylines.json")
    table = pd.concat(tables, ignore_index=True)
    schema.write_table(table, outdir / "crossings.csv", "crossings")
    if len(summs) == 1 and not rows:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                for k, v in summs[0].items()}
    nc = int(len(table))
    surf = sum(x["epidermis_length_mm"] for x in summs)
    dej = sum(x["dej_length_mm"] for x in summs)
    flags = [f for x in summs for f in str(x["qc_flag"]).split(";") if f]
    failed = [r for r in rows if r["status"] == "failed"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    if failed:
        flags.append("window_failed")
    src = [x["dej_source"] for x in summs]
    return {
        "n_crossings": nc, "epidermis_length_mm": float(surf), "dej_length_mm": float(dej),
        "ienfd_per_mm": nc / surf if surf > 0 else float("nan"),
        "dej_source": max(set(src), key=src.count),
        "dej_to_surface_ratio": dej / surf if surf > 0 else float("nan"),
        "epidermis_thickness_um": float(np.nanmedian([x["epidermis_thickness_um"]
                                                      for x in summs])),
        "qc_flag": ";".join(dict.fromkeys(flags)),
        "wsi_regions": f"{len(rows)} tissue piece(s) in 1 window"
                       + (f", {len(failed)} failed" if failed else "")
                       + (f", {len(skipped)} skipped" if skipped else ""),
        "wsi_windows": window_digest(rows), "wsi_failed_windows": len(failed),
    }


def _read_rgb(img: Any, y0: int, y1: int, x0: int, x1: int, step: int = 1) -> np.ndarray:
    arr = read_local(img.data[:3, y0:y1:step, x0:x1:step])
    return np.ascontiguousarray(np.moveaxis(np.asarray(arr), 0, -1))


def run_brightfield_wsi(img: Any, px: float, cfg: Any, outdir: Path, path: Path
                        ) -> tuple[dict, dict]:
    """Analyse a whole-slide bright-field scan by tissue piece and window.

    Parameters
    ----------
    img : ImageData
        The lazily read scan (``data`` a (3, Y, X) dask array).
    px : float
        Pixel size, µm.
    cfg : PipelineConfig
        A bright-field skin configuration.
    outdir : Path
        The file's output folder (``labels.zarr``, ``polylines.json``, ``crossings.csv``).
    path : Path
        The input file (for messages).

    Returns
    -------
    summary : dict
        The file's summary row (as the whole-image skin pipeline gives, summed over the
        pieces and windows), with ``wsi_regions``.
    extra : dict
        Modality, stain source, vectors and white level columns.
    """
    from . import schema
    from .io import InputError, labels_zarr_writer, write_polylines
    from .skin import summarize
    from .stain import optical_density, resolve_stains, sample_step, separate, tissue_mask

    bf = cfg.brightfield
    params = cfg.params()
    ny, nx = img.shape_yx
    s = sample_step((ny, nx))
    sample = _read_rgb(img, 0, ny, 0, nx, s)
    try:
        stains = resolve_stains(sample, stains=bf.stains, white=bf.white_level,
                                reference=bf.reference, pixel_size_um=px * s)
    except ValueError as exc:
        raise InputError(path, f"colour deconvolution failed: {exc}") from exc
    od_sum = optical_density(sample, stains.white).sum(-1)
    del sample
    boxes = find_tissue_pieces(od_sum, s, px, full_shape=(ny, nx))
    if not boxes:
        raise InputError(path, "no tissue found on the slide (all glass at the white level "
                               f"{[round(float(w)) for w in stains.white]})")
    budget = region_budget_px(bf.memory_gib)
    overlap = int(round(bf.window_overlap_um / px))
    windows = [w for i, b in enumerate(boxes) for w in plan_windows(b, budget, overlap, i)]
    chrom = "dab" if "dab" in stains.names else stains.names[1]
    planes = [stains.names.index(chrom), stains.names.index("haematoxylin")]
    scale = np.float32(bf.od_scale)

    crossings: list[pd.DataFrame] = []
    lines: dict[int, dict[str, list[np.ndarray]]] = {}
    length = {"surface": 0.0, "dej": 0.0}
    thick, flags, sources = [], [], []
    table_w: list[dict] = []  # one row per window and tissue piece in it: what it gave
    prev: dict[int, tuple[Window, pd.DataFrame]] = {}
    next_id = 0
    with labels_zarr_writer({"epidermis": np.uint8, "fibres": np.int32}, (ny, nx),
                            outdir / "labels.zarr", pixel_size_um=px) as arrays:
        for wi, w in enumerate(windows):
            rgb = _read_rgb(img, w.y0, w.y1, w.x0, w.x1)
            tissue = tissue_mask(rgb, stains.white, px)
            conc = separate(rgb, stains.vectors, stains.white, planes=planes)
            del rgb
            fibre = np.ascontiguousarray(conc[..., 0]) * scale
            nuclei = np.ascontiguousarray(conc[..., 1]) * scale
            del conc
            axis_off = (w.y0, w.x0)[w.axis]
            # the core in window pixels along the axis, and in slide µm
            c0 = int(np.clip(np.ceil(w.core0 - axis_off), 0, None)) if np.isfinite(w.core0) \
                else 0
            c1 = int(np.ceil(w.core1 - axis_off)) if np.isfinite(w.core1) else None
            core = np.zeros(tissue.shape, bool)
            core[(slice(None), slice(c0, c1)) if w.axis == 1 else (slice(c0, c1), slice(None))] \
                = True
            parts = analyze_tissue_pieces(fibre, nuclei, tissue, px, params, core=core)
            del fibre, nuclei, tissue, core
            lo_um = w.core0 * px if np.isfinite(w.core0) else -np.inf
            hi_um = w.core1 * px if np.isfinite(w.core1) else np.inf
            col = ("y_um", "x_um")[w.axis]
            row0 = {"piece": w.piece + 1, "window": wi + 1, "y0": w.y0, "y1": w.y1,
                    "x0": w.x0, "x1": w.x1}
            if not parts:
                table_w.append({**row0, "tissue_piece": 0, "status": "empty",
                                "reason": "no tissue piece in the window's core",
                                "n_crossings": 0, "surface_um": 0.0, "dej_um": 0.0})
            win_cr = []
            for j, part in enumerate(parts):
                row = {**row0, "tissue_piece": j + 1,
                       "tissue_area_mm2": round(part.area_um2 / 1e6, 4)}
                res = part.result
                if res is None:
                    table_w.append({**row, "status": part.status, "reason": part.reason,
                                    "n_crossings": 0, "surface_um": 0.0, "dej_um": 0.0})
                    continue
                oy, ox = w.y0 + part.y0, w.x0 + part.x0  # slide pixel of the crop
                off = np.array([oy * px, ox * px])
                # labels of the crop's part inside the core (slide coordinates)
                ax0 = (oy, ox)[w.axis]
                k0 = int(np.clip(np.ceil(w.core0 - ax0), 0, None)) if np.isfinite(w.core0) \
                    else 0
                k1 = int(np.ceil(w.core1 - ax0)) if np.isfinite(w.core1) else None
                sl = (slice(None), slice(k0, k1)) if w.axis == 1 else (slice(k0, k1),
                                                                        slice(None))
                fib = res.fibres[sl]
                fib = np.where(fib > 0, fib + next_id, 0).astype(np.int32)
                epi = res.epidermis[sl].astype(np.uint8)
                if fib.size:
                    ty, tx = oy + (sl[0].start or 0), ox + (sl[1].start or 0)
                    reg = (slice(ty, ty + fib.shape[0]), slice(tx, tx + fib.shape[1]))
                    arrays["fibres"][reg] = np.where(fib > 0, fib, arrays["fibres"][reg])
                    arrays["epidermis"][reg] = np.maximum(epi, arrays["epidermis"][reg])
                got = {}
                for name, pts in (("surface", res.surface_um), ("dej", res.dej_um)):
                    kept, ln = clip_polyline(np.asarray(pts, float) + off, w.axis, lo_um,
                                             hi_um)
                    length[name] += ln
                    got[name] = ln
                    if len(kept) > 1 and kept[-1, w.axis] < kept[0, w.axis]:
                        kept = kept[::-1]  # along the section, window after window
                    lines.setdefault(w.piece, {"surface": [], "dej": []})[name].append(kept)
                cr = res.crossings.copy()
                cr["y_um"] = cr["y_um"] + off[0]
                cr["x_um"] = cr["x_um"] + off[1]
                cr["fibre_id"] = np.where(cr["fibre_id"] > 0, cr["fibre_id"] + next_id,
                                          cr["fibre_id"])
                cr = cr.loc[(cr[col] >= lo_um) & (cr[col] < hi_um)]
                if w.piece in prev:
                    pw, pcr = prev[w.piece]
                    cr = _dedupe(cr, pcr, pw.core1 * px, col, params.merge_distance_um)
                win_cr.append(cr)
                next_id += int(res.fibres.max())
                summ = summarize(res, params)
                thick.append(summ["epidermis_thickness_um"])
                flags.extend(f for f in str(summ["qc_flag"]).split(";") if f)
                sources.append(summ["dej_source"])
                table_w.append({**row, "status": "ok", "reason": "", "n_crossings": len(cr),
                                "surface_um": round(got["surface"], 1),
                                "dej_um": round(got["dej"], 1)})
            if win_cr:
                crossings.extend(win_cr)
                prev[w.piece] = (w, pd.concat(win_cr, ignore_index=True))
            else:
                prev.pop(w.piece, None)
        if not crossings:
            why = "; ".join(dict.fromkeys(r["reason"] for r in table_w if r["reason"]))
            raise InputError(path, f"no epidermis found in any of the {len(boxes)} tissue "
                                   f"piece(s) ({len(windows)} window(s)): {why}")
    table = pd.concat(crossings, ignore_index=True)
    schema.write_table(table, outdir / "crossings.csv", "crossings")
    out_lines: dict[str, np.ndarray] = {}
    for k, piece in enumerate(sorted(lines)):
        suffix = "" if k == 0 else f"_{k + 1}"
        for name in ("dej", "surface"):
            parts_l = [q for q in lines[piece][name] if len(q)]
            out_lines[name + suffix] = np.vstack(parts_l) if parts_l else np.zeros((0, 2))
    write_polylines(out_lines, outdir / "polylines.json")
    failed = [r for r in table_w if r["status"] == "failed"]
    skipped = [r for r in table_w if r["status"] == "skipped"]
    if failed:
        flags.append("window_failed")
    n = int(len(table))
    surf_mm, dej_mm = length["surface"] / 1000.0, length["dej"] / 1000.0
    summary = {
        "n_crossings": n,
        "epidermis_length_mm": surf_mm,
        "dej_length_mm": dej_mm,
        "ienfd_per_mm": n / surf_mm if surf_mm > 0 else float("nan"),
        "dej_source": max(set(sources), key=sources.count),
        "dej_to_surface_ratio": dej_mm / surf_mm if surf_mm > 0 else float("nan"),
        "epidermis_thickness_um": float(np.nanmedian(thick)) if thick else float("nan"),
        "qc_flag": ";".join(dict.fromkeys(flags)),
        "wsi_regions": f"{len(boxes)} piece(s), {len(windows)} window(s)"
                       + (f", {len(failed)} failed" if failed else "")
                       + (f", {len(skipped)} skipped" if skipped else ""),
        "wsi_windows": window_digest(table_w),
        "wsi_failed_windows": len(failed),
    }
    prov = stains.provenance()
    img.metadata["brightfield"] = prov
    img.metadata["whole_slide"] = {
        "sample_step": s, "memory_gib": bf.memory_gib, "window_overlap_um":
        bf.window_overlap_um, "pieces": [list(b) for b in boxes],
        "windows": table_w,
        "failed_windows": failed}
    extra = {"modality": "brightfield", "stain_source": prov["stain_source"],
             "stain_vectors": _json(prov["stain_vectors"]),
             "white_level": json.dumps(prov["white_level"])}
    return summary, extra


def window_digest(rows: list[dict]) -> str:
    """One line per window and tissue piece: where the DEJ length and crossings came from.

    ``w2 (piece 1): dej 0.812 mm, surface 0.830 mm, 9 crossings`` for an analysed one,
    ``w3 (piece 1): FAILED (reason)`` for one that gave no epidermis, ``skipped (reason)``
    for one too small to analyse, ``glass only`` for a window without tissue in its core;
    joined by ``"; "``.
    """
    out = []
    for r in rows:
        tag = f"w{r['window']} (piece {r['piece']}"
        tag += f".{r['tissue_piece']})" if r.get("tissue_piece", 1) > 1 else ")"
        if r["status"] == "empty":
            out.append(f"{tag}: glass only")
        elif r["status"] == "ok":
            out.append(f"{tag}: dej {r['dej_um'] / 1000:.3f} mm, surface "
                       f"{r['surface_um'] / 1000:.3f} mm, {r['n_crossings']} crossings")
        elif r["status"] == "skipped":
            out.append(f"{tag}: skipped ({r['reason']})")
        else:
            out.append(f"{tag}: FAILED ({r['reason']})")
    return "; ".join(out)


def _json(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))
