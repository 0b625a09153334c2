"""Synthetic skin sections (PGP9.5 / collagen IV / DAPI) with IENFD ground truth.

The phantom models a 50 µm skin section (human distal leg or mouse footpad),
z-projected, imaged in three channels: ``PGP9.5`` (nerve fibres), ``ColIV``
(basement membrane, i.e. the dermal-epidermal junction, DEJ) and ``DAPI``
(nuclei). It contains what the IENFD counting rules are about:

* a stratum corneum with autofluorescence (bright-ish in PGP9.5 and DAPI);
* an epidermis 30-100 µm thick packed with keratinocyte nuclei, a basal row of
  nuclei on the DEJ, and rete ridges (an undulating DEJ);
* a thin bright collagen IV line on the DEJ, weaker collagen IV around dermal vessels;
* a dermis with sparse nuclei, a sub-epidermal nerve plexus and thick dermal nerve
  bundles;
* intraepidermal fibres crossing the DEJ: thin, beaded, tortuous, some branching
  inside the epidermis, some with an out-of-plane gap after the crossing;
* decoys that must not be counted: fragments wholly inside the epidermis, fibres
  running parallel just beneath the DEJ, and the dermal bundles / plexus.

The truth is one row per countable crossing, at the point where the fibre meets
the DEJ. All coordinates are in µm from the top-left pixel centre (y down, x right).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ._imaging import acquire, vignetting

__all__ = ["SkinPhantom", "make_skin_section", "match_crossings", "evaluate_skin"]

# Signal levels (arbitrary units; ``acquire`` turns one unit into 40 photons).
_BG = 0.05
_PGP_EPI, _PGP_DERMIS, _PGP_SC = 0.5, 0.4, 2.5
_DAPI_EPI, _DAPI_DERMIS, _DAPI_SC = 0.4, 0.3, 2.5
_COL_TISSUE, _COL_DEJ, _COL_VESSEL = 0.3, 9.0, 3.0


@dataclass
class SkinPhantom:
    """A synthetic skin section and its ground truth.

    Attributes
    ----------
    image : ndarray of uint16, shape (C, Y, X)
        Channels in the order of ``channel_names``.
    pixel_size_um : float
        Pixel size in µm.
    channel_names : list of str
        ``["PGP9.5", "ColIV", "DAPI"]`` (``"ColIV"`` absent without membrane).
    epidermis : ndarray of bool, shape (Y, X)
        True epidermis (stratum corneum included), from surface to DEJ.
    truth_crossings : pandas.DataFrame
        One row per countable crossing: ``y_um, x_um, fibre_id`` (point on the DEJ).
    surface_um, dej_um : ndarray of float, shape (N, 2)
        True epidermal surface and DEJ polylines, ``(y_um, x_um)``.
    surface_length_um, dej_length_um : float
        Lengths of these polylines in µm.
    orientation : str
        ``"up"`` (epidermis at the top of the image) or ``"down"``.
    density_per_mm : float
        The requested fibre density (fibres per mm of surface).
    decoys : dict
        Number of each decoy kind placed (``fragments``, ``parallel``, ``bundles``),
        and of crossing fibres that branch (``branched``) or have a gap (``gapped``).
    """

    image: np.ndarray
    pixel_size_um: float
    channel_names: list[str]
    epidermis: np.ndarray
    truth_crossings: pd.DataFrame
    surface_um: np.ndarray
    dej_um: np.ndarray
    surface_length_um: float
    dej_length_um: float
    orientation: str = "up"
    density_per_mm: float = 0.0
    decoys: dict = field(default_factory=dict)

    @property
    def n_crossings(self) -> int:
        """Number of countable crossings (true fibre count)."""
        return int(len(self.truth_crossings))

    @property
    def ienfd_per_mm(self) -> float:
        """True IENFD: crossings per mm of epidermal surface."""
        return self.n_crossings / (self.surface_length_um / 1000.0)

    def channel(self, name: str) -> np.ndarray:
        """Return the channel called ``name`` as a 2-D array."""
        return self.image[self.channel_names.index(name)]


def _smooth_1d(n: int, rng: np.random.Generator, scale: float, amp: float) -> np.ndarray:
    """Random smooth 1-D signal of ``n`` samples, features ~``scale`` samples, sd ``amp``."""
    s = ndi.gaussian_filter1d(rng.normal(size=n + 4 * int(scale) + 8), max(scale, 1.0),
                              mode="wrap")
    s = s[2 * int(scale) + 4: 2 * int(scale) + 4 + n]
    return amp * s / max(float(s.std()), 1e-9)


def _polyline_length(p: np.ndarray) -> float:
    return float(np.sum(np.hypot(*np.diff(p, axis=0).T))) if len(p) > 1 else 0.0


class _Canvas:
    """Accumulates line samples (in pixel coordinates) into a float image."""

    def __init__(self, shape):
        self.img = np.zeros(shape, np.float32)

    def add(self, ys, xs, w):
        h, wd = self.img.shape
        iy, ix = np.round(ys).astype(int), np.round(xs).astype(int)
        ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd)
        np.add.at(self.img, (iy[ok], ix[ok]), np.broadcast_to(w, ys.shape)[ok])


def _densify(path: np.ndarray, step: float = 0.25) -> np.ndarray:
    """Resample a polyline (pixel units) every ``step`` pixels."""
    if len(path) < 2:
        return path
    seg = np.hypot(*np.diff(path, axis=0).T)
    s = np.concatenate([[0], np.cumsum(seg)])
    t = np.arange(0, s[-1] + 1e-9, step)
    return np.stack([np.interp(t, s, path[:, 0]), np.interp(t, s, path[:, 1])], 1)


def _beaded_weight(n: int, rng, px: float, base: float) -> np.ndarray:
    """Intensity along a fibre of ``n`` samples (0.25 px apart): varicosities."""
    w = np.full(n, base, np.float32)
    pos = 0.0
    step_um = 0.25 * px
    while True:
        pos += rng.uniform(2.0, 5.0)
        k = int(pos / step_um)
        if k >= n:
            break
        width = max(1, int(rng.uniform(0.5, 1.0) / step_um))
        lo, hi = max(0, k - width), min(n, k + width)
        w[lo:hi] *= rng.uniform(1.6, 2.8)
    # slow fading along the fibre (focus / staining variation)
    w *= np.clip(1 + 0.25 * _smooth_1d(n, rng, 40, 1.0), 0.45, 1.6).astype(np.float32)
    return w


def make_skin_section(
    shape: tuple[int, int] = (600, 2400),
    pixel_size_um: float = 0.5,
    *,
    density_per_mm: float = 12.0,
    seed: int = 0,
    with_membrane: bool = True,
    orientation: str = "up",
    n_fibres: int | None = None,
    thickness_um: tuple[float, float] = (40.0, 80.0),
    rete_amplitude_um: float = 12.0,
    min_spacing_um: float = 10.0,
    branch_fraction: float = 0.3,
    gap_fraction: float = 0.2,
    fragments_per_mm: float = 8.0,
    parallel_per_mm: float = 4.0,
    n_bundles: int | None = None,
    plexus: bool = True,
    fibre_brightness: float = 1.0,
    vignetting_strength: float = 0.3,
    photons_per_unit: float = 40.0,
    dark_level: float = 100.0,
    read_noise: float = 3.0,
    membrane_gaps_per_mm: float = 0.0,
    vessel_min_depth_um: float = 25.0,
    basal_dropout: float = 0.0,
    deep_ridges_per_mm: float = 0.0,
    epidermal_autofluorescence: bool = True,
) -> SkinPhantom:
    """Generate a synthetic skin section with intraepidermal-fibre ground truth.

    Parameters
    ----------
    shape : tuple of int
        Image shape (Y, X) in pixels; the section runs along X.
    pixel_size_um : float
        Pixel size in µm.
    density_per_mm : float
        Expected number of crossing fibres per mm of epidermal surface (Poisson).
        0 gives a section without intraepidermal fibres.
    seed : int
        Random seed.
    with_membrane : bool
        Include the collagen IV channel.
    orientation : {"up", "down"}
        Epidermis at the top (``"up"``) or the bottom (``"down"``) of the image.
    n_fibres : int, optional
        Exact number of crossing fibres (overrides ``density_per_mm``).
    thickness_um : tuple of float
        Range of the mean epidermal thickness (stratum corneum included), µm.
    rete_amplitude_um : float
        Amplitude of the rete ridges (DEJ undulation), µm.
    min_spacing_um : float
        Minimum distance along the section between two crossings, µm.
    branch_fraction : float
        Fraction of crossing fibres that branch inside the epidermis (count once).
    gap_fraction : float
        Fraction of crossing fibres with an out-of-plane gap after the crossing.
    fragments_per_mm : float
        Expected number of intraepidermal fragments (not crossing; not counted) per mm.
    parallel_per_mm : float
        Expected number of fibres running parallel just beneath the DEJ per mm.
    n_bundles : int, optional
        Number of thick dermal nerve bundles (default: 1-3).
    plexus : bool
        Draw the sub-epidermal nerve plexus the crossing fibres come from.
    fibre_brightness : float
        Multiplier of the fibre signal.
    vignetting_strength : float
        Fall-off of the illumination towards the corners.
    photons_per_unit, dark_level, read_noise : float
        Camera model (see :func:`histo_fms.synthetic._imaging.acquire`).
    membrane_gaps_per_mm : float
        Expected number of gaps (8-25 µm long) in the collagen IV line per mm.
    vessel_min_depth_um : float
        Dermal vessel walls (collagen IV rings) start this far below the DEJ.
    basal_dropout : float
        Fraction of the basal row of nuclei left out (a ragged nuclear layer edge).
    deep_ridges_per_mm : float
        Expected number per mm of deep narrow rete ridges (15-35 µm deep, 15-35 µm wide
        at half depth, steep flanks) added to the undulating DEJ.
    epidermal_autofluorescence : bool
        The living epidermis is a little brighter than the dermis in the fibre channel
        (diffuse background); False makes both the same.

    Returns
    -------
    SkinPhantom
        The image and its ground truth.
    """
    if orientation not in ("up", "down"):
        raise ValueError(f"orientation must be 'up' or 'down', not {orientation!r}")
    rng = np.random.default_rng(seed)
    rng2 = np.random.default_rng([seed, 7])  # the harder options; seeds stay comparable
    h, w = shape
    px = float(pixel_size_um)
    xs = np.arange(w, dtype=np.float64)

    # --- geometry (pixel units, epidermis at the top; flipped at the end) -------------
    thick_um = rng.uniform(*thickness_um)
    surf = (rng.uniform(25, 40) / px + _smooth_1d(w, rng, 150 / px, 4.0 / px))
    period = rng.uniform(60, 110) / px
    rete = rete_amplitude_um / px * (
        0.7 * np.sin(2 * np.pi * xs / period + rng.uniform(0, 6.3))
        + 0.3 * _smooth_1d(w, rng, 20 / px, 1.0)
    )
    rng3 = np.random.default_rng([seed, 11])  # deep ridges: other streams unchanged
    n_deep = rng3.poisson(max(deep_ridges_per_mm, 0.0) * w * px / 1000.0)
    for _ in range(n_deep):
        # super-Gaussian profile: flat bottom, steep flanks
        x0, half = rng2.uniform(0, w), rng2.uniform(7.5, 17.5) / px
        rete = rete + rng3.uniform(15, 35) / px * np.exp(-np.abs((xs - x0) / half) ** 4 * 0.69)
    thickness = np.clip(thick_um / px + rete + _smooth_1d(w, rng, 200 / px, 5 / px),
                        30 / px, (100 + (35 if n_deep else 0)) / px)
    dej = surf + thickness
    sc_thick = rng.uniform(8, 14) / px  # stratum corneum
    yy = np.arange(h, dtype=np.float64)[:, None]
    tissue = yy >= surf[None]
    epi = tissue & (yy < dej[None])
    sc = tissue & (yy < (surf + sc_thick)[None])
    dermis = yy >= dej[None]

    def dej_at(x):
        return np.interp(x, xs, dej)

    def surf_at(x):
        return np.interp(x, xs, surf)

    # --- base channels ------------------------------------------------------------------
    texture = 1 + 0.25 * ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), 3 / px)
    pgp = np.full(shape, _BG, np.float32)
    pgp[epi] = _PGP_EPI if epidermal_autofluorescence else _PGP_DERMIS
    pgp[dermis] = _PGP_DERMIS
    pgp[sc] = _PGP_SC
    pgp *= texture
    dapi = np.full(shape, _BG, np.float32)
    dapi[epi] = _DAPI_EPI
    dapi[dermis] = _DAPI_DERMIS
    dapi[sc] = _DAPI_SC
    dapi *= texture
    col = np.full(shape, _BG, np.float32)
    col[tissue] = _COL_TISSUE

    # --- nuclei -------------------------------------------------------------------------
    nuc = _Canvas(shape)
    # keratinocytes: jittered grid inside the living epidermis
    sp = 7.5 / px
    gy, gx = np.mgrid[0:h:sp, 0:w:sp]
    cy = gy.ravel() + rng.uniform(-0.35, 0.35, gy.size) * sp
    cx = gx.ravel() + rng.uniform(-0.35, 0.35, gx.size) * sp
    ok = (cx >= 0) & (cx < w)
    cy, cx = cy[ok], cx[ok]
    inside = (cy > surf_at(cx) + sc_thick + 3 / px) & (cy < dej_at(cx) - 6 / px)
    nuc.add(cy[inside], cx[inside], rng.uniform(0.7, 1.3, inside.sum()))
    # basal row, nuclei centred 3.5 µm above the DEJ
    bx = np.arange(0, w, 6.5 / px) + rng.uniform(-1, 1, int(np.ceil(w / (6.5 / px)))) / px
    bx = bx[(bx >= 0) & (bx < w)]
    if basal_dropout > 0:
        bx = bx[rng2.uniform(size=bx.size) >= basal_dropout]
    nuc.add(dej_at(bx) - 3.5 / px, bx, rng.uniform(0.8, 1.3, bx.size))
    # sparse dermal nuclei
    n_d = rng.poisson(dermis.sum() * px * px / 900.0)
    dy, dx = rng.uniform(0, h, n_d), rng.uniform(0, w, n_d)
    keep = dy > dej_at(dx) + 4 / px
    nuc.add(dy[keep], dx[keep], rng.uniform(0.5, 1.1, keep.sum()))
    nuclei = ndi.gaussian_filter(nuc.img, 2.2 / px) * (2 * np.pi * (2.2 / px) ** 2)
    dapi += 6.0 * np.minimum(nuclei, 1.3) * texture

    # --- collagen IV: DEJ line and dermal vessels ---------------------------------------
    colc = _Canvas(shape)
    line = _densify(np.stack([dej, xs], 1))
    lw = 0.25 * np.clip(1 + 0.3 * _smooth_1d(len(line), rng, 200, 1.0), 0.4, 1.6)
    n_gaps = rng2.poisson(max(membrane_gaps_per_mm, 0.0) * w * px / 1000.0)
    for _ in range(n_gaps):
        g0, glen = rng2.uniform(0, w), rng2.uniform(8, 25) / px
        lw = np.where((line[:, 1] >= g0) & (line[:, 1] < g0 + glen), 0.0, lw)
    colc.add(line[:, 0], line[:, 1], lw)
    n_vessels = rng.integers(3, 8)
    vessel_rings = []
    for _ in range(n_vessels):
        vx = rng.uniform(0, w)
        lo_v = dej_at(vx) + vessel_min_depth_um / px
        if lo_v >= h:
            continue
        vy = rng.uniform(lo_v, h + 10 / px)
        r = rng.uniform(4, 10) / px
        t = np.linspace(0, 2 * np.pi, int(2 * np.pi * r * 4) + 8)
        ry = vy + r * np.sin(t) * rng.uniform(0.6, 1.0)
        rx = vx + r * np.cos(t)
        colc.add(ry, rx, 0.25 * _COL_VESSEL / _COL_DEJ)
        vessel_rings.append((ry, rx))
    # unit line density (samples 0.25 px apart, weight 0.25) -> peak ~_COL_DEJ after the PSF
    col += _COL_DEJ * 3.4 * ndi.gaussian_filter(colc.img, 0.5 / px) * texture

    # --- fibres -------------------------------------------------------------------------
    fib = _Canvas(shape)
    bundle = _Canvas(shape)
    surf_len_um = _polyline_length(np.stack([surf, xs], 1)) * px
    if n_fibres is None:
        n_fibres = int(rng.poisson(max(density_per_mm, 0.0) * surf_len_um / 1000.0))
    margin = 8 / px
    xc_list: list[float] = []
    tries = 0
    while len(xc_list) < n_fibres and tries < 200 * max(n_fibres, 1):
        tries += 1
        x = rng.uniform(margin, w - 1 - margin)
        if all(abs(x - o) >= min_spacing_um / px for o in xc_list):
            xc_list.append(x)
    xc_list.sort()

    def walk(y0, x0, ang, n_steps, step, turn, up_limit):
        """Random walk upwards (towards the surface); ang = 0 is straight up."""
        pts = [(y0, x0)]
        a = ang
        for _ in range(n_steps):
            a = float(np.clip(a + rng.normal(0, turn), -up_limit, up_limit))
            y0, x0 = y0 - step * np.cos(a), x0 + step * np.sin(a)
            pts.append((y0, x0))
        return np.array(pts)

    def fibre_w(n, base=1.0):
        return _beaded_weight(n, rng, px, base * fibre_brightness * rng.uniform(0.45, 1.0))

    plexus_depths = ([rng.uniform(12, 30) / px + _smooth_1d(w, rng, 60 / px, 3 / px)
                      for _ in range(rng.integers(2, 4))] if plexus else [])
    rows = []
    n_branch = n_gap = 0
    step = 0.5 / px
    for fid, xc in enumerate(xc_list, start=1):
        yc = dej_at(xc)
        # dermal part: from the sub-epidermal plexus (10-30 µm below the DEJ) up to the
        # crossing; fibres joined only through the plexus are distinct fibres
        x_start = float(np.clip(xc + rng.uniform(-10, 10) / px, 0, w - 1))
        if plexus_depths:
            depth = plexus_depths[int(rng.integers(len(plexus_depths)))][int(x_start)]
        else:
            depth = rng.uniform(10, 25) / px
        y_start = dej_at(x_start) + depth
        t = np.linspace(0, 1, 40)
        bow = rng.uniform(-4, 4) / px * np.sin(np.pi * t)
        lower = np.stack([y_start + (yc - y_start) * t, x_start + (xc - x_start) * t + bow], 1)
        # epidermal part: tortuous walk to 30-90 % of the local living-epidermis depth
        room = (yc - surf_at(xc) - sc_thick - 2 / px)
        target = max(rng.uniform(0.3, 0.9) * room, 8 / px)
        a0 = rng.normal(0, 0.25)
        pts = [np.array([yc, xc])]
        a = a0
        while True:
            a = float(np.clip(a + rng.normal(0, 0.12), -0.6, 0.6))
            p = pts[-1] + step * np.array([-np.cos(a), np.sin(a)])
            pts.append(p)
            pen = dej_at(p[1]) - p[0]
            if pen >= target or len(pts) > 4 * room / step or not (2 < p[1] < w - 3):
                break
        upper = np.array(pts)
        n_up = len(upper)
        # branch inside the epidermis (counts once)
        if rng.uniform() < branch_fraction and n_up > int(6 / 0.5):
            k = rng.integers(int(3 / 0.5), max(int(3 / 0.5) + 1, n_up - int(2 / 0.5)))
            side = rng.choice([-1, 1])
            br = walk(upper[k, 0], upper[k, 1], a0 + side * rng.uniform(0.4, 0.8),
                      int(rng.uniform(6, 20) / 0.5), step, 0.1, 1.0)
            br = br[(br[:, 0] > surf_at(np.clip(br[:, 1], 0, w - 1)) + sc_thick)
                    & (br[:, 0] < dej_at(np.clip(br[:, 1], 0, w - 1)) - 2 / px)]
            if len(br) > 4:
                d = _densify(br)
                fib.add(d[:, 0], d[:, 1], fibre_w(len(d)))
                n_branch += 1
        # out-of-plane gap after the crossing (after >= 6 µm of penetration)
        if rng.uniform() < gap_fraction and n_up > int(14 / 0.5):
            pen = dej_at(upper[:, 1]) - upper[:, 0]
            ks = np.flatnonzero(pen >= 6 / px)
            if ks.size:
                k0 = ks[0]
                k1 = k0 + int(rng.uniform(2.0, 4.0) / 0.5)
                if k1 < n_up - int(4 / 0.5):
                    upper = np.concatenate([upper[:k0], np.full((k1 - k0, 2), np.nan),
                                            upper[k1:]])
                    n_gap += 1
        full = np.concatenate([lower, upper[1:]])
        # draw (skip NaN gap)
        good = ~np.isnan(full[:, 0])
        runs = np.split(full, np.flatnonzero(np.diff(good.astype(int)) != 0) + 1)
        wbase = rng.uniform(0.45, 1.0) * fibre_brightness
        for run in runs:
            if np.isnan(run[0, 0]) or len(run) < 2:
                continue
            d = _densify(run)
            fib.add(d[:, 0], d[:, 1], _beaded_weight(len(d), rng, px, wbase))
        rows.append((yc, xc, fid))

    # decoys -------------------------------------------------------------------------------
    len_mm = w * px / 1000.0
    n_frag = int(rng.poisson(fragments_per_mm * len_mm))
    for _ in range(n_frag):
        x0 = rng.uniform(margin, w - 1 - margin)
        lo, hi = surf_at(x0) + sc_thick + 3 / px, dej_at(x0) - 6 / px
        if hi <= lo:
            continue
        y0 = rng.uniform(lo, hi)
        seg = walk(y0, x0, rng.uniform(-1.2, 1.2), int(rng.uniform(5, 20) / 0.5), step,
                   0.2, 3.0)
        cx_ = np.clip(seg[:, 1], 0, w - 1)
        seg = seg[(seg[:, 0] > surf_at(cx_) + sc_thick) & (seg[:, 0] < dej_at(cx_) - 5 / px)]
        if len(seg) > 3:
            d = _densify(seg)
            fib.add(d[:, 0], d[:, 1], fibre_w(len(d)))
    n_par = int(rng.poisson(parallel_per_mm * len_mm))
    for _ in range(n_par):
        x0 = rng.uniform(0, w - 1)
        L = rng.uniform(30, 120) / px
        xx = np.arange(x0, min(x0 + L, w - 1), 1.0)
        if xx.size < 4:
            continue
        # offset measured along the local normal of the DEJ (4-8 µm beneath it)
        off = rng.uniform(4.0, 8.0) / px + _smooth_1d(xx.size, rng, 15 / px, 0.7 / px)
        off = np.clip(off, 3.5 / px, None)
        slope = np.gradient(dej)[np.clip(xx.astype(int), 0, w - 1)]
        nrm = np.sqrt(1 + slope**2)
        d = _densify(np.stack([dej_at(xx) + off / nrm, xx - off * slope / nrm], 1))
        fib.add(d[:, 0], d[:, 1], fibre_w(len(d), 1.3))
    if plexus:
        for depth in plexus_depths:
            d = _densify(np.stack([dej + depth, xs], 1))
            keep = rng.uniform() < 0.5
            mask = np.ones(len(d), bool) if keep else (
                _smooth_1d(len(d), rng, 400, 1.0) > -0.3)
            d = d[mask]
            bundle.add(d[:, 0], d[:, 1], 0.9 * fibre_brightness * rng.uniform(0.6, 1.0))
    if n_bundles is None:
        n_bundles = int(rng.integers(1, 4))
    for _ in range(n_bundles):
        x0 = rng.uniform(0, w)
        y0 = dej_at(x0) + rng.uniform(45, 90) / px
        ang = rng.uniform(-0.5, 0.5) + np.pi / 2
        n = int(rng.uniform(80, 300) / 0.5)
        path = walk(y0, x0, ang, n, step, 0.05, 3.0)
        path = path[path[:, 0] > dej_at(np.clip(path[:, 1], 0, w - 1)) + 35 / px]
        if len(path) < 4:
            continue
        d = _densify(path)
        width = rng.uniform(5, 14) / px
        for o in np.linspace(-width / 2, width / 2, max(3, int(width))):
            bundle.add(d[:, 0] + o, d[:, 1], 0.9 * fibre_brightness)
    pgp += 4.0 * ndi.gaussian_filter(fib.img, 0.3 / px)
    pgp += 4.0 * ndi.gaussian_filter(bundle.img, 0.5 / px)

    # --- acquisition ----------------------------------------------------------------------
    illum = vignetting(shape, vignetting_strength, rng)
    kw = dict(psf_sigma_px=0.45 / px, illumination=illum, photons_per_unit=photons_per_unit,
              read_noise=read_noise, offset=dark_level)
    chans = [acquire(pgp, rng, **kw)]
    names = ["PGP9.5"]
    if with_membrane:
        chans.append(acquire(col, rng, **kw))
        names.append("ColIV")
    chans.append(acquire(dapi, rng, **kw))
    names.append("DAPI")
    image = np.stack(chans)

    surface_um = np.stack([surf, xs], 1) * px
    dej_um = np.stack([dej, xs], 1) * px
    truth = pd.DataFrame(rows, columns=["y_um", "x_um", "fibre_id"])
    truth[["y_um", "x_um"]] *= px
    truth["fibre_id"] = truth["fibre_id"].astype(int)
    if orientation == "down":
        image = image[:, ::-1].copy()
        epi = epi[::-1].copy()
        top = (h - 1) * px
        surface_um[:, 0] = top - surface_um[:, 0]
        dej_um[:, 0] = top - dej_um[:, 0]
        truth["y_um"] = top - truth["y_um"]
    return SkinPhantom(
        image=image, pixel_size_um=px, channel_names=names, epidermis=epi,
        truth_crossings=truth, surface_um=surface_um, dej_um=dej_um,
        surface_length_um=_polyline_length(surface_um), dej_length_um=_polyline_length(dej_um),
        orientation=orientation, density_per_mm=float(density_per_mm),
        decoys={"fragments": n_frag, "parallel": n_par, "bundles": n_bundles,
                "branched": n_branch, "gapped": n_gap},
    )


def match_crossings(truth: pd.DataFrame, detected: pd.DataFrame, *,
                    tolerance_um: float = 10.0) -> pd.DataFrame:
    """Match detected crossings to true ones one-to-one (optimal assignment).

    Parameters
    ----------
    truth, detected : pandas.DataFrame
        Tables with ``y_um, x_um`` columns.
    tolerance_um : float
        Largest distance of a matched pair, µm.

    Returns
    -------
    pandas.DataFrame
        ``truth_index, detected_index, distance_um``, one row per matched pair.
    """
    cols = ["truth_index", "detected_index", "distance_um"]
    if len(truth) == 0 or len(detected) == 0:
        return pd.DataFrame(columns=cols)
    d = cdist(truth[["y_um", "x_um"]].to_numpy(float), detected[["y_um", "x_um"]].to_numpy(float))
    cost = np.where(d <= tolerance_um, d, 1e6)
    r, c = linear_sum_assignment(cost)
    ok = d[r, c] <= tolerance_um
    return pd.DataFrame({"truth_index": r[ok], "detected_index": c[ok], "distance_um": d[r, c][ok]})


def evaluate_skin(phantom: SkinPhantom, crossings: pd.DataFrame, *,
                  surface_length_um: float | None = None, dej_length_um: float | None = None,
                  tolerance_um: float = 10.0) -> dict:
    """Compare measured crossings (and lengths) with a phantom's ground truth.

    Parameters
    ----------
    phantom : SkinPhantom
        The phantom.
    crossings : pandas.DataFrame
        Measured crossings (``y_um, x_um``).
    surface_length_um, dej_length_um : float, optional
        Measured lengths, µm; their relative errors are reported when given.
    tolerance_um : float
        Matching tolerance, µm.

    Returns
    -------
    dict
        ``n_true, n_detected, tp, precision, recall, count_error`` and, when lengths
        are given, ``surface_length_rel_error`` and ``dej_length_rel_error``.
    """
    m = match_crossings(phantom.truth_crossings, crossings, tolerance_um=tolerance_um)
    n_t, n_d, tp = phantom.n_crossings, int(len(crossings)), int(len(m))
    out = {"n_true": n_t, "n_detected": n_d, "tp": tp,
           "precision": tp / n_d if n_d else 1.0, "recall": tp / n_t if n_t else 1.0,
           "count_error": n_d - n_t}
    if surface_length_um is not None:
        out["surface_length_rel_error"] = surface_length_um / phantom.surface_length_um - 1
    if dej_length_um is not None:
        out["dej_length_rel_error"] = dej_length_um / phantom.dej_length_um - 1
    return out
