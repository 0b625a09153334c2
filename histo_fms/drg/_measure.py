"""Per-neuron morphology and SGC-ring IgG measurement."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from .._numerics._background import estimate_dark_level, local_background
from .._numerics._cityblock import binary_dilation, binary_erosion
from .._numerics._gauss import gaussian_filter
from .._numerics._morph import within_depth
from .._numerics._quantiles import label_quantiles
from .._numerics._ringops import other_label_near, window_mean
from .._numerics._sums import label_cross_sums, label_moment_sums
from ..segment import segment_neurons
from ..segment._classical import _segment as _segment_classical
from ..segment._classical import canonical_labels
from ._context import (
    DrgContext,
    NoSignalError,
    check_neuron_signal,
    compute_context,
    lipofuscin_roles,
    section_flags,
    sgc_no_signal_message,
    sgc_usable,
)
from ._lipofuscin import detect_lipofuscin
from ._params import DrgParams, _illumination_sigma_px, _smooth_sigma_px
from ._rings import ring_geometry

SOMA_COLUMNS = ["neuron_id", "y_um", "x_um", "area_um2", "diameter_um", "size_class",
                "touches_border"]
RING_COLUMNS = ["neuron_id", "ring_area_um2", "ring_mean", "ring_median", "background",
                "background_source", "ring_igg", "ring_igg_coverage", "sgc_coverage"]
TABLE_COLUMNS = SOMA_COLUMNS + RING_COLUMNS[1:]
#: columns of the neuron table measured on the IgG channel (empty without one)
IGG_COLUMNS = ["ring_mean", "ring_median", "background", "background_source", "ring_igg",
               "ring_igg_coverage"]


@dataclass
class DrgResult:
    """Result of :func:`measure_drg` on one section.

    Attributes
    ----------
    neurons : ndarray of int32
        Neuron labels (0 background).
    rings : ndarray of int32
        The ring pixels measured (ring of neuron ``i`` has value ``i``): the
        ``ring_width_um`` band less lipofuscin, vessel glow and contact zones.
    table : pandas.DataFrame
        One row per neuron, columns :data:`TABLE_COLUMNS`.
    lipofuscin : ndarray of bool
        Pixels masked as lipofuscin.
    dark_levels : dict
        Dark level (counts) subtracted from each channel, by channel role.
    foreground : ndarray of bool, optional
        The classical segmentation's foreground mask before splitting (None for
        other backends or given labels); tiling uses it to check clusters.
    qc_flag : str
        The section's quality flags (:func:`histo_fms.drg._context.section_flags`):
        ``sgc_no_signal`` when the SGC channel given had no structure above its pixel
        noise and was left out; blank when none.
    context : DrgContext, optional
        The section statistics the measurement used.
    """

    neurons: np.ndarray
    rings: np.ndarray
    table: pd.DataFrame
    lipofuscin: np.ndarray
    dark_levels: dict[str, float] = field(default_factory=dict)
    foreground: np.ndarray | None = None
    qc_flag: str = ""
    context: DrgContext | None = None


def size_class(diameter_um: np.ndarray, bounds_um: tuple[float, float] = (25.0, 35.0)
               ) -> np.ndarray:
    """Classify neurons by equivalent diameter.

    Parameters
    ----------
    diameter_um : array_like
        Equivalent diameters in µm.
    bounds_um : tuple of float
        ``(small_max, large_min)``.

    Returns
    -------
    ndarray of str
        ``"small"`` (< small_max), ``"large"`` (> large_min) or ``"medium"``.
    """
    d = np.asarray(diameter_um, float)
    out = np.full(d.shape, "medium", dtype=object)
    out[d < bounds_um[0]] = "small"
    out[d > bounds_um[1]] = "large"
    return out


def measure_neurons(
    labels: np.ndarray,
    *,
    pixel_size_um: float,
    size_class_bounds_um: tuple[float, float] = (25.0, 35.0),
    offset_um: tuple[float, float] = (0.0, 0.0),
) -> pd.DataFrame:
    """Measure position, size and border contact of each labelled neuron.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Neuron labels (0 background; ids need not be contiguous).
    pixel_size_um : float
        Pixel size in µm.
    size_class_bounds_um : tuple of float
        Diameter bounds of the size classes.
    offset_um : tuple of float
        ``(y, x)`` position of this array's top-left pixel centre in the section, in
        µm (for tiles).

    Returns
    -------
    pandas.DataFrame
        Columns ``neuron_id, y_um, x_um, area_um2, diameter_um, size_class,
        touches_border``; centroids in µm from the top-left pixel centre.
    """
    labels = np.asarray(labels)
    px = float(pixel_size_um)
    nmax = int(labels.max()) if labels.size else 0
    ids = np.nonzero(np.bincount(labels.ravel(), minlength=nmax + 1)[1:])[0] + 1 if nmax else (
        np.zeros(0, int))
    if ids.size == 0:
        return _empty(SOMA_COLUMNS)
    flat = labels.ravel()
    idx = np.flatnonzero(flat)
    lab = flat[idx]
    yy, xx = np.divmod(idx, labels.shape[1])
    cnt = np.bincount(lab, minlength=nmax + 1).astype(float)
    ys = np.bincount(lab, weights=yy, minlength=nmax + 1)
    xs = np.bincount(lab, weights=xx, minlength=nmax + 1)
    border = np.zeros(nmax + 1, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        border[edge] = True
    area = cnt[ids] * px * px
    diam = np.sqrt(4 * area / np.pi)
    return pd.DataFrame({
        "neuron_id": ids.astype(np.int64),
        "y_um": ys[ids] / cnt[ids] * px + offset_um[0],
        "x_um": xs[ids] / cnt[ids] * px + offset_um[1],
        "area_um2": area,
        "diameter_um": diam,
        "size_class": pd.Series(size_class(diam, size_class_bounds_um), dtype=object),
        "touches_border": border[ids],
    })


def _empty(columns: list[str]) -> pd.DataFrame:
    dtypes = {"neuron_id": np.int64, "touches_border": bool, "size_class": object,
              "background_source": object}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, float)) for c in columns})


def _pow2_block(size: float, h: int, w: int) -> int:
    """Power-of-two block size <= ``size`` (reduced for tiny images only).

    Block grids are anchored at pixel (0, 0): a tile whose origin is a multiple of
    the block size sees the whole image's blocks.
    """
    f = int(max(1, size))
    f = 1 << (f.bit_length() - 1)
    while f > 1 and (h < 4 * f or w < 4 * f):
        f //= 2
    return f


def _smooth_map(values: np.ndarray, weight: np.ndarray, sigma_px: float) -> np.ndarray:
    """Normalised convolution of ``values`` over ``weight`` pixels (downsampled)."""
    h, w = values.shape
    f = _pow2_block(sigma_px / 4, h, w)
    hh, ww = -(-h // f) * f, -(-w // f) * f

    def down(a):
        a = np.pad(a, ((0, hh - h), (0, ww - w)))
        return a.reshape(hh // f, f, ww // f, f).sum(axis=(1, 3))

    num = gaussian_filter(down(values * weight), sigma_px / f)
    den = gaussian_filter(down(weight.astype(np.float32)), sigma_px / f)
    small = np.where(den > 1e-3 * f * f, num / np.maximum(den, 1e-12), np.nan)
    big = np.repeat(np.repeat(small, f, 0), f, 1)[:h, :w]
    return big


def _local_background(img, bands, valid_bg, nmax, *, percentile, min_px, sigma_px,
                      ring_labels, tissue_level=None):
    """Per-label local background with a smooth-map fallback; returns (values, sources)."""
    lab = np.where(valid_bg, bands, 0)
    n_px = np.bincount(lab.ravel(), minlength=nmax + 1)
    local = label_quantiles(img, lab, percentile / 100.0, nmax)
    source = np.full(nmax + 1, "local", dtype=object)
    need = (n_px < min_px)
    need[0] = False
    if need.any():
        wmask = valid_bg
        if wmask.any():
            bgmap = _smooth_map(img, wmask, sigma_px)
            sel = need[ring_labels] & np.isfinite(bgmap)
            fb_sum = np.bincount(ring_labels[sel], weights=bgmap[sel], minlength=nmax + 1)
            fb_cnt = np.bincount(ring_labels[sel], minlength=nmax + 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                fb = fb_sum / fb_cnt
            glob = (float(np.median(img[wmask])) if tissue_level is None
                    else float(tissue_level))
            fb = np.where(fb_cnt > 0, fb, glob)
        else:
            fb = np.full(nmax + 1, np.nan)
        local[need] = fb[need]
        source[need] = "tissue"
    return local, source


def _illumination_level(img, valid_bg, ring_labels, bg, nmax, *, sigma_px: float) -> np.ndarray:
    """Illumination level at each neuron: the smooth ordinary-tissue IgG over its ring.

    The background pixels (``valid_bg``) averaged with a Gaussian of ``sigma_px``
    (:func:`_smooth_map`), then over the neuron's ring. Where there is none within
    reach, or ``sigma_px`` is 0, the neuron's local background ``bg``.
    """
    bg = np.asarray(bg, float)
    if not sigma_px > 0 or not valid_bg.any():
        return bg
    level_map = _smooth_map(img, valid_bg, sigma_px)
    sel = (ring_labels > 0) & np.isfinite(level_map)
    s = np.bincount(ring_labels[sel], weights=level_map[sel], minlength=nmax + 1)
    n = np.bincount(ring_labels[sel], minlength=nmax + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = s / n
    return np.where((n > 0) & (level > 0), level, bg)


def _perimeter_coverage(labels, ring_px, covered, nearest, nmax):
    """Fraction of each neuron's outline pixels whose ring ray holds a covered pixel."""
    h, w = labels.shape
    iy, ix = nearest

    def outline_pixels(sel: np.ndarray) -> np.ndarray:
        # flat indices of the outline pixels nearest to the selected pixels, once each
        idx = np.flatnonzero(sel)
        b = iy.ravel()[idx].astype(np.int64) * w + ix.ravel()[idx]
        return np.unique(b)

    lf = labels.ravel()
    n_has = np.bincount(lf[outline_pixels(ring_px)], minlength=nmax + 1)
    n_cov = np.bincount(lf[outline_pixels(ring_px & covered)], minlength=nmax + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_has > 0, n_cov / np.maximum(n_has, 1), np.nan)


def _contact_zone(labels: np.ndarray, rings: np.ndarray, guard_px: float) -> np.ndarray:
    """Ring pixels within ``guard_px`` of another neuron's ring or soma."""
    own = np.where(labels > 0, labels, rings)
    half = max(1, int(round(guard_px)))
    if own.dtype.kind in "iu" and rings.dtype.kind in "iu" and (
            own.size == 0 or int(own.max()) < np.iinfo(np.int32).max):
        # the maximum / minimum filters below, in one compiled pass (equal values)
        return other_label_near(own, rings, half)
    k = 2 * half + 1
    big = np.iinfo(np.int32).max
    mx = ndi.maximum_filter(own, size=k)
    mn = ndi.minimum_filter(np.where(own == 0, big, own), size=k)
    return (rings > 0) & ((mx != rings) | (mn != rings))


def _sheath_mask(s_s: np.ndarray, sbg: np.ndarray, ring_geom: np.ndarray, excl: np.ndarray,
                 nmax: int, fraction: float) -> np.ndarray:
    """Ring pixels whose SGC-marker excess is at least ``fraction`` of the ring's peak.

    The peak is the 95th percentile of the SGC excess over the neuron's ring (its
    local SGC background subtracted); a ring without any SGC excess keeps all pixels.
    """
    ok_bg = np.where(np.isfinite(sbg), sbg, 0.0)
    ring_ok = np.where(excl, 0, ring_geom)
    peak = label_quantiles(s_s, ring_ok, 0.95, nmax) - ok_bg
    peak = np.where(np.isfinite(peak), peak, 0.0)
    cut = ok_bg + fraction * np.maximum(peak, 0.0)
    keep = (peak <= 0)[ring_geom] | (s_s >= cut[ring_geom])
    return (ring_geom > 0) & keep


def _ring_statistic(values: np.ndarray, rings: np.ndarray, nmax: int, statistic: str
                    ) -> np.ndarray:
    """Per-ring statistic of ``values`` over the ring pixels (``rings`` labels).

    ``"mean"``; ``"median"``; ``"trimmed"``: the mean of the pixels between the ring's
    10th and 90th percentiles (a speck or vessel end on a tenth of the ring does not
    move it, a bound patch on a third of it still does).
    """
    if statistic == "median":
        return label_quantiles(values, rings, 0.5, nmax)
    if statistic == "trimmed":
        lo = label_quantiles(values, rings, TRIM_LOW, nmax)
        hi = label_quantiles(values, rings, 1 - TRIM, nmax)
        # the mean of the pixels within their ring's bounds (np.bincount's sums, one pass)
        return window_mean(values, rings, lo, hi, nmax)
    rf = rings.ravel()
    v = values.ravel().astype(np.float64)
    n = np.bincount(rf, minlength=nmax + 1)
    s = np.bincount(rf, weights=v, minlength=nmax + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


#: robust refits of the glow model, and their clipping distance (robust sigmas)
GLOW_REFIT = 1
GLOW_CLIP = 3.0
#: fraction trimmed on each side by the ``"trimmed"`` ring statistic
TRIM = 0.1
TRIM_LOW = 0.1


def _glow_corrected_excess(img, labels, ring_meas, ring_geom, bands, valid_bg, excl, nmax, *,
                           px: float, p: DrgParams, fallback: np.ndarray) -> np.ndarray:
    """Ring IgG above the local background, less the blurred glow of the neuron's own IgG.

    Neurons carry cytoplasmic IgG unrelated to the SGC sheath, and the optics blur it
    across the outline onto the ring. Per neuron, IgG is fitted as ``b + c * G`` on
    the pixels around the ring that are not measured (the soma's outer
    ``glow_depth_um``, unmeasured ring pixels and the background band), where ``G``
    is the neuron mask blurred by ``glow_sigma_um`` (several sigmas: one term each,
    so that an unknown point-spread function is fitted); the excess is the ring
    pixels' median (``p.ring_statistic``; or mean) of ``IgG - c * G``, less ``b``.
    Where the fit is undetermined, ``fallback`` is kept.
    """
    inside = labels > 0
    # inside & (distance_transform_edt(inside) <= depth), exactly, from running filters
    soma = np.where(within_depth(inside, p.glow_depth_um / px) & ~excl, labels, 0)
    ring_other = np.where((ring_geom > 0) & (ring_meas == 0) & ~excl, ring_geom, 0)
    fit = soma + ring_other + np.where(valid_bg & (ring_geom == 0), bands, 0)
    del soma, ring_other
    f = fit.ravel()
    # the image and the blur stay float32: bincount casts weights to float64, and the
    # products are computed in float64 (in the compiled sums): the same values as
    # float64 copies of both, without holding them (16 bytes per pixel)
    y = img.ravel()
    rf = ring_meas.ravel()
    nr = np.bincount(rf, minlength=nmax + 1).astype(float)

    def s(idx, w=None):
        return np.bincount(idx, weights=w, minlength=nmax + 1)

    # several bincounts in one compiled pass each (the same sums, bit for bit)
    n, sy, syy = label_moment_sums(f, y, nmax)
    ry = s(rf, y)
    sig = p.glow_sigma_um if isinstance(p.glow_sigma_um, tuple) else (p.glow_sigma_um,)
    fits = []
    for k, sigma in enumerate(sig):
        # one candidate blur (point-spread function) at a time
        g = gaussian_filter(inside.astype(np.float32), sigma / px).ravel()
        fw = f
        b = c = np.zeros(nmax + 1)
        for rnd in range(1 + GLOW_REFIT):
            if rnd:
                # refit without the pixels far above the fit (bound IgG on unmeasured
                # ring pixels, specks): they are no glow
                sel = np.flatnonzero(f)
                fs = f[sel]
                r = y[sel] - b[fs] - c[fs] * g[sel]
                # |r| cast to float32 (the same values as np.abs(r).astype(np.float32),
                # without the float64 temporary)
                scale = 1.4826 * label_quantiles(np.abs(r.astype(np.float32)), fs, 0.5, nmax)
                fw = f.copy()
                fw[sel[r > GLOW_CLIP * np.nan_to_num(scale, nan=np.inf)[fs]]] = 0
                del sel, fs, r
                n, sy, syy = label_moment_sums(fw, y, nmax)
            sg, sgg, sgy = label_cross_sums(fw, g, y, nmax)
            det = n * sgg - sg * sg
            ok = (det > 1e-3 * np.maximum(n, 1) ** 2) & (n >= 10) & (nr > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                c = np.where(ok, (n * sgy - sg * sy) / np.where(ok, det, 1.0), 0.0)
                b = np.where(ok, (sy - c * sg) / np.maximum(n, 1), 0.0)
                rss = syy - 2 * (b * sy + c * sgy) + b * b * n + 2 * b * c * sg + c * c * sgg
                e = (ry - c * s(rf, g)) / np.maximum(nr, 1) - b
        if k < len(sig) - 1:  # the next blur starts again from all fit pixels
            n, sy, syy = label_moment_sums(f, y, nmax)
        fits.append((ok, rss, e, b, c))
    # the blur that fits the image's neurons best (summed over the neurons every
    # candidate fits)
    both = np.logical_and.reduce([ok for ok, _, _, _, _ in fits])
    total = [float(np.sum(rss[both])) for _, rss, _, _, _ in fits]
    best = int(np.argmin(total))
    ok, _, e, b, c = fits[best]
    if p.ring_statistic != "mean":
        # a robust statistic of the glow-corrected ring pixels: IgG-bright specks,
        # vessel ends or a neighbour's glow covering part of the ring move it little
        idx = np.flatnonzero(rf)
        if best != len(sig) - 1:  # else the last blur computed is that one
            g = gaussian_filter(inside.astype(np.float32), sig[best] / px).ravel()
        g = g[idx]
        corr = np.zeros(labels.shape, np.float32)
        corr.ravel()[idx] = (y[idx] - c[rf[idx]] * g).astype(np.float32)
        e = _ring_statistic(corr, ring_meas, nmax, p.ring_statistic) - b
    exc = np.where(ok, e, np.asarray(fallback, float))
    return exc



def measure_rings(
    labels: np.ndarray,
    igg: np.ndarray | None,
    *,
    pixel_size_um: float,
    sgc: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    params: DrgParams | None = None,
    dark_level: float | None = None,
    sgc_dark_level: float | None = None,
    rings: np.ndarray | None = None,
    return_rings: bool = False,
    tissue_levels: tuple[float | None, float | None] = (None, None),
) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
    """Measure IgG (and SGC-marker coverage) on each neuron's SGC ring.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Neuron labels (0 background); ids need not be contiguous.
    igg : ndarray, shape (Y, X), or None
        IgG channel (raw counts). None: the rings are drawn and their area and SGC
        coverage measured (background bands: every pixel that is no neuron, ring or
        excluded), the IgG columns (:data:`IGG_COLUMNS`) are left empty.
    pixel_size_um : float
        Pixel size in µm.
    sgc : ndarray, optional
        SGC-marker channel (GS); gives ``sgc_coverage`` and allows
        ``params.restrict_ring_to_sgc``.
    exclude : ndarray of bool, optional
        Pixels left out of rings and background (lipofuscin).
    params : DrgParams, optional
        Pipeline parameters (defaults if None).
    dark_level, sgc_dark_level : float, optional
        Camera offsets of the IgG and SGC channels; default ``params.dark_level``, else
        estimated from the channel. Pass one value for all tiles of a section.
    rings : ndarray of int, optional
        Precomputed rings (``make_rings(labels, ring_width_um / pixel_size_um)``).
    return_rings : bool
        Also return the ring pixels actually measured (rings less lipofuscin, vessel
        glow, contact zones with neighbours and, if asked, SGC-negative pixels).
    tissue_levels : tuple of float or None
        Image-wide typical (dark-subtracted) IgG and SGC levels, the last-resort
        background of a neuron with neither a background band nor tissue within the
        smooth map's reach (:attr:`DrgContext.medians`); default: the median of this
        image's background pixels / neurons. Pass the section's values for tiles.

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, ndarray of int32)
        Columns ``neuron_id, ring_area_um2, ring_mean, ring_median, background,
        background_source, ring_igg, ring_igg_coverage, sgc_coverage``. Intensities
        are dark-subtracted counts; ``ring_igg = ring_mean / background`` with
        ``background`` the local (band beyond the ring) percentile, or a smooth
        tissue-wide estimate (``background_source == "tissue"``) where the band is
        too small.
    """
    p = params or DrgParams()
    labels = np.asarray(labels)
    px = float(pixel_size_um)
    has_igg = igg is not None
    if has_igg and igg.shape != labels.shape:
        raise ValueError(f"igg shape {igg.shape} differs from labels shape {labels.shape}")
    nmax = int(labels.max()) if labels.size else 0
    ids = np.nonzero(np.bincount(labels.ravel(), minlength=nmax + 1)[1:])[0] + 1 if nmax else (
        np.zeros(0, int))
    if ids.size == 0:
        empty = _empty(RING_COLUMNS)
        return (empty, np.zeros(labels.shape, np.int32)) if return_rings else empty
    excl = np.zeros(labels.shape, bool) if exclude is None else np.asarray(exclude, bool)
    dl = dark_level if dark_level is not None else p.dark_level
    img = np.asarray(igg, np.float32) if has_igg else None
    if img is not None:
        img = img - (estimate_dark_level(img) if dl is None else float(dl))
    wpx, bpx = p.ring_width_um / px, p.background_width_um / px
    geom = ring_geometry(labels, wpx, bpx)
    ring_geom, bands, nearest = geom.rings, geom.bands, geom.nearest
    near_lab = geom.nearest_label if sgc is not None else None
    del geom  # its nearest-label map is only needed for the SGC-negative test
    free = (labels == 0) & (ring_geom == 0) & ~excl
    smooth = max(0.5, 0.5 / px)
    img_s = gaussian_filter(img, smooth) if has_igg else None
    # background = ordinary tissue: not empty slide, not IgG-bright structures (vessels,
    # capsule), judged against a smooth large-scale reference (a running percentile of
    # the free pixels only) so vignetting is allowed
    lo, hi = p.background_tissue_range
    if has_igg and free.any():
        # empty slide (holes, the section's edge) is no tissue background and must not
        # drag the reference down: judged against the section's typical level first
        typical = (float(tissue_levels[0]) if tissue_levels[0] is not None
                   else float(np.median(img_s[free])))
        with np.errstate(invalid="ignore"):
            free = free & (img_s > lo * typical)
    if has_igg and free.any():
        ref = local_background(img_s, window_px=p.background_reference_um / px, percentile=30.0,
                               mask=~free)
        with np.errstate(invalid="ignore"):
            valid_bg = free & (img_s > lo * ref) & (img_s < hi * ref)
            bright = ((img_s >= hi * ref) & (labels == 0)).astype(np.uint8)
        if p.bright_structure_um > 0:
            # IgG-bright structures thicker than any SGC sheath (vessels, capsule) are
            # no SGC ring: leave them out of the rings (opening with a square)
            se = max(3, int(round(p.bright_structure_um / px)))
            big = ndi.maximum_filter(ndi.minimum_filter(bright, size=se), size=se)
            big = ndi.maximum_filter(big, size=2 * max(1, int(round(1.0 / px))) + 1) > 0
            excl = excl | big
            del big
        del bright
    else:
        valid_bg = free
        ref = np.full(labels.shape, np.inf, np.float32)
        hi = 1.0
    del free
    min_px = p.min_background_area_um2 / px**2
    sigma_map = _smooth_sigma_px(p, px)
    if has_igg:
        bg, source = _local_background(img, bands, valid_bg, nmax,
                                       percentile=p.background_percentile, min_px=min_px,
                                       sigma_px=sigma_map, ring_labels=ring_geom,
                                       tissue_level=tissue_levels[0])

    sgc_cov = np.full(nmax + 1, np.nan)
    ring_meas = ring_geom
    sheath = None
    if sgc is not None:
        if sgc.shape != labels.shape:
            raise ValueError("sgc shape differs from labels shape")
        s = np.asarray(sgc, np.float32)
        sdl = sgc_dark_level if sgc_dark_level is not None else p.dark_level
        s = s - (estimate_dark_level(s) if sdl is None else float(sdl))
        s_s = gaussian_filter(s, smooth)
        sbg, _ = _local_background(s, bands, valid_bg, nmax,
                                   percentile=p.background_percentile, min_px=min_px,
                                   sigma_px=sigma_map, ring_labels=ring_geom,
                                   tissue_level=tissue_levels[1])
        del s
        sgc_pos = (ring_geom > 0) & (s_s > p.sgc_coverage_factor * np.maximum(sbg, 0)[ring_geom])
        sgc_cov = _perimeter_coverage(labels, (ring_geom > 0) & ~excl, sgc_pos, nearest, nmax)
        if p.exclude_sgc_negative_bright and has_igg:
            # IgG-bright but SGC-negative ring pixels: vessels, capsule, not sheath
            # (sgc_pos is only defined on rings: judge SGC-negativity everywhere, each
            # pixel against the SGC background of its nearest neuron: local)
            if tissue_levels[1] is not None:
                typical = float(tissue_levels[1])
            else:
                finite = sbg[ids][np.isfinite(sbg[ids])]
                typical = float(np.median(finite)) if finite.size else 0.0
            per_label = np.where(np.isfinite(sbg), sbg, typical)
            s_neg = s_s <= p.sgc_coverage_factor * np.maximum(per_label, 0)[near_lab]
            with np.errstate(invalid="ignore"):
                vessel = (img_s >= hi * ref) & s_neg & (labels == 0)
            grow = max(1, int(round(1.0 / px)))
            if vessel.any():
                reach = int(round(p.vessel_reach_um / px))
                # SGC-negative bright structures wider than the blurred fringe of a
                # bright sheath (which is SGC-negative for a pixel or two)
                seeds = binary_erosion(vessel, grow) if reach > 0 else None
                vessel = binary_dilation(vessel, grow)
                if seeds is not None and seeds.any():
                    # a vessel lying on the sheath is SGC-positive there: follow the
                    # IgG-bright pixels connected to its SGC-negative part into the ring
                    with np.errstate(invalid="ignore"):
                        lit = (img_s >= hi * ref) & (labels == 0)
                    vessel |= ndi.binary_dilation(seeds, iterations=reach + grow, mask=lit)
                del seeds
            excl = excl | ((ring_geom > 0) & vessel)
            del vessel, s_neg
        near_lab = None
        if p.sheath_fraction > 0:
            sheath = _sheath_mask(s_s, sbg, ring_geom, excl, nmax, p.sheath_fraction)
        del s_s
        if p.restrict_ring_to_sgc:
            ring_meas = np.where(sgc_pos, ring_geom, 0)
    del ref
    if rings is not None:
        ring_meas = np.asarray(rings)
        if p.restrict_ring_to_sgc and sgc is not None:
            ring_meas = np.where(sgc_pos, ring_meas, 0)
    ring_meas = np.where(excl, 0, ring_meas).astype(np.int32)
    if p.ring_guard_um > 0:
        ring_meas = np.where(_contact_zone(labels, ring_geom, p.ring_guard_um / px), 0, ring_meas)

    if sheath is not None:
        # the sheath proper: SGC-bright part of each ring (thin sheaths are not diluted
        # by the tissue that fills the rest of the fixed-width annulus)
        ring_meas = np.where(sheath, ring_meas, 0)
    ring_meas = ring_meas.astype(np.int32, copy=False)
    rf = ring_meas.ravel()
    n_ring = np.bincount(rf, minlength=nmax + 1).astype(float)
    if not has_igg:
        table = pd.DataFrame({"neuron_id": ids.astype(np.int64),
                              "ring_area_um2": n_ring[ids] * px * px,
                              **{c: (pd.Series([""] * ids.size, dtype=object)
                                     if c == "background_source" else np.full(ids.size, np.nan))
                                 for c in IGG_COLUMNS},
                              "sgc_coverage": sgc_cov[ids]})[RING_COLUMNS]
        return (table, ring_meas) if return_rings else table
    s_ring = np.bincount(rf, weights=img.ravel(), minlength=nmax + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ring_mean = np.where(n_ring > 0, s_ring / np.maximum(n_ring, 1), np.nan)
        ring_median = label_quantiles(img, ring_meas, 0.5, nmax)
    excess = {"mean": ring_mean, "median": ring_median}.get(p.ring_statistic)
    if excess is None:
        excess = _ring_statistic(img, ring_meas, nmax, p.ring_statistic)
    excess = excess - bg
    if p.glow_correction:
        excess = _glow_corrected_excess(img, labels, ring_meas, ring_geom, bands, valid_bg,
                                        excl, nmax, px=px, p=p, fallback=excess)
    level = _illumination_level(img, valid_bg, ring_geom, bg, nmax,
                                sigma_px=_illumination_sigma_px(p, px))
    with np.errstate(invalid="ignore", divide="ignore"):
        ring_igg = np.where(bg > 0, 1.0 + excess / np.where(level > 0, level, 1.0), np.nan)
    covered = img_s > p.igg_coverage_factor * np.nan_to_num(bg, nan=np.inf)[ring_geom]
    igg_cov = _perimeter_coverage(labels, (ring_meas > 0), covered, nearest, nmax)
    table = pd.DataFrame({
        "neuron_id": ids.astype(np.int64),
        "ring_area_um2": n_ring[ids] * px * px,
        "ring_mean": ring_mean[ids],
        "ring_median": ring_median[ids],
        "background": bg[ids],
        "background_source": pd.Series(source[ids], dtype=object),
        "ring_igg": ring_igg[ids],
        "ring_igg_coverage": igg_cov[ids],
        "sgc_coverage": sgc_cov[ids],
    })
    return (table, ring_meas) if return_rings else table


def measure_drg(
    neuron: np.ndarray,
    igg: np.ndarray | None,
    *,
    pixel_size_um: float,
    sgc: np.ndarray | None = None,
    nuclei: np.ndarray | None = None,
    params: DrgParams | None = None,
    labels: np.ndarray | None = None,
    dark_levels: dict[str, float] | None = None,
    lipofuscin: np.ndarray | None = None,
    context: DrgContext | None = None,
) -> DrgResult:
    """Segment neurons and measure IgG on their SGC rings in one DRG section.

    Parameters
    ----------
    neuron : ndarray, shape (Y, X)
        Neuron-marker channel (NeuN, beta-III-tubulin, PGP9.5).
    igg : ndarray, shape (Y, X), or None
        IgG channel. None (a section stained for neurons and SGCs only): neurons are
        segmented and measured, rings drawn, and the IgG columns of the table
        (:data:`IGG_COLUMNS`) left empty (NaN); nothing is computed from a stand-in.
    pixel_size_um : float
        Pixel size in µm.
    sgc : ndarray, optional
        SGC-marker channel (GS, FABP7, Kir4.1).
    nuclei : ndarray, optional
        Nuclear channel (DAPI); only helps lipofuscin rejection.
    params : DrgParams, optional
        Pipeline parameters (defaults if None).
    labels : ndarray of int, optional
        Neuron labels to use instead of segmenting (reviewed or tiled labels).
    dark_levels : dict, optional
        Camera offsets by channel role (``"neuron"``, ``"igg"``, ``"sgc"``,
        ``"nuclei"``), overriding ``params.dark_level`` and the estimate. A tiling
        layer passes the whole section's values (``result.dark_levels``) so that
        every tile subtracts the same offset.
    lipofuscin : ndarray of bool, optional
        Precomputed lipofuscin mask (e.g. from the whole section), used instead of
        detecting it.
    context : DrgContext, optional
        The section's image-wide statistics (dark levels, medians, lipofuscin
        thresholds, contrast spread). Computed from these channels with
        :func:`compute_context` when None; a tile passes its whole section's context
        (then everything is local and the tile's neurons equal the whole image's).
        Its dark levels take precedence over ``dark_levels``.

    Returns
    -------
    DrgResult
        Labels, rings, lipofuscin mask and the per-neuron table (columns
        :data:`TABLE_COLUMNS`).

    Examples
    --------
    >>> from histo_fms.synthetic.drg import make_drg_section
    >>> ph = make_drg_section((256, 256), seed=1)
    >>> res = measure_drg(ph.channel("NeuN"), ph.channel("IgG"), pixel_size_um=0.5,
    ...                   sgc=ph.channel("GS"))
    >>> list(res.table.columns[:3])
    ['neuron_id', 'y_um', 'x_um']
    """
    p = params or DrgParams()
    neuron = np.asarray(neuron)
    has_igg = igg is not None
    igg = np.asarray(igg) if has_igg else None
    if neuron.ndim != 2 or (has_igg and igg.shape != neuron.shape):
        raise ValueError(f"need 2-D channels of one shape, got {neuron.shape} and "
                         f"{None if igg is None else igg.shape}")
    for name, ch in (("sgc", sgc), ("nuclei", nuclei), ("labels", labels)):
        if ch is not None and np.shape(ch) != neuron.shape:
            raise ValueError(f"{name} shape {np.shape(ch)} differs from {neuron.shape}")
    px = float(pixel_size_um)
    if not px > 0:
        raise ValueError("pixel_size_um must be positive")
    roles = {"neuron": neuron}
    if has_igg:
        roles["igg"] = igg
    if sgc is not None:
        roles["sgc"] = np.asarray(sgc)
    if nuclei is not None:
        roles["nuclei"] = np.asarray(nuclei)
    if context is None:
        # the lipofuscin thresholds are computed by detect_lipofuscin from the same
        # flat-fielded channels (identical values, computed once)
        context = compute_context(roles, pixel_size_um=px, params=p, dark_levels=dark_levels,
                                  lipofuscin=False)
    elif dark_levels:
        unknown = set(dark_levels) - {"neuron", "igg", "sgc", "nuclei"}
        if unknown:
            raise ValueError(f"unknown channel roles in dark_levels: {sorted(unknown)}")
    missing = set(roles) - set(context.dark_levels)
    if missing:
        raise ValueError(f"context lacks channel roles {sorted(missing)}")
    dark = {k: float(context.dark_levels[k]) for k in roles}
    flag = section_flags(context, roles, p)
    labels, foreground, lipo = _segment_drg(roles, px, p, context, labels, lipofuscin)
    roles = _usable_roles(roles, context, p)
    morph = measure_neurons(labels, pixel_size_um=px, size_class_bounds_um=p.size_class_bounds_um)
    ring_tab, measured = measure_rings(labels, igg, pixel_size_um=px, sgc=roles.get("sgc"),
                                       exclude=lipo, params=p, dark_level=dark.get("igg", 0.0),
                                       sgc_dark_level=dark.get("sgc"),
                                       return_rings=True,
                                       tissue_levels=(context.medians.get("igg"),
                                                      context.medians.get("sgc")))
    table = morph.merge(ring_tab, on="neuron_id", how="left") if len(morph) else _empty(
        TABLE_COLUMNS)
    table = table[TABLE_COLUMNS].reset_index(drop=True)
    return DrgResult(neurons=labels, rings=measured, table=table, lipofuscin=lipo,
                     dark_levels=dark, foreground=foreground, qc_flag=flag,
                     context=context)


def _usable_roles(roles: dict[str, np.ndarray], context: DrgContext, p: DrgParams
                  ) -> dict[str, np.ndarray]:
    """Return the channel roles less an SGC channel with no structure above its noise.

    Such a channel would cut the segmentation's foreground along noise ridges, drop
    random IgG-bright pixels from the rings as SGC-negative and give a meaningless
    ``sgc_coverage``; with ``restrict_ring_to_sgc`` nothing can be measured.
    """
    if "sgc" not in roles or sgc_usable(context, p):
        return roles
    if p.restrict_ring_to_sgc:
        raise NoSignalError(sgc_no_signal_message(context, p)
                            + " restrict_ring_to_sgc needs an SGC channel to measure on")
    return {k: v for k, v in roles.items() if k != "sgc"}


def _segment_drg(roles: dict[str, np.ndarray], px: float, p: DrgParams, context: DrgContext,
                 labels: np.ndarray | None, lipofuscin: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Lipofuscin mask and neuron labels of :func:`measure_drg` (labels, foreground, mask)."""
    neuron = roles["neuron"]
    given = roles
    dark = {k: float(context.dark_levels[k]) for k in given}
    if labels is None:  # nothing to segment on a neuron channel of noise
        check_neuron_signal(context, p)
    roles = _usable_roles(roles, context, p)
    if lipofuscin is not None:
        lipo = np.asarray(lipofuscin, bool)
        if lipo.shape != neuron.shape:
            raise ValueError(f"lipofuscin shape {lipo.shape} differs from {neuron.shape}")
    elif lipofuscin_roles(roles, p):
        lr = lipofuscin_roles(roles, p)
        given_thr = context.lipofuscin_thresholds
        lipo = detect_lipofuscin([roles[k] for k in lr], pixel_size_um=px,
                                 min_contrast=p.lipofuscin_min_contrast,
                                 quantile=p.lipofuscin_quantile,
                                 max_area_um2=p.lipofuscin_max_area_um2,
                                 dilate_um=p.lipofuscin_dilate_um,
                                 dark_levels=[dark[k] for k in lr],
                                 medians=[context.medians[k] for k in lr],
                                 maxima=[context.maxima[k] for k in lr],
                                 thresholds=([given_thr[k] for k in lr]
                                             if all(k in given_thr for k in lr) else None))
    else:
        lipo = np.zeros(neuron.shape, bool)
    foreground = None
    if labels is None:
        opts = {"min_diameter_um": p.min_diameter_um, "max_diameter_um": p.max_diameter_um}
        if p.segmentation_backend == "classical":
            opts["exclude"] = lipo
            opts["spread"] = context.neuron_spread
            if "sgc" in roles:  # the SGC sheath separates touching somata
                opts["sgc"] = roles["sgc"]
                opts["sgc_spread"] = context.sgc_spread
        opts.update(p.segmentation_options)
        if p.segmentation_backend == "classical":
            labels, foreground = _segment_classical(neuron, pixel_size_um=px, **opts)
        else:
            # a trained model gets the channels it was trained on, used or not
            others = {k: given[k] for k in ("sgc", "nuclei") if k in given}
            if p.segmentation_backend == "pixel_classifier":
                # normalise by the section's levels, so tiles equal the whole image
                opts.setdefault("levels", {k: (dark[k], float(context.highs[k]))
                                           for k in ("neuron", *others)
                                           if k in context.highs})
            labels = canonical_labels(segment_neurons(neuron, pixel_size_um=px,
                                                      backend=p.segmentation_backend,
                                                      channels=others, **opts))
    return np.asarray(labels).astype(np.int32, copy=False), foreground, lipo


def segment_drg(neuron: np.ndarray, *, pixel_size_um: float, context: DrgContext,
                sgc: np.ndarray | None = None, nuclei: np.ndarray | None = None,
                igg: np.ndarray | None = None, params: DrgParams | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Segment a DRG section as :func:`measure_drg` does: lipofuscin mask and labels.

    Gives exactly the labels and lipofuscin mask that :func:`measure_drg` uses with the
    same ``context`` (a tiled run segments the section first, then measures it with the
    labels given).

    Parameters
    ----------
    neuron : ndarray, shape (Y, X)
        Neuron-marker channel.
    pixel_size_um : float
        Pixel size in µm.
    context : DrgContext
        The section's image-wide statistics.
    sgc, nuclei, igg : ndarray, optional
        The other channels (lipofuscin is detected on all channels present).
    params : DrgParams, optional
        Pipeline parameters.

    Returns
    -------
    labels : ndarray of int32
        Neuron labels.
    foreground : ndarray of bool or None
        The classical segmentation's foreground mask (None for other backends).
    lipofuscin : ndarray of bool
        Lipofuscin mask.
    """
    p = params or DrgParams()
    roles = {"neuron": np.asarray(neuron)}
    for k, ch in (("igg", igg), ("sgc", sgc), ("nuclei", nuclei)):
        if ch is not None:
            if np.shape(ch) != roles["neuron"].shape:
                raise ValueError(f"{k} shape {np.shape(ch)} differs from "
                                 f"{roles['neuron'].shape}")
            roles[k] = np.asarray(ch)
    missing = set(roles) - set(context.dark_levels)
    if missing:
        raise ValueError(f"context lacks channel roles {sorted(missing)}")
    return _segment_drg(roles, float(pixel_size_um), p, context, None, None)
