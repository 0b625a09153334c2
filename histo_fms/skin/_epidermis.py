"""Epidermis, epidermal surface and dermal-epidermal junction (DEJ).

The epidermis is found from the dense nuclear texture of the keratinocytes (or,
without nuclei, the autofluorescence texture of the fibre channel); it is the dense
band that faces the slide background on one side (the surface, through the stratum
corneum) and the dermis on the other (the DEJ). Nothing assumes which side of the
image the epidermis is on. With a collagen IV channel, the DEJ is moved onto the
basement-membrane ridge (see :mod:`._dej`); without, it is the lower edge of the
nuclear-dense layer, both as minimal-cost paths across the section.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage import draw, filters, measure

from .._numerics._binary import binary_fill_holes, binary_opening_disk
from .._numerics._edt import distance_transform_edt as edt  # scipy's, compiled
from .._numerics._gauss import gaussian_filter
from .._numerics._labelstats import label_extrema
from ._dej import mask_above, section_frame, trace_dej
from ._params import SkinParams


class NoEpidermisError(ValueError):
    """No epidermis (dense band between slide background and dermis) was found."""


@dataclass
class Epidermis:
    """The epidermis of a skin section.

    Attributes
    ----------
    mask : ndarray of bool, shape (Y, X)
        Epidermis including the stratum corneum.
    dej_um : ndarray of float, shape (N, 2)
        The dermal-epidermal junction as a polyline, ``(y_um, x_um)``.
    surface_um : ndarray of float, shape (M, 2)
        The epidermal surface as a polyline, ``(y_um, x_um)``.
    pixel_size_um : float
        Pixel size in µm.
    dej_source : str
        Where the DEJ comes from: ``"collagen_iv"`` (membrane ridge), ``"nuclei"``
        (lower edge of the nuclear-dense layer), ``"autofluorescence"`` (edge of the
        fibre channel's epidermal brightness) or ``"reviewer"`` (drawn lines).
    qc : dict
        Plausibility figures of a traced DEJ (thickness percentiles, fraction of the
        path at the slope bound, fraction supported by a membrane ridge).
    """

    mask: np.ndarray
    dej_um: np.ndarray
    surface_um: np.ndarray
    pixel_size_um: float
    dej_source: str = "reviewer"
    qc: dict = field(default_factory=dict)

    @property
    def surface_length_um(self) -> float:
        """Length of the epidermal surface polyline, µm."""
        return polyline_length(self.surface_um)

    @property
    def dej_length_um(self) -> float:
        """Length of the DEJ polyline, µm."""
        return polyline_length(self.dej_um)


def polyline_length(points: np.ndarray) -> float:
    """Return the length of a polyline.

    Parameters
    ----------
    points : ndarray, shape (N, 2)
        Vertices, in any unit.

    Returns
    -------
    float
        Sum of the segment lengths (0 for fewer than two vertices).
    """
    p = np.asarray(points, float)
    if len(p) < 2:
        return 0.0
    return float(np.sum(np.hypot(*np.diff(p, axis=0).T)))


def _dark_level(img: np.ndarray) -> float:
    return float(np.percentile(img[:: max(1, img.shape[0] // 256), :: 4], 0.5))


def _noise_sd(img: np.ndarray) -> float:
    """Robust pixel-noise standard deviation (MAD of a high-pass residual)."""
    sub = img[:: max(1, img.shape[0] // 512), :]
    r = sub - ndi.uniform_filter(sub, 3)
    return float(1.4826 * np.median(np.abs(r - np.median(r))) * 1.06 + 1e-6)


def _tissue_mask(channels: list[np.ndarray], px: float, p: SkinParams) -> np.ndarray:
    """Tissue versus empty slide from the smoothed sum of dark-corrected channels.

    The threshold sits a little above the darkest level: enough smoothed-noise
    standard deviations, and at least 2 % of the bright (99th percentile) level, but
    never above the two-class Otsu threshold of the log image.
    """
    sig = p.tissue_smoothing_um / px
    total = np.zeros(channels[0].shape, np.float32)
    noise2 = 0.0
    for ch in channels:
        ch = np.asarray(ch, np.float32)
        c = gaussian_filter(ch, sig)
        total += c - _dark_level(c)
        noise2 += _noise_sd(ch) ** 2
    sd_s = np.sqrt(noise2) / (2 * np.sqrt(np.pi) * max(sig, 0.5))
    sub = total[:: max(1, total.shape[0] // 256), ::2]
    p99 = float(np.percentile(sub, 99))
    t = max(8 * sd_s, 0.02 * p99)
    lg = np.log1p(np.clip(sub, 0, None))
    if float(lg.max() - lg.min()) > 1e-3:
        t = min(t, float(np.expm1(filters.threshold_otsu(lg))))
    t = max(t, 6 * sd_s)
    tissue = total > t
    tissue = _remove_small(tissue, max(16, int((20 / px) ** 2)))
    tissue = binary_fill_holes(tissue) if tissue.any() else tissue
    return tissue


def _with_stratum_corneum(band: np.ndarray, tissue: np.ndarray, d_bg: np.ndarray,
                          sc_px: float, between_px: float | None = None) -> np.ndarray:
    """Return the dense band with the tissue strips between it and the glass, filled.

    Strips: tissue within ``sc_px`` of the glass that touches both the glass and the band.
    With ``between_px`` only pixels whose distances to the glass and to the band add up to
    at most that (on a short way from the band to the glass).
    """
    strip = tissue & ~band & (d_bg <= sc_px)
    if between_px is not None:
        strip &= d_bg + edt(~band) <= between_px
    slab, ns = ndi.label(strip)
    sc = np.zeros_like(band)
    if ns:
        touches_bg = label_extrema(d_bg, slab, ns)[0] <= 1.5
        touches_band = label_extrema(_dilate(band, 1.5).view(np.uint8), slab, ns)[1] > 0
        ok = np.concatenate([[False], touches_bg & touches_band])
        sc = ok[slab]
    return binary_fill_holes(band | sc)


def _remove_small(mask: np.ndarray, min_px: int) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_px
    keep[0] = False
    return keep[lab]


def _dilate(mask: np.ndarray, r_px: float) -> np.ndarray:
    """Binary dilation by a disk of radius ``r_px`` (via the distance transform)."""
    return edt(~mask) <= r_px


def _erode(mask: np.ndarray, r_px: float) -> np.ndarray:
    """Binary erosion by a disk of radius ``r_px`` (via the distance transform)."""
    return edt(mask) > r_px


def _disk_radius(r_px: float) -> int:
    return max(1, int(round(r_px)))


def find_epidermis(
    *,
    pixel_size_um: float,
    nuclei: np.ndarray | None = None,
    membrane: np.ndarray | None = None,
    fibre: np.ndarray | None = None,
    params: SkinParams | None = None,
    tissue: np.ndarray | None = None,
) -> Epidermis:
    """Find the epidermis, its surface and the DEJ.

    Parameters
    ----------
    pixel_size_um : float
        Pixel size in µm.
    nuclei : ndarray, shape (Y, X), optional
        Nuclear stain (DAPI); the dense keratinocyte nuclei mark the epidermis.
    membrane : ndarray, shape (Y, X), optional
        Basement-membrane stain (collagen IV); when given the DEJ follows its line.
    fibre : ndarray, shape (Y, X), optional
        Fibre stain (PGP9.5); used for the tissue mask, and as the texture channel
        when ``nuclei`` is not given (stratum corneum / epidermal autofluorescence).
    params : SkinParams, optional
        Pipeline parameters.
    tissue : ndarray of bool, shape (Y, X), optional
        Tissue versus slide background (glass), when the caller knows it better than
        the stain maps tell (bright-field: the glass is near-white, low optical density
        in every colour; see :func:`histo_fms.stain.tissue_mask`). By default it is
        found from the stains, the background being near their dark offset. Background
        beyond the deep edge of the dermis or around the ends of the section is
        excluded like that beyond the surface.

    Returns
    -------
    Epidermis
        Mask and polylines (µm).

    Raises
    ------
    NoEpidermisError
        No band of dense texture between slide background and dermis was found
        (blank image, dermis only, no background beyond the surface).
    """
    p = params or SkinParams()
    px = float(pixel_size_um)
    chans = [np.asarray(c) for c in (nuclei, membrane, fibre) if c is not None]
    if not chans:
        raise ValueError("find_epidermis needs at least one of nuclei, membrane or fibre")
    hint = ("" if nuclei is not None else
            "; no nuclear channel was given: the epidermis is found from the dense "
            "keratinocyte nuclei (DAPI), without them only from fibre-channel "
            "autofluorescence, which may not suffice")
    try:
        return _find_epidermis(chans, px, p, nuclei, membrane, fibre, tissue)
    except NoEpidermisError as exc:
        if hint:
            raise NoEpidermisError(f"{exc}{hint}") from None
        raise


def _find_epidermis(chans, px, p, nuclei, membrane, fibre, tissue=None) -> Epidermis:
    given_tissue = tissue is not None
    if tissue is None:
        tissue = _tissue_mask(chans, px, p)
    else:
        tissue = np.asarray(tissue, bool)
        if tissue.shape != chans[0].shape:
            raise ValueError(f"tissue mask shape {tissue.shape} differs from the image "
                             f"{chans[0].shape}")
    background = ~tissue
    min_len_px = p.min_epidermis_length_um / px
    if background.sum() < min_len_px or tissue.sum() < min_len_px * 10 / px:
        raise NoEpidermisError(
            "no tissue edge in the image: an epidermis needs tissue with slide background "
            "beyond its surface (blank image or dermis-only field?)")

    tex_src = nuclei if nuclei is not None else (fibre if fibre is not None else membrane)
    tex_src = np.asarray(tex_src, np.float32)
    dark = _dark_level(gaussian_filter(tex_src, 2.0))
    tex = gaussian_filter(tex_src, p.epidermis_smoothing_um / px) - dark
    vals = tex[tissue]
    t = filters.threshold_otsu(vals)
    cand = (tex > t) & tissue
    cand = binary_opening_disk(cand, _disk_radius(3.0 / px))
    # the dense band must face the background along its surface, directly or across a
    # stratum corneum at most ``max_stratum_corneum_um`` thick
    sc_px = p.max_stratum_corneum_um / px
    d_bg = edt(tissue)
    lab, n = ndi.label(cand)
    if n == 0:
        raise NoEpidermisError("no dense nuclear/autofluorescent band found")
    near = (lab > 0) & (d_bg <= sc_px + 2.0 / px)
    contact = np.bincount(lab[near], minlength=n + 1)
    contact[0] = 0
    best = int(np.argmax(contact))
    if contact[best] < min_len_px:
        raise NoEpidermisError(
            f"no dense band faces the slide background along >= {p.min_epidermis_length_um} µm "
            "(dermis-only field?)")
    band = binary_fill_holes(lab == best)
    if band.sum() * px * px < p.min_epidermis_length_um * p.min_epidermis_thickness_um:
        raise NoEpidermisError(
            f"the densest band near the slide background is too small for an epidermis "
            f"({band.sum() * px * px:.0f} µm², needs >= {p.min_epidermis_length_um} µm long "
            f"x {p.min_epidermis_thickness_um} µm thick)")
    # stratum corneum: tissue strips between the band and the background (not through it)
    # Glass beyond the deep edge of the dermis: the rim of tissue along it, joined to the
    # band by the strips round the section's ends, enclosed the dermis and was filled into
    # the epidermis. Then, and whenever the glass is known (a given tissue mask, as in
    # bright-field), only strips on a short way from the band to the glass are stratum
    # corneum.
    between = sc_px + 2.0 / px
    epi0 = _with_stratum_corneum(band, tissue, d_bg, sc_px,
                                 between_px=between if given_tissue else None)
    if not given_tissue and (tissue & ~epi0).sum() < min_len_px * 5 / px:
        epi0 = _with_stratum_corneum(band, tissue, d_bg, sc_px, between_px=between)
    inner = tex[band]
    rest = tex[tissue & ~_dilate(epi0, 5.0 / px)]
    noise = _noise_sd(tex_src)
    e_lvl = float(np.median(inner))
    d_lvl = float(np.median(rest)) if rest.size else 0.0
    if e_lvl < p.min_epidermis_contrast * max(d_lvl, 0.0) or e_lvl - d_lvl < 2 * noise:
        raise NoEpidermisError(
            f"texture contrast too low for an epidermis (band {e_lvl:.1f} vs dermis "
            f"{d_lvl:.1f} counts above dark, noise {noise:.1f})")
    dermis = tissue & ~epi0
    if dermis.sum() < min_len_px * 5 / px:
        raise NoEpidermisError("no dermis beyond the dense band: cannot place the DEJ")

    trace = trace_dej(epi0, tissue, px=px, p=p, texture=tex_src,
                      texture_is_nuclei=nuclei is not None, membrane=membrane,
                      autofluorescence=fibre, dense=band)
    epi = mask_above(trace, tissue) if trace is not None else epi0
    epi = epi & tissue
    epi = binary_fill_holes(epi)
    lab, n = ndi.label(epi)
    if n > 1:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        epi = lab == int(np.argmax(sizes))
    surface_px, dej_px = _boundaries(epi, background, p, px)
    if surface_px is not None:
        frame = trace.frame if trace is not None else section_frame(epi, tissue & ~epi)
        surface_px = _trim_cut_ends(surface_px, frame,
                                    reach_px=p.max_epidermis_thickness_um / px, px=px)
    if surface_px is None or polyline_length(surface_px) * px < p.min_epidermis_length_um:
        raise NoEpidermisError("epidermal surface too short or not found")
    if dej_px is None:
        raise NoEpidermisError("no DEJ found (the epidermis does not face the dermis)")
    qc = _quality(trace, px, p)
    return Epidermis(mask=epi, dej_um=dej_px * px, surface_um=surface_px * px,
                     pixel_size_um=px, dej_source=trace.source if trace else "nuclei", qc=qc)


def _quality(trace, px: float, p: SkinParams) -> dict:
    """Plausibility figures of a traced DEJ (thickness, slope, membrane support)."""
    if trace is None:
        return {}
    thick = (trace.rows - trace.surface_rows) * px
    slope = np.abs(np.diff(trace.rows))
    return {"epidermis_thickness_um": float(np.median(thick)),
            "epidermis_thickness_min_um": float(np.percentile(thick, 5)),
            "epidermis_thickness_max_um": float(np.percentile(thick, 95)),
            "dej_at_slope_bound": float(np.mean(slope >= 0.95 * p.dej_max_slope)),
            "membrane_support": trace.membrane_support}


def _boundaries(epi, background, p, px):
    """Surface and DEJ polylines (pixel coordinates) from the epidermis mask."""
    h, w = epi.shape
    sm = gaussian_filter(np.pad(epi, 1).astype(np.float32), 1.0)
    contours = measure.find_contours(sm, 0.5)
    if not contours:
        return None, None
    dermis = ~epi & ~background
    d_bg = edt(~background)
    d_de = edt(~dermis) if dermis.any() else np.full(epi.shape, np.inf)
    best = {"surface": None, "dej": None}
    best_len = {"surface": 0.0, "dej": 0.0}
    for c in contours:
        c = c - 1.0  # undo padding
        y, x = c[:, 0], c[:, 1]
        edge = np.minimum.reduce([y, x, h - 1 - y, w - 1 - x])
        iy = np.clip(np.round(y).astype(int), 0, h - 1)
        ix = np.clip(np.round(x).astype(int), 0, w - 1)
        db, dd = d_bg[iy, ix], d_de[iy, ix]
        cls = np.where(edge < 1.0, 0, np.where(db <= dd, 1, 2))
        cls[(np.minimum(db, dd) > 4 + 2 / px)] = 0
        for k, name in ((1, "surface"), (2, "dej")):
            for run in _runs(cls == k, closed=np.allclose(c[0], c[-1])):
                seg = c[run]
                ln = polyline_length(seg)
                if ln > best_len[name]:
                    best[name], best_len[name] = seg, ln
    return (_smooth_polyline(best["surface"], p, px) if best["surface"] is not None else None,
            _smooth_polyline(best["dej"], p, px) if best["dej"] is not None else None)


def _trim_cut_ends(line: np.ndarray, frame, *, reach_px: float, px: float,
                   shadow_um: float = 2.0, chord_um: float = 5.0) -> np.ndarray:
    """Drop the cut ends of the section from the ends of a surface polyline.

    Where a section ends in glass inside the image, the epidermis's boundary with the
    glass runs on round the end of the section (across it, over the epidermal
    thickness): not epidermal surface. In the section's frame (surface up, the section
    along the columns) a point of such a cut end is either under another part of the line
    (shadowed: more than ``shadow_um`` below the line's topmost point in its column) or on
    a stretch running more across the section than along it (over a chord of
    ``2 * chord_um``). A ragged cut end has both kinds and pieces of neither, so from each
    end of the line everything up to the farthest such point within ``reach_px`` of path
    (the largest epidermal thickness) is removed, as long as the part removed runs across
    the section (along it over at most half its length); a surface's own steep stretches
    and overhangs are kept (a furrow of depth D is cut off only within D of an end).

    Parameters
    ----------
    line : ndarray, shape (N, 2)
        Surface polyline, pixels ``(y, x)``.
    frame : Frame
        The section's canonical frame (:func:`._dej.section_frame`).
    reach_px : float
        Path length from each end within which a cut end is looked for, pixels (the
        glass-facing boundary round a cut end may also run along a dermal strip).
    px : float
        Pixel size, µm.
    shadow_um, chord_um : float
        As above.

    Returns
    -------
    ndarray, shape (M, 2)
        The line without its cut ends (the line itself when nothing would be left).
    """
    line = np.asarray(line, float)
    if len(line) < 3:
        return line
    u = line[:, 0] if frame.transpose else line[:, 1]   # along the section
    v = line[:, 1] if frame.transpose else line[:, 0]   # across it, glass up (smaller)
    if frame.flip:
        v = -v
    seg = np.hypot(np.diff(u), np.diff(v))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return line
    # topmost point of the line in each column (densely resampled, half-pixel steps)
    t = np.arange(0.0, s[-1] + 1e-9, 0.5)
    uu = np.concatenate([np.interp(t, s, u), u])
    vv = np.concatenate([np.interp(t, s, v), v])
    ub = np.round(uu - uu.min()).astype(int)
    top = np.full(ub.max() + 3, np.inf)
    np.minimum.at(top, ub + 1, vv)
    top = np.minimum(np.minimum(top[:-2], top[1:-1]), top[2:])  # with the neighbours
    shadowed = v > top[np.round(u - uu.min()).astype(int)] + shadow_um / px
    c = chord_um / px
    i_lo = np.searchsorted(s, s - c, side="left")
    i_hi = np.clip(np.searchsorted(s, s + c, side="right") - 1, 0, len(s) - 1)
    steep = np.abs(v[i_hi] - v[i_lo]) > np.abs(u[i_hi] - u[i_lo])
    # the part removed runs across the section: along it over at most half its length
    span_h = np.maximum.accumulate(u) - np.minimum.accumulate(u)
    span_t = (np.maximum.accumulate(u[::-1]) - np.minimum.accumulate(u[::-1]))[::-1]
    cut = shadowed | steep
    head = np.flatnonzero(cut & (s <= reach_px) & (span_h <= 0.5 * s))
    tail = np.flatnonzero(cut & (s >= s[-1] - reach_px) & (span_t <= 0.5 * (s[-1] - s)))
    a = int(head.max()) + 1 if head.size else 0
    b = int(tail.min()) if tail.size else len(line)
    if b - a < 2:
        return line
    return line[a:b]


def _runs(flag: np.ndarray, closed: bool) -> list[np.ndarray]:
    """Index arrays of the contiguous True runs of ``flag`` (wrapping when closed)."""
    n = flag.size
    if not flag.any():
        return []
    if flag.all():
        return [np.arange(n)]
    idx = np.flatnonzero(flag)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    runs = np.split(idx, breaks + 1)
    if closed and len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == n - 1:
        runs[0] = np.concatenate([runs[-1], runs[0]])
        runs.pop()
    return [r for r in runs if r.size >= 2]


def _smooth_polyline(c: np.ndarray, p: SkinParams, px: float) -> np.ndarray:
    """Resample a polyline (pixels) at uniform arc length and smooth it."""
    c = np.asarray(c, float)
    seg = np.hypot(*np.diff(c, axis=0).T)
    s = np.concatenate([[0], np.cumsum(seg)])
    if s[-1] <= 0:
        return c
    step = 0.5
    t = np.arange(0, s[-1] + 1e-9, step)
    r = np.stack([np.interp(t, s, c[:, 0]), np.interp(t, s, c[:, 1])], 1)
    sig = p.polyline_smoothing_um / px / step
    if len(r) > 3 and sig > 0:
        r = ndi.gaussian_filter1d(r, sig, axis=0, mode="nearest")
    k = max(1, int(round(p.polyline_step_um / px / step)))
    out = r[::k]
    if (len(r) - 1) % k:
        out = np.vstack([out, r[-1]])
    return out


def epidermis_from_polylines(
    surface_um: np.ndarray,
    dej_um: np.ndarray,
    shape: tuple[int, int],
    *,
    pixel_size_um: float,
) -> Epidermis:
    """Build an :class:`Epidermis` from (reviewer-drawn) surface and DEJ polylines.

    The mask is the polygon enclosed by the surface and the DEJ (joined at their
    ends), so the two lines must run along the same stretch of epidermis.

    Parameters
    ----------
    surface_um, dej_um : ndarray, shape (N, 2)
        Polylines ``(y_um, x_um)``.
    shape : tuple of int
        Image shape (Y, X).
    pixel_size_um : float
        Pixel size in µm.

    Returns
    -------
    Epidermis
        Mask and the given polylines.
    """
    s = np.asarray(surface_um, float)
    d = np.asarray(dej_um, float)
    if len(s) < 2 or len(d) < 2:
        raise ValueError("surface and DEJ polylines need at least two vertices each")
    same = np.hypot(*(s[0] - d[0])) + np.hypot(*(s[-1] - d[-1]))
    flip = np.hypot(*(s[0] - d[-1])) + np.hypot(*(s[-1] - d[0]))
    if flip < same:
        d = d[::-1]
    poly = np.vstack([s, d[::-1]]) / pixel_size_um
    rr, cc = draw.polygon(poly[:, 0], poly[:, 1], shape)
    mask = np.zeros(shape, bool)
    mask[rr, cc] = True
    return Epidermis(mask=mask, dej_um=np.asarray(dej_um, float),
                     surface_um=np.asarray(surface_um, float), pixel_size_um=pixel_size_um)
