"""The dermal-epidermal junction (DEJ) as a minimal-cost path across the section.

The section is first turned into a canonical frame (surface at the top, the section
running along the columns); there the DEJ is one row per column, found by dynamic
programming over a boundary-cost image with a bound on its slope (µm per µm along the
section) and a cost per µm of vertical step, as used for layer boundaries in retinal
OCT. Two cost images:

* with collagen IV: a bright-ridge filter at the basement membrane's width, searched
  over the whole depth range beside the edges below (gaps are bridged by the path's
  continuity, a detour to a dermal vessel wall gains nothing);
* without: the lower edge of the nuclear-dense keratinocyte layer, i.e. where the
  local nuclear density (bright blobs of nuclear size) drops from the dense layer above
  to the sparse dermis below, plus, where it is clear, the lower edge of the fibre
  channel's brighter diffuse epidermal level (fibres and bundles removed), a region cue
  that does not oscillate with each row of nuclei and follows deep narrow rete ridges;
  a uniformly bright stratum corneum is no nuclear texture and its edge is excluded.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .._numerics._columns import min_cost_path, step_edge  # compiled column passes
from .._numerics._edt import distance_transform_edt as edt  # scipy's, compiled
from .._numerics._gauss import gaussian_filter
from .._numerics._ridges import sato
from ._params import SkinParams


@dataclass(frozen=True)
class Frame:
    """How an image maps onto the canonical frame (surface up, section along columns)."""

    transpose: bool
    flip: bool

    def to_canonical(self, img: np.ndarray) -> np.ndarray:
        """Return ``img`` in the canonical frame."""
        out = img.T if self.transpose else img
        return out[::-1] if self.flip else out

    def from_canonical(self, img: np.ndarray) -> np.ndarray:
        """Return a canonical-frame image in the original frame."""
        out = img[::-1] if self.flip else img
        return out.T if self.transpose else out

    def points_from_canonical(self, rows: np.ndarray, cols: np.ndarray,
                              shape: tuple[int, int]) -> np.ndarray:
        """Return canonical (row, col) points as ``(y, x)`` pixel coordinates of the image."""
        h = shape[1] if self.transpose else shape[0]
        r = (h - 1 - rows) if self.flip else rows
        return np.stack([cols, r], 1) if self.transpose else np.stack([r, cols], 1)


def section_frame(band: np.ndarray, dermis: np.ndarray) -> Frame:
    """Return the frame that puts the epidermal band above the dermis.

    Parameters
    ----------
    band : ndarray of bool
        Rough epidermis.
    dermis : ndarray of bool
        Tissue beyond it.

    Returns
    -------
    Frame
        Transpose when the band and dermis lie side by side; flip when the band lies
        below the dermis.
    """
    cb = np.array(ndi.center_of_mass(band))
    cd = np.array(ndi.center_of_mass(dermis)) if dermis.any() else cb + (1.0, 0.0)
    dy, dx = cd - cb
    transpose = abs(dx) > abs(dy)
    flip = (dx if transpose else dy) < 0
    return Frame(transpose=bool(transpose), flip=bool(flip))


def nuclear_density(nuclei: np.ndarray, px: float, p: SkinParams) -> np.ndarray:
    """Return the local density of bright nucleus-sized blobs (a texture map).

    A difference of Gaussians at the nuclear scale keeps blobs of about
    ``nucleus_diameter_um`` and removes broad uniform signal (a bright stratum
    corneum, background level); its positive part is averaged over a few µm.
    """
    img = np.asarray(nuclei, np.float32)
    s1 = p.nucleus_diameter_um / 4 / px
    dog = gaussian_filter(img, s1) - gaussian_filter(img, 3 * s1)
    return gaussian_filter(np.maximum(dog, 0), p.nucleus_diameter_um / 2 / px)


def membrane_ridge(membrane: np.ndarray, px: float, p: SkinParams) -> np.ndarray:
    """Return the bright-ridge response of the membrane channel at the membrane's width."""
    sig = max(p.membrane_width_um / 2 / px, 0.7)
    img = np.asarray(membrane, np.float32)
    return sato(img, [sig], black_ridges=False, mode="reflect").astype(np.float32)


def _background_level(img: np.ndarray, px: float, size_um: float) -> np.ndarray:
    """Return the diffuse level of ``img`` without thin bright structures (fibres).

    Block means to ~1 µm pixels, then a median over ``size_um``: a fibre covers
    a small part of each window and is gone; shot noise is averaged, not floored as
    by a grey opening.
    """
    k = max(1, int(round(1.0 / px)))
    h, w = img.shape
    hh, ww = -(-h // k) * k, -(-w // k) * k
    pad = np.pad(img, ((0, hh - h), (0, ww - w)), mode="edge")
    blocks = pad.reshape(hh // k, k, ww // k, k).mean(axis=(1, 3))
    size = max(3, int(round(size_um * k * px)) | 1)
    med = ndi.median_filter(blocks, size=size, mode="nearest")
    return np.repeat(np.repeat(med, k, 0), k, 1)[:h, :w]


def _disk_fp(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return (yy**2 + xx**2) <= r * r


def _without_fibres(blocks: np.ndarray, bpx: float, line_um: float = 3.0) -> np.ndarray:
    """Return ``blocks`` (pixels of ``bpx`` µm) with thin bright lines filled in.

    Thin bright lines (fibres: a white top-hat over a disk ``line_um`` wide above 4 robust
    SDs, grown by 1 µm) are replaced by the mean of the pixels around them (normalised
    Gaussian convolution). A level step such as the epidermis's lower edge is no line
    (the opening keeps it). Unlike a wide grey opening alone, this also removes several
    fibres running side by side (the sub-epidermal parallel fibres), whose union is
    wider than the opening's disk but which stay separate lines.
    """
    r = max(1, int(round(line_um / 2 / bpx)))
    th = blocks - ndi.grey_opening(blocks, footprint=_disk_fp(r), mode="nearest")
    med = float(np.median(th))
    mad = float(1.4826 * np.median(np.abs(th - med))) + 1e-9
    fib = ndi.binary_dilation(th > med + 4.0 * mad, iterations=max(1, int(round(1.0 / bpx))))
    if not fib.any() or fib.all():
        return blocks
    keep = (~fib).astype(np.float32)
    sig = max(r, 1)
    num = ndi.gaussian_filter(blocks * keep, sig, mode="nearest")
    den = ndi.gaussian_filter(keep, sig, mode="nearest")
    fill = num / np.maximum(den, 1e-3)
    return np.where(fib & (den > 1e-3), fill, blocks).astype(np.float32)


def _diffuse_level(img: np.ndarray, px: float, width_um: float) -> np.ndarray:
    """Return the diffuse level of ``img`` without bright structures under ``width_um`` wide.

    Block means to ~1 µm pixels and a 1 µm Gaussian (noise averaged before the minimum
    of the opening, so the level does not depend on the photon count), a grey opening by
    a disk of diameter ``width_um`` (fibres and nerve bundles narrower than that are
    removed, wider regions such as the epidermis and its rete ridges keep their level),
    then a median over the same size (the opening's noise floor is made even).
    """
    k = max(1, int(round(1.0 / px)))
    h, w = img.shape
    hh, ww = -(-h // k) * k, -(-w // k) * k
    pad = np.pad(img, ((0, hh - h), (0, ww - w)), mode="edge")
    blocks = pad.reshape(hh // k, k, ww // k, k).mean(axis=(1, 3))
    blocks = _without_fibres(blocks, k * px)
    # a 1 µm Gaussian first, so the opening's minimum is not taken over shot noise: that
    # biases a brighter level down more than a dimmer one and made the epidermal step (and
    # so the cue) depend on the photon count and the pixel size
    blocks = ndi.gaussian_filter(blocks, 1.0 / (k * px), mode="nearest")
    r = max(1, int(round(width_um / 2 / (k * px))))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    opened = ndi.grey_opening(blocks, footprint=(yy**2 + xx**2) <= r * r, mode="nearest")
    med = ndi.median_filter(opened, size=2 * r + 1, mode="nearest")
    return np.repeat(np.repeat(med, k, 0), k, 1)[:h, :w]


#: the autofluorescence edge counts below rows whose nuclear density above is at least
#: this fraction of the way from the dermal to the epidermal density
_BASAL_FRACTION = 0.25

#: width of the window of columns over which a column's epidermal and dermal levels of
#: the fibre channel are taken (µm)
_LEVEL_WINDOW_UM = 50.0


def _column_level(lvl: np.ndarray, mask: np.ndarray, fallback: float, width: int) -> np.ndarray:
    """Return each column's median of ``lvl`` over ``mask``, median-smoothed over ``width``.

    Columns without a masked pixel take ``fallback``.
    """
    a = np.where(mask, lvl, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        m = np.nanmedian(a, axis=0)
    m = np.where(np.isfinite(m), m, fallback)
    return ndi.median_filter(m, size=width, mode="nearest")


def _robust_scale(vals: np.ndarray) -> float:
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return 1.0
    s = float(np.percentile(vals, 99))
    return s if s > 0 else 1.0


def autofluorescence_edge(af: np.ndarray, tissue: np.ndarray, band: np.ndarray, *,
                          lo_rows: np.ndarray, px: float, p: SkinParams,
                          nuclear: np.ndarray | None = None) -> np.ndarray:
    """Return the weighted step edge of the fibre channel's diffuse epidermal brightness.

    Zero everywhere when the channel's diffuse level is not higher in the rough
    epidermis than in the dermis. The epidermis is often a little brighter than the
    dermis in the fibre channel (diffuse background, fibres removed by a block median);
    the lower edge of that
    brighter layer is a region cue for the DEJ that, unlike the nuclear texture, does not
    oscillate with each row of nuclei. The edge is taken only below ``lo_rows`` and where
    it steps from the column's epidermal level (median over the band, taken over a
    window of columns) above to its dermal level (median over the tissue beyond the
    band) below, i.e. the level above the row is nearer the epidermal one, and not much
    brighter, and that below nearer the dermal one (not at the lower edge of a bright
    stratum corneum, where the level above is brighter than the epidermis and that below
    epidermal, nor at dermal structures, where the level above is dermal); it is scaled
    by each column's own epidermal-dermal contrast, and weighted by how far the typical
    step height (the median over columns of each column's largest step), and that
    column's contrast, stand above the edge map's noise (no clear step: no weight).

    Parameters
    ----------
    af : ndarray
        Fibre channel in the canonical frame.
    tissue : ndarray of bool
        Tissue mask, same frame.
    band : ndarray of bool
        Rough epidermis, same frame.
    lo_rows : ndarray
        Per column, the shallowest row the DEJ may take.
    px : float
        Pixel size, µm.
    p : SkinParams
        ``dej_edge_window_um``, ``dej_column_smoothing_um``, ``nucleus_diameter_um``,
        ``dej_autofluorescence_weight``.
    nuclear : ndarray, optional
        Nuclear density (:func:`nuclear_density`), same frame. When given, the edge
        counts only below rows whose nuclear density (the mean over the window above)
        is at least a quarter of the way from the column's dermal to its epidermal
        density (``_BASAL_FRACTION``): the
        basal keratinocytes sit on the DEJ, so the lower edge of a bright dermal
        structure under a dermal papilla (a nerve bundle that blur made too wide for the
        opening, touching the rete ridges on either side) is no DEJ.

    Returns
    -------
    ndarray of float32
        Edge score in about ``[-w, w]`` with ``w`` the weight (0 everywhere without a
        clear step).
    """
    win = int(round(p.dej_edge_window_um / px))
    lvl = _diffuse_level(af, px, p.nucleus_diameter_um)
    lvl = gaussian_filter(lvl, p.dej_column_smoothing_um / px)
    e_af = step_edge(lvl, win)
    rows_i = np.arange(af.shape[0])[:, None]
    deep = rows_i >= lo_rows[None]
    derm = tissue & ~band
    epi = band & deep
    if not derm.any() or not epi.any():
        return np.zeros_like(e_af)
    e_lvl, d_lvl = float(np.median(lvl[epi])), float(np.median(lvl[derm]))
    if e_lvl <= d_lvl:
        # the channel is not brighter in the epidermis (e.g. a bright-field chromogen map,
        # where the dermis's counterstain bleeds into it): no cue, not an inverted one
        return np.zeros_like(e_af)
    # the epidermal and dermal levels of each column (medians over a window of columns):
    # the epidermal level varies along a section, and against the section's levels the
    # blurred lower edge of a bright stratum corneum passed for the DEJ where the local
    # epidermis is dimmer than the section's mid level
    cw = max(3, int(round(_LEVEL_WINDOW_UM / px)) | 1)
    e_c = _column_level(lvl, epi, e_lvl, cw)[None]
    d_c = _column_level(lvl, derm, d_lvl, cw)[None]
    mid = 0.5 * (e_c + d_c)
    above = step_edge(lvl, win, above_only=True)
    # only the lower edge of the bright region that is the epidermis: a bright dermal
    # structure (a nerve bundle wider than the opening) apart from it is no DEJ
    bright, _ = ndi.label(tissue & (lvl >= mid))
    ids = np.unique(bright[band & (bright > 0)])
    region = np.isin(bright, ids) if ids.size else np.zeros_like(band)
    near_region = edt(~region) <= win + 1
    # a DEJ step goes from about the column's epidermal level (not from a brighter layer
    # above it) to about its dermal level
    ok = (tissue & deep & near_region & (e_c > d_c) & (above >= mid) & (above - e_af <= mid)
          & (above <= e_c + 0.5 * (e_c - d_c)))
    if nuclear is not None:
        n_e = float(np.median(nuclear[epi]))
        n_d = float(np.median(nuclear[derm]))
        if n_e > n_d:
            n_ec = _column_level(nuclear, epi, n_e, cw)[None]
            n_dc = _column_level(nuclear, derm, n_d, cw)[None]
            ok &= (step_edge(nuclear, win, above_only=True)
                   >= n_dc + _BASAL_FRACTION * (n_ec - n_dc))
    g = np.where(ok, e_af, 0.0)
    colmax = g.max(0)
    height = float(np.median(colmax[tissue.any(0)])) if tissue.any() else 0.0
    vals = e_af[tissue]
    noise = float(1.4826 * np.median(np.abs(vals - np.median(vals)))) if vals.size else 0.0
    if height <= 0 or height <= 3 * noise:
        return np.zeros_like(e_af)
    wt = p.dej_autofluorescence_weight * min(1.0, (height / max(noise, 1e-12) - 3) / 3)
    # scaled by each column's own epidermal-dermal contrast: against one section-wide
    # height, the DEJ step under a dim stretch of epidermis scored low and a stronger
    # edge deeper down (sub-epidermal fibres, a dermal band) outscored it. A column's
    # contrast is weighted, as the section's height is, by how far it stands above the
    # edge map's noise, so a stretch with no contrast gains no weight from its noise
    contrast = e_c - d_c
    col_wt = np.clip((contrast / max(noise, 1e-12) - 3) / 3, 0.0, 1.0)
    scale = np.maximum(contrast, 1e-12)
    return (wt * col_wt * np.clip(g / scale, -1, 1)).astype(np.float32)


@dataclass
class DejTrace:
    """A DEJ traced in the canonical frame (see :func:`trace_dej`)."""

    cols: np.ndarray
    rows: np.ndarray
    surface_rows: np.ndarray
    frame: Frame
    source: str
    membrane_support: float


def trace_dej(band: np.ndarray, tissue: np.ndarray, *, px: float, p: SkinParams,
              texture: np.ndarray, texture_is_nuclei: bool,
              membrane: np.ndarray | None = None,
              autofluorescence: np.ndarray | None = None,
              dense: np.ndarray | None = None) -> DejTrace | None:
    """Trace the DEJ below a rough epidermal band as a minimal-cost path.

    Parameters
    ----------
    band : ndarray of bool
        Rough epidermis (dense band and stratum corneum), in image coordinates.
    tissue : ndarray of bool
        Tissue mask.
    px : float
        Pixel size, µm.
    p : SkinParams
        ``dej_*`` parameters.
    texture : ndarray
        Nuclear stain, or the channel whose brightness marks the epidermis.
    texture_is_nuclei : bool
        ``texture`` is a nuclear stain (use nuclear density, not brightness).
    membrane : ndarray, optional
        Collagen IV: the DEJ follows its ridge.
    autofluorescence : ndarray, optional
        A channel whose diffuse background is brighter in the epidermis than in the
        dermis (the fibre stain); fibres and bundles are removed by a grey opening,
        and its edge (see :func:`autofluorescence_edge`, weight
        ``dej_autofluorescence_weight``) joins the nuclear edge over the whole range.
    dense : ndarray of bool, optional
        The nuclear-dense layer without the stratum corneum; the autofluorescence edge
        is looked for only below its upper edge (not at the stratum corneum's lower edge).

    Returns
    -------
    DejTrace or None
        None when the band has no columns.
    """
    frame = section_frame(band, tissue & ~band)
    b = frame.to_canonical(band)
    t = frame.to_canonical(tissue)
    cols = np.flatnonzero(b.any(0))
    if cols.size < 2:
        return None
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    b, t = b[:, c0:c1], t[:, c0:c1]
    nr, nc = b.shape
    has = b.any(0)
    top = np.where(has, np.argmax(b, 0), 0).astype(float)
    xs = np.arange(nc)
    top = np.interp(xs, xs[has], top[has])
    if texture_is_nuclei:
        tex = nuclear_density(frame.to_canonical(np.asarray(texture))[:, c0:c1], px, p)
    else:
        tex = gaussian_filter(frame.to_canonical(np.asarray(texture, np.float32))[:, c0:c1],
                                  p.epidermis_smoothing_um / px)
    tex = gaussian_filter(tex, (0.0, p.dej_column_smoothing_um / px))  # = gaussian_filter1d
    edge = step_edge(tex, int(round(p.dej_edge_window_um / px)))
    edge = edge / _robust_scale(edge[b])
    # decimate columns to ~1 µm for the path
    k = max(1, int(round(1.0 / px)))
    sub = slice(0, nc, k)
    lo = np.ceil(top[sub] + p.min_epidermis_thickness_um / px).astype(int)
    hi = np.minimum(np.floor(top[sub] + p.max_epidermis_thickness_um / px), nr - 1).astype(int)
    hi = np.maximum(hi, np.minimum(lo, nr - 1))
    lo = np.minimum(lo, hi)
    max_step = max(1, int(np.ceil(p.dej_max_slope * k)))
    step_cost = p.dej_step_cost * px
    # rows outside tissue cannot hold the DEJ
    not_tissue = ~t
    source = "nuclei" if texture_is_nuclei else "autofluorescence"
    support = float("nan")
    score = np.clip(edge, -1, 1)
    if autofluorescence is not None and texture_is_nuclei and p.dej_autofluorescence_weight > 0:
        af = frame.to_canonical(np.asarray(autofluorescence, np.float32))[:, c0:c1]
        lo_af = np.interp(xs, xs[sub], lo).astype(float)
        if dense is not None:
            d = frame.to_canonical(dense)[:, c0:c1]
            has_d = d.any(0)
            if has_d.any():
                d_top = np.interp(xs, xs[has_d], np.argmax(d, 0)[has_d].astype(float))
                lo_af = np.maximum(lo_af, d_top + p.dej_edge_window_um / px)
        score = score + autofluorescence_edge(af, t, b, lo_rows=lo_af, px=px, p=p,
                                              nuclear=tex)
    cost = -score
    cost[not_tissue] = 1.0
    path = min_cost_path(cost[:, sub], lo, hi, max_step=max_step, step_cost=step_cost)
    edge = score
    if membrane is not None:
        ridge = membrane_ridge(frame.to_canonical(np.asarray(membrane))[:, c0:c1], px, p)
        rows_i = np.arange(nr)[:, None]
        near = np.abs(rows_i - np.interp(xs, xs[sub], path)[None]) <= p.dej_search_um / px
        scale = _robust_scale(ridge[near])
        rn = np.clip(ridge / scale, 0, 1)
        cost_m = -rn - p.dej_nuclear_weight * np.clip(edge, -1, 1)
        cost_m[not_tissue] = 1.0
        # the whole depth range: a ridge the nuclear estimate cut across is still found;
        # a detour to a dermal vessel wall gains nothing where the membrane is continuous
        path_m = min_cost_path(cost_m[:, sub], lo, hi, max_step=max_step,
                               step_cost=step_cost)
        on = rn[:, sub][path_m, np.arange(path_m.size)]
        support = float(np.mean(on > 0.2))
        path = path_m
        source = "collagen_iv"
    rows = np.interp(xs, xs[sub], path.astype(float))
    return DejTrace(cols=xs + c0, rows=rows, surface_rows=top, frame=frame, source=source,
                    membrane_support=support)


def mask_above(trace: DejTrace, tissue: np.ndarray) -> np.ndarray:
    """Return the epidermis mask: tissue above the traced DEJ (image coordinates)."""
    t = trace.frame.to_canonical(tissue)
    nr, nc = t.shape
    m = np.zeros((nr, nc), bool)
    rr = np.arange(nr)[:, None]
    m[:, trace.cols] = rr <= np.round(trace.rows)[None]
    return trace.frame.from_canonical(m & t)
