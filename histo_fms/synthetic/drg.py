"""Synthetic mouse DRG sections with ground truth (neurons, SGC sheaths, IgG rings).

The phantom models a 10-20 µm cryosection imaged in four channels
(``NeuN``, ``GS``, ``IgG``, ``DAPI``) with the confounders the DRG pipeline must
survive: densely packed, touching and dim neurons, partial neurons cut by the border,
dark or pale nuclei, SGC sheaths of varying thickness, a neuron channel that is bright
almost everywhere in the ganglion (punctate axons and fibre bundles between the somata,
as neurofilament / beta-III-tubulin / PGP9.5 stain), a nerve root of parallel axons at
one edge, a connective-tissue capsule, empty slide with debris beyond the tissue edge,
patchy IgG on positive rings, IgG in blood vessels and in the capsule, lipofuscin
granules bright in every channel, vignetting, and Poisson + read noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from ..schema import parse_bool
from ._imaging import acquire, vignetting

__all__ = ["DrgPhantom", "make_drg_section", "match_neurons", "evaluate_drg", "roc_auc",
           "REAL_TISSUE", "WIDEFIELD"]

#: options of :func:`make_drg_section` that make a phantom look like real DRG tissue
#: (neurofilament-like neuron channel, nerve root, slide with debris, dark/pale nuclei)
REAL_TISSUE: dict = {"axon_density": 1.0, "nerve_root": True, "outside_fraction": 0.12,
                     "nucleus_contrast": (0.15, 1.0)}

#: options of :func:`make_drg_section` that make a phantom look like a widefield
#: (epifluorescence) image of a thick section, as at 0.9 µm/px with a 10x objective:
#: out-of-focus haze, a broad point-spread function and thin (1-2.5 µm) SGC sheaths
#: between densely packed somata. Combine with :data:`REAL_TISSUE`.
WIDEFIELD: dict = {"haze": 0.5, "psf_um": 1.0, "sheath_um": (0.8, 2.5)}

CHANNEL_NAMES = ["NeuN", "GS", "IgG", "DAPI"]

# Signal levels (arbitrary units; ``acquire`` turns one unit into 40 photons).
_NEUN_TISSUE = 2.0
_NEUN_NEURON = 40.0
_GS_TISSUE = 3.0
_GS_SHEATH = 30.0
_IGG_TISSUE = 10.0
_IGG_NEURON = 1.5
_DAPI_TISSUE = 1.0


@dataclass
class DrgPhantom:
    """A synthetic DRG section and its ground truth.

    Attributes
    ----------
    image : ndarray of uint16, shape (C, Y, X)
        Channels in the order of ``channel_names``.
    pixel_size_um : float
        Pixel size in µm.
    labels : ndarray of int32, shape (Y, X)
        Ground-truth neuron labels (0 background, ids 1..n).
    truth : pandas.DataFrame
        One row per neuron: ``neuron_id, y_um, x_um, area_um2, diameter_um,
        touches_border, igg_positive, ring_igg_true, dim, bare``.
    sheaths : ndarray of int32, shape (Y, X)
        Ground-truth SGC sheath of neuron ``i`` (value ``i``).
    lipofuscin : ndarray of bool, shape (Y, X)
        Where lipofuscin granules were placed (granule discs).
    illumination : ndarray of float32, shape (Y, X)
        The multiplicative illumination field applied to every channel.
    dark_level : float
        Camera offset in counts.
    channel_names : list of str
        Channel names.
    control : bool
        Whether this is a control-IgG section.
    """

    image: np.ndarray
    pixel_size_um: float
    labels: np.ndarray
    truth: pd.DataFrame
    sheaths: np.ndarray
    lipofuscin: np.ndarray
    illumination: np.ndarray
    dark_level: float
    channel_names: list[str] = field(default_factory=lambda: list(CHANNEL_NAMES))
    control: bool = False

    def channel(self, name: str) -> np.ndarray:
        """Return the channel called ``name`` as a 2-D array."""
        return self.image[self.channel_names.index(name)]


def _smooth_field(shape, rng, scale_px, lo, hi):
    """Random smooth field in ``[lo, hi]`` with features of about ``scale_px``."""
    h, w = shape
    f = max(1, int(scale_px / 2))
    small = rng.normal(size=(h // f + 3, w // f + 3)).astype(np.float32)
    small = ndi.gaussian_filter(small, 2.0)
    big = ndi.zoom(small, f, order=1)[:h, :w]
    big = big - big.min()
    big /= max(float(big.max()), 1e-6)
    return (lo + (hi - lo) * big).astype(np.float32)


def _angular_noise(rng, n_harm=5, amp=1.0):
    """Return a function of angle: a random smooth periodic signal."""
    ks = np.arange(1, n_harm + 1)
    a = rng.normal(size=n_harm) * amp / ks
    ph = rng.uniform(0, 2 * np.pi, n_harm)

    def f(theta):
        t = theta.ravel()[None]
        return np.sum(a[:, None] * np.cos(ks[:, None] * t + ph[:, None]), 0).reshape(theta.shape)

    return f


def _axon_field(rng, shape, px, where, root, density) -> np.ndarray:
    """Neuron-marker signal of axons: puncta and fibre bundles (units of neuron level).

    Puncta (cross-cut axons, ~1 µm) and bundles of a few parallel fibres (1 µm thick,
    at 30-60 % of the soma level) fill the interstitium ``where``; in the nerve root
    ``root`` the fibres are dense and run parallel to its edge.
    """
    h, w = shape
    hu, wu = h * px, w * px
    imp = np.zeros((h, w), np.float32)

    def splat(ys, xs, amp):
        iy = np.clip(np.round(ys / px).astype(int), 0, h - 1)
        ix = np.clip(np.round(xs / px).astype(int), 0, w - 1)
        np.add.at(imp, (iy, ix), amp)

    sig = 0.5 / px  # fibre / punctum blur (px)
    step = 0.5 * px  # µm between the points of a fibre (half a pixel)
    line = step / px / (np.sqrt(2 * np.pi) * sig)  # point weight for a line of peak 1
    # puncta
    n_p = rng.poisson(0.12 * density * hu * wu)
    splat(rng.uniform(0, hu, n_p), rng.uniform(0, wu, n_p),
          rng.uniform(0.3, 1.0, n_p).astype(np.float32))
    # fibre bundles: gently curving paths of 2-8 parallel fibres
    main = rng.uniform(0, np.pi)
    n_b = rng.poisson(density * hu * wu / 1500.0)
    for _ in range(n_b):
        y, x = rng.uniform(0, hu), rng.uniform(0, wu)
        ang = main + rng.normal(0, 0.5)
        length = rng.uniform(30, 150)
        k = int(length / step)
        turn = np.cumsum(rng.normal(0, 0.02, k))
        ys = y + np.cumsum(np.sin(ang + turn)) * step
        xs = x + np.cumsum(np.cos(ang + turn)) * step
        amp = rng.uniform(0.3, 0.6) * line
        for j in range(int(rng.integers(2, 9))):
            off = (j - 3) * rng.uniform(1.2, 2.0)
            splat(ys - off * np.cos(ang), xs + off * np.sin(ang),
                  np.full(k, amp * rng.uniform(0.7, 1.3), np.float32))
    # nerve root: dense parallel fibres along its length
    if root.any():
        ry, rx = np.nonzero(root)
        vertical = np.ptp(ry) > np.ptp(rx)
        long_ = hu if vertical else wu
        across = np.arange(ry.min() * px if not vertical else rx.min() * px,
                           (ry.max() if not vertical else rx.max()) * px + 1, 1.5)
        t = np.arange(0, long_, step)
        for c in across:
            wav = c + 1.5 * np.sin(2 * np.pi * t / rng.uniform(60, 200) + rng.uniform(0, 6.3))
            ys, xs = (t, wav) if vertical else (wav, t)
            splat(ys, xs, np.full(t.size, rng.uniform(0.3, 0.7) * line, np.float32))
    field = ndi.gaussian_filter(imp, sig) * np.float32(2 * np.pi * sig * sig)
    field = np.minimum(field, 1.2) * (where | root)
    return (_NEUN_NEURON * field).astype(np.float32)


def _debris(rng, shape, px, where) -> np.ndarray:
    """Irregular debris particles (0-1.5) on the slide ``where``: fragments, 2-25 µm."""
    h, w = shape
    area = float(where.sum()) * px * px
    imp = np.zeros((h, w), np.float32)
    ys, xs = np.nonzero(where)
    for _ in range(rng.poisson(area / 2500.0)):
        j = int(rng.integers(ys.size))
        cy, cx = ys[j] * px, xs[j] * px
        size = rng.uniform(2, 25)
        nb = int(rng.integers(3, 30))
        by = cy + rng.normal(0, size / 3, nb)
        bx = cx + rng.normal(0, size / 3, nb)
        iy = np.clip((by / px).astype(int), 0, h - 1)
        ix = np.clip((bx / px).astype(int), 0, w - 1)
        np.add.at(imp, (iy, ix), rng.uniform(0.3, 1.5, nb).astype(np.float32))
    sig = 0.8 / px
    out = ndi.gaussian_filter(imp, sig) * np.float32(2 * np.pi * sig * sig)
    return np.minimum(out, 1.5) * where


def _draw_diameter(rng) -> float:
    u = rng.uniform()
    if u < 0.45:
        return rng.uniform(15, 25)
    if u < 0.8:
        return rng.uniform(25, 35)
    return rng.uniform(35, 50)


def make_drg_section(
    shape: tuple[int, int] = (768, 768),
    pixel_size_um: float = 0.5,
    *,
    seed: int = 0,
    control: bool = False,
    positive_fraction: float = 0.4,
    ring_igg_range: tuple[float, float] = (1.5, 5.0),
    dim_fraction: float = 0.15,
    touching_fraction: float = 0.35,
    lipofuscin_per_neuron: float = 0.3,
    n_vessels: int | None = None,
    capsule: bool = True,
    vignetting_strength: float = 0.4,
    photons_per_unit: float = 40.0,
    dark_level: float = 100.0,
    read_noise: float = 3.0,
    packing: float = 0.5,
    axon_density: float = 0.0,
    nerve_root: bool = False,
    outside_fraction: float = 0.0,
    nucleus_contrast: tuple[float, float] = (0.8, 0.8),
    neuron_igg_range: tuple[float, float] | None = None,
    control_bound_fraction: float = 0.0,
    haze: float = 0.0,
    haze_um: float = 8.0,
    psf_um: float | None = None,
    sheath_um: tuple[float, float] = (1.0, 5.0),
    bare_fraction: float = 0.0,
    pressed_fraction: float = 0.0,
) -> DrgPhantom:
    """Generate a synthetic mouse DRG section with ground truth.

    The defaults give the project's original phantom (same images for a seed as
    before the tissue-realism options existed). ``**REAL_TISSUE`` (see
    :data:`REAL_TISSUE`) makes it look like real tissue: axon puncta and fibre bundles
    between the somata, a nerve root, empty slide with debris beyond the capsule, and
    dark to pale nuclei. The realism options never change which neurons a seed places
    in the tissue, only the stain around them (and no neuron lies in a root or on the
    slide).

    Parameters
    ----------
    shape : tuple of int
        Image shape (Y, X) in pixels.
    pixel_size_um : float
        Pixel size in µm (typically 0.3-0.7).
    seed : int
        Random seed; the same seed gives the same section.
    control : bool
        Control-IgG section: no neuron has IgG on its ring.
    positive_fraction : float
        Fraction of neurons with IgG on their SGC ring (ignored if ``control``).
    ring_igg_range : tuple of float
        Range of the true ring-IgG ratio of positive neurons.
    dim_fraction : float
        Fraction of neurons whose neuron marker is 3-5x weaker.
    touching_fraction : float
        Fraction of neighbour pairs allowed to touch without an SGC gap.
    lipofuscin_per_neuron : float
        Mean number of lipofuscin granules per neuron.
    n_vessels : int, optional
        Number of blood-vessel profiles (random 2-6 by default).
    capsule : bool
        Add an IgG-bright connective-tissue capsule along one edge.
    vignetting_strength : float
        Illumination fall-off at the far corner (0 = flat field).
    photons_per_unit : float
        Photons per signal unit (sets the shot-noise level).
    dark_level : float
        Camera offset in counts.
    read_noise : float
        Read-noise standard deviation in counts.
    packing : float
        Target fraction of the tissue area covered by somata.
    axon_density : float
        Density of axon puncta and fibre bundles in the neuron channel between the
        somata (1: the interstitium is bright almost everywhere, as with
        neurofilament; 0: a smooth dim interstitium, the default).
    nerve_root : bool
        Add a nerve root (parallel axon bundles, no somata) along one edge.
    outside_fraction : float
        About this fraction of the field (at the capsule's edge) is empty slide
        beyond the tissue edge, with debris; 0: tissue everywhere.
    nucleus_contrast : tuple of float
        Range of the neuron-marker level in a neuron's nucleus relative to its
        cytoplasm, drawn per neuron (low: dark nucleus; near 1: pale; default 0.8).
    neuron_igg_range : tuple of float, optional
        Cytoplasmic IgG of each neuron, uniform in this range of multiples of the
        tissue IgG and unrelated to its ring (the optics blur it onto the ring); by
        default neurons are dark for IgG.
    control_bound_fraction : float
        Control sections: fraction of neurons whose ring control IgG truly binds (as
        with real control IgG), marked ``igg_positive`` in the truth.
    haze : float
        Fraction of each channel's light that comes from out of focus (widefield
        imaging of a thick section): it reaches the camera blurred by a Gaussian of
        ``haze_um``. 0 (default): none.
    haze_um : float
        Sigma (µm) of the out-of-focus blur.
    psf_um : float, optional
        Sigma (µm) of the in-focus point-spread function (default 0.3 µm, at least
        0.6 px).
    sheath_um : tuple of float
        Range of the mean SGC sheath thickness (µm), drawn per neuron; it also sets
        the spacing between neighbours (default 1-5 µm).
    bare_fraction : float
        Fraction of neurons whose SGC sheath is nearly unstained (3-10 % of the usual
        GS level, below any sheath threshold), as where real SGC coverage is
        incomplete; marked ``bare`` in the truth. 0 (default): none.
    pressed_fraction : float
        Fraction of neighbour pairs allowed to be pressed together (centres 0.8 of the
        sum of their radii apart): the gap at their waist is filled, so their union is
        convex with no neck, and only a thin (1 µm), faint (30-60 % of the sheath
        level) SGC line separates them, as with somata pressed together in real
        ganglia. 0 (default): none.

    Returns
    -------
    DrgPhantom
        The image, ground-truth labels and the per-neuron truth table.
    """
    rng = np.random.default_rng(seed)
    h, w = (int(s) for s in shape)
    px = float(pixel_size_um)
    hu, wu = h * px, w * px
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) * px  # µm

    # --- slide beyond the tissue edge, capsule along it, nerve root -----------------------
    # (a second random stream for the tissue-realism features keeps the draws of the rest)
    rt = np.random.default_rng([int(seed), 7])
    capsule_mask = np.zeros((h, w), bool)
    outside = np.zeros((h, w), bool)
    root_mask = np.zeros((h, w), bool)
    edges = [(yy, xx, wu), (hu - px - yy, xx, wu), (xx, yy, hu), (wu - px - xx, yy, hu)]
    edge = int(rng.integers(4)) if capsule else int(rt.integers(4))
    coord, along, length = edges[edge]
    span = hu if edge < 2 else wu
    out_depth = np.zeros((h, w), np.float32)
    if outside_fraction > 0:
        d0 = outside_fraction * span
        out_depth = d0 * (1 + 0.35 * np.sin(2 * np.pi * along / length * rt.uniform(0.5, 1.5)
                                            + rt.uniform(0, 6.3)))
        outside = coord < out_depth
    if capsule:
        depth = rng.uniform(12, 30)
        wave = depth * (1 + 0.3 * np.sin(2 * np.pi * along / length * rng.uniform(1, 3)
                                         + rng.uniform(0, 6.3)))
        capsule_mask = (coord < out_depth + wave) & ~outside
    if nerve_root:
        # along a perpendicular edge: a band of parallel axons entering the ganglion
        redge = int(rt.choice([2, 3] if edge < 2 else [0, 1]))
        rc, ralong, rlen = edges[redge]
        rdepth = rt.uniform(0.12, 0.2) * (wu if redge >= 2 else hu)
        rwave = rdepth * (1 + 0.2 * np.sin(2 * np.pi * ralong / rlen * rt.uniform(0.5, 1.5)
                                           + rt.uniform(0, 6.3)))
        root_mask = (rc < rwave) & ~outside & ~capsule_mask
    tissue = ~outside & ~capsule_mask & ~root_mask

    # --- blood vessels (circles and tubes) ----------------------------------------------
    vessel_mask = np.zeros((h, w), bool)
    nv = int(rng.integers(2, 7)) if n_vessels is None else int(n_vessels)
    vessels = []
    for _ in range(nv):
        cy, cx = rng.uniform(0, hu), rng.uniform(0, wu)
        r = rng.uniform(3, 8)
        if rng.uniform() < 0.5:
            vessel_mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            vessels.append((cy, cx, r))
        else:
            ang = rng.uniform(0, np.pi)
            half = rng.uniform(20, 60)
            dy, dx = np.sin(ang), np.cos(ang)
            t = np.clip((yy - cy) * dy + (xx - cx) * dx, -half, half)
            d2 = (yy - cy - t * dy) ** 2 + (xx - cx - t * dx) ** 2
            vessel_mask |= d2 < (0.6 * r) ** 2
            for s in np.linspace(-half, half, 7):
                vessels.append((cy + s * dy, cx + s * dx, 0.6 * r))
    obstacle = np.array(vessels, float).reshape(-1, 3)

    # --- neuron placement (random sequential packing) ----------------------------------
    cys, cxs, rs, ts = [], [], [], []
    # pressed pairs draw from their own stream (none drawn when pressed_fraction is 0)
    rp = np.random.default_rng([int(seed), 14]) if pressed_fraction > 0 else None
    pressed_pairs: list[tuple[int, int]] = []
    area_target = float(packing) * float((~outside & ~root_mask).mean()) * hu * wu
    area = 0.0
    for _ in range(4000):
        if area > area_target:
            break
        d = _draw_diameter(rng)
        r = d / 2
        cy = rng.uniform(-0.4 * d, hu + 0.4 * d)
        cx = rng.uniform(-0.4 * d, wu + 0.4 * d)
        t = rng.uniform(*sheath_um)  # sheath thickness (µm), mean
        iy, ix = int(np.clip(cy / px, 0, h - 1)), int(np.clip(cx / px, 0, w - 1))
        if not tissue[iy, ix]:
            continue
        if len(obstacle):
            dv = np.hypot(obstacle[:, 0] - cy, obstacle[:, 1] - cx)
            if np.any(dv < obstacle[:, 2] + r + 2.0):
                continue
        if cys:
            dist = np.hypot(np.asarray(cys) - cy, np.asarray(cxs) - cx)
            gap_full = (np.asarray(rs) + r) + 0.8 * (np.asarray(ts) + t)
            gap_touch = 0.92 * (np.asarray(rs) + r)
            touch = rng.uniform(size=len(cys)) < touching_fraction
            need = np.where(touch, gap_touch, gap_full)
            press = np.zeros(len(cys), bool)
            if rp is not None:
                press = rp.uniform(size=len(cys)) < pressed_fraction
                need = np.where(press, 0.8 * (np.asarray(rs) + r), need)
            if np.any(dist < need):
                continue
            pressed_pairs += [(int(j), len(cys)) for j in np.flatnonzero(press & (dist < gap_full))]
        cys.append(cy)
        cxs.append(cx)
        rs.append(r)
        ts.append(t)
        area += np.pi * r * r

    n0 = len(cys)
    best = np.full((h, w), np.inf, np.float32)
    lab = np.zeros((h, w), np.int32)
    sheath_best = np.full((h, w), np.inf, np.float32)
    sheath = np.zeros((h, w), np.int32)
    theta_map = np.zeros((h, w), np.float32)
    rho_map = np.zeros((h, w), np.float32)
    nuc_dapi = np.zeros((h, w), np.float32)
    sgc_nuc = np.zeros((h, w), np.float32)
    shapes = []
    for i in range(n0):
        cy, cx, r, t = cys[i], cxs[i], rs[i], ts[i]
        ecc = rng.uniform(0.7, 1.0)
        a, b = r / np.sqrt(ecc), r * np.sqrt(ecc)
        phi = rng.uniform(0, np.pi)
        wob = _angular_noise(rng, 4, 0.06)
        tvar = _angular_noise(rng, 3, 0.5)
        m = a + 6.0
        y0, y1 = max(0, int((cy - m) / px)), min(h, int((cy + m) / px) + 2)
        x0, x1 = max(0, int((cx - m) / px)), min(w, int((cx + m) / px) + 2)
        if y0 >= y1 or x0 >= x1:
            shapes.append(None)
            continue
        dy = yy[y0:y1, x0:x1] - cy
        dx = xx[y0:y1, x0:x1] - cx
        th = np.arctan2(dy, dx)
        rr = np.hypot(dy, dx)
        al = th - phi
        rad = a * b / np.sqrt((b * np.cos(al)) ** 2 + (a * np.sin(al)) ** 2)
        rad = rad * (1 + wob(th))
        rho = rr / rad
        sub_best = best[y0:y1, x0:x1]
        inside = (rho < 1) & (rho < sub_best)
        sub_best[inside] = rho[inside]
        lab[y0:y1, x0:x1][inside] = i + 1
        theta_map[y0:y1, x0:x1][inside] = th[inside]
        rho_map[y0:y1, x0:x1][inside] = rho[inside]
        dout = rr - rad
        thick = np.clip(t * (1 + tvar(th)), 1.0, 5.0)
        sh = (dout >= 0) & (dout < thick)
        sub_sb = sheath_best[y0:y1, x0:x1]
        sh &= dout < sub_sb
        sub_sb[sh] = dout[sh]
        sheath[y0:y1, x0:x1][sh] = i + 1
        # neuron nucleus (DAPI, pale, large)
        nr = r * rng.uniform(0.28, 0.38)
        off = rng.uniform(0, 0.3 * r, 2) * rng.choice([-1, 1], 2)
        nd = ((dy - off[0]) ** 2 + (dx - off[1]) ** 2) / nr**2
        nuc_dapi[y0:y1, x0:x1] += np.where(nd < 1, 12.0, 0.0) * (rho < 1)
        nuc_dapi[y0:y1, x0:x1] += np.where(nd < 0.04, 15.0, 0.0) * (rho < 1)
        # SGC nuclei in the sheath (tangentially elongated)
        for _ in range(int(rng.integers(2, 7))):
            ang = rng.uniform(-np.pi, np.pi)
            al2 = ang - phi
            rad0 = a * b / np.sqrt((b * np.cos(al2)) ** 2 + (a * np.sin(al2)) ** 2)
            rad0 *= 1 + wob(np.array([ang]))[0]
            rc = rad0 + 1.6
            sy, sx = np.sin(ang) * rc, np.cos(ang) * rc
            v = (dy - sy) * np.sin(ang) + (dx - sx) * np.cos(ang)  # radial
            u = (dy - sy) * np.cos(ang) - (dx - sx) * np.sin(ang)  # tangential
            sgc_nuc[y0:y1, x0:x1] += np.where((u / 3.0) ** 2 + (v / 1.4) ** 2 < 1, 40.0, 0.0)
        shapes.append((y0, y1, x0, x1, cy, cx, a, b, phi, wob))

    # pressed pairs: the gap around their waist is filled (each pixel to the nearer
    # soma), so the union is convex with no neck; a thin, faint sheath runs between them
    faint_line = np.zeros((h, w), bool)
    for i, j in pressed_pairs:
        both = (lab == i + 1) | (lab == j + 1)
        if not (lab == i + 1).any() or not (lab == j + 1).any():
            continue
        sl = ndi.find_objects(both.astype(np.int32))[0]
        m = both[sl]
        if min(m.shape) < 2:
            continue
        add = convex_hull_image(m) & (lab[sl] == 0)
        di = ndi.distance_transform_edt(lab[sl] != i + 1)
        dj = ndi.distance_transform_edt(lab[sl] != j + 1)
        lab[sl][add] = np.where(di[add] <= dj[add], i + 1, j + 1)
        rho_map[sl][add] = 0.95
        li, lj = lab[sl] == i + 1, lab[sl] == j + 1
        reach = max(1, int(round(0.5 / px)))
        faint_line[sl] |= (ndi.binary_dilation(li, iterations=reach) & lj) | (
            ndi.binary_dilation(lj, iterations=reach) & li)
    lab[~tissue | vessel_mask] = 0
    sheath[lab > 0] = 0
    sheath[~tissue | vessel_mask] = 0
    sgc_nuc *= (lab == 0) & tissue & ~vessel_mask
    nuc_dapi *= lab > 0

    # relabel visible neurons 1..n
    ids_present = np.unique(lab)
    ids_present = ids_present[ids_present > 0]
    counts = np.bincount(lab.ravel(), minlength=n0 + 1)
    keep = [i for i in ids_present if counts[i] * px * px >= 20.0]
    remap = np.zeros(n0 + 1, np.int32)
    remap[np.asarray(keep, int)] = np.arange(1, len(keep) + 1)
    lab = remap[lab]
    sheath = remap[sheath]
    n = len(keep)
    old_ids = np.asarray(keep, int)

    # --- per-neuron attributes -----------------------------------------------------------
    dim = rng.uniform(size=n) < dim_fraction
    level = np.where(dim, rng.uniform(0.2, 0.33, n), rng.uniform(0.8, 1.2, n))
    pos_frac = 0.0 if control else positive_fraction
    positive = rng.uniform(size=n) < pos_frac
    # the IgG options draw from their own stream: the default section is unchanged
    rng_igg = np.random.default_rng([int(seed), 12])
    if control and control_bound_fraction > 0:
        positive = rng_igg.uniform(size=n) < control_bound_fraction
    target = rng.uniform(*ring_igg_range, n)

    # --- channel densities ----------------------------------------------------------------
    tex_lo = _smooth_field((h, w), rng, 40 / px, 0.8, 1.2)
    grain = ndi.gaussian_filter(rng.normal(size=(h, w)).astype(np.float32), 0.8 / px)
    grain /= max(float(grain.std()), 1e-6)
    neuron_mask = lab > 0
    lvl_full = np.concatenate([[0.0], level]).astype(np.float32)

    neun = _NEUN_TISSUE * tex_lo * (1 + 0.1 * grain)
    nucleus_in = nuc_dapi > 0
    nlev = lvl_full[lab] * _NEUN_NEURON * (1 + 0.12 * grain)
    nuc_f = np.concatenate([[1.0], rt.uniform(*nucleus_contrast, n)]).astype(np.float32)
    nlev = np.where(nucleus_in, nuc_f[lab] * nlev, nlev)
    if axon_density > 0:
        neun = neun + _axon_field(rt, (h, w), px, tissue & ~vessel_mask, root_mask,
                                  axon_density)
    neun = np.where(neuron_mask, nlev, neun)
    neun[capsule_mask] = 1.5

    sheath_mask = sheath > 0
    gs_level = np.concatenate([[0.0], rng.uniform(0.6, 1.2, n)]).astype(np.float32)
    bare = np.zeros(n, bool)
    if bare_fraction > 0:  # own stream: the other draws of the seed are unchanged
        rb = np.random.default_rng([int(seed), 13])
        bare = rb.uniform(size=n) < bare_fraction
        gs_level[1:][bare] *= rb.uniform(0.03, 0.1, int(bare.sum())).astype(np.float32)
    patch = _smooth_field((h, w), rng, 6 / px, 0.6, 1.3)
    gs = _GS_TISSUE * tex_lo
    gs = np.where(sheath_mask, _GS_SHEATH * gs_level[sheath] * patch, gs)
    gs[neuron_mask] = 1.0
    if faint_line.any():
        gs = np.where(faint_line & neuron_mask,
                      _GS_SHEATH * rp.uniform(0.3, 0.6) * patch, gs).astype(np.float32)
    gs[capsule_mask] = 4.0

    igg_bg = _IGG_TISSUE * _smooth_field((h, w), rng, 60 / px, 0.85, 1.15) * (1 + 0.05 * grain)
    igg = igg_bg.copy()
    if neuron_igg_range is None:
        igg[neuron_mask] = _IGG_NEURON
    else:
        cyto = np.concatenate([[0.0], rng_igg.uniform(*neuron_igg_range, n)])
        igg[neuron_mask] = (_IGG_TISSUE * cyto[lab]).astype(np.float32)[neuron_mask]
    neg_level = np.concatenate([[1.0], rng.uniform(0.92, 1.08, n)]).astype(np.float32)
    ring_true = np.ones(n)
    ring_sig = np.zeros((h, w), np.float32)
    objs = ndi.find_objects(sheath, max_label=n)
    for j in range(n):
        sl = objs[j]
        if sl is None:
            ring_true[j] = np.nan
            continue
        m = sheath[sl] == j + 1
        base = igg_bg[sl][m]
        if positive[j]:
            shp = shapes[old_ids[j] - 1]
            cy, cx = shp[4], shp[5]
            ys = yy[sl][m] - cy
            xs = xx[sl][m] - cx
            th = np.arctan2(ys, xs)
            cov = rng.uniform(0.35, 1.0)
            g = _angular_noise(rng, 4, 1.0)(th)
            cut = np.quantile(g, 1 - cov) if cov < 1 else -np.inf
            p = 1 / (1 + np.exp(-(g - cut) * 6))
            var = 1 + 0.3 * _angular_noise(rng, 3, 1.0)(th)
            pv = np.clip(p * var, 0, None)
            amp = (target[j] - 1) / max(float(np.sum(pv * base) / np.sum(base)), 1e-3)
            val = base * (1 + amp * pv)
        else:
            val = base * neg_level[j + 1]
        vals_full = np.zeros(m.shape, np.float32)
        vals_full[m] = val
        ring_sig[sl] = np.where(m, vals_full, ring_sig[sl])
        ring_true[j] = float(val.sum() / base.sum())
    igg = np.where(sheath_mask, ring_sig, igg)
    igg[capsule_mask] = _IGG_TISSUE * rng.uniform(4, 6) * tex_lo[capsule_mask]
    igg[vessel_mask] = _IGG_TISSUE * rng.uniform(5, 10)
    vwall = ndi.binary_dilation(vessel_mask, iterations=max(1, int(1.0 / px))) & ~vessel_mask
    vwall &= ~neuron_mask
    igg[vwall] = _IGG_TISSUE * 3
    gs[vwall] = 1.5

    dapi = _DAPI_TISSUE * tex_lo + nuc_dapi + sgc_nuc
    # scattered tissue nuclei (fibroblasts, endothelia, Schwann cells)
    free = ~neuron_mask & ~sheath_mask
    n_tn = int(hu * wu / 400)
    tys = rng.uniform(0, hu, n_tn)
    txs = rng.uniform(0, wu, n_tn)
    for ty, tx in zip(tys, txs, strict=True):
        iy, ix = int(ty / px), int(tx / px)
        if free[min(iy, h - 1), min(ix, w - 1)]:
            rr_ = int(2.5 / px) + 1
            y0, y1, x0, x1 = max(0, iy - rr_), min(h, iy + rr_), max(0, ix - rr_), min(w, ix + rr_)
            d2 = (yy[y0:y1, x0:x1] - ty) ** 2 / 2.5**2 + (xx[y0:y1, x0:x1] - tx) ** 2 / 1.6**2
            dapi[y0:y1, x0:x1] += np.where((d2 < 1) & free[y0:y1, x0:x1], 35.0, 0.0)

    # --- lipofuscin granules (bright in every channel) -------------------------------
    lipo = np.zeros((h, w), bool)
    lipo_amp = np.zeros((h, w), np.float32)
    n_lipo = rng.poisson(lipofuscin_per_neuron * max(n, 1))
    for _ in range(n_lipo):
        if n and rng.uniform() < 0.8:
            j = int(rng.integers(n))
            shp = shapes[old_ids[j] - 1]
            if shp is None:
                continue
            cy, cx, a = shp[4], shp[5], shp[6]
            ang = rng.uniform(-np.pi, np.pi)
            rr_ = a * rng.uniform(0.6, 1.3) if rng.uniform() < 0.6 else a * rng.uniform(0.95, 1.15)
            gy, gx = cy + rr_ * np.sin(ang), cx + rr_ * np.cos(ang)
        else:
            gy, gx = rng.uniform(0, hu), rng.uniform(0, wu)
        gr = rng.uniform(0.5, 1.5)
        iy, ix = int(gy / px), int(gx / px)
        k = int(gr / px) + 2
        y0, y1, x0, x1 = max(0, iy - k), min(h, iy + k + 1), max(0, ix - k), min(w, ix + k + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        disc = (yy[y0:y1, x0:x1] - gy) ** 2 + (xx[y0:y1, x0:x1] - gx) ** 2 < gr**2
        lipo[y0:y1, x0:x1] |= disc
        lipo_amp[y0:y1, x0:x1] = np.where(disc, rng.uniform(2.5, 5.0), lipo_amp[y0:y1, x0:x1])
    neun = np.where(lipo, _NEUN_NEURON * lipo_amp, neun)
    gs = np.where(lipo, _GS_SHEATH * lipo_amp, gs)
    igg = np.where(lipo, _IGG_TISSUE * 6 * lipo_amp, igg)
    dapi = np.where(lipo, 40.0 * lipo_amp, dapi)

    # --- empty slide beyond the tissue edge, with debris ----------------------------------
    if outside.any():
        deb = _debris(rt, (h, w), px, outside)
        neun = np.where(outside, 0.2 + _NEUN_NEURON * deb, neun)
        gs = np.where(outside, 0.2 + 0.5 * _GS_SHEATH * deb, gs)
        igg = np.where(outside, 0.5 + 2.0 * _IGG_TISSUE * deb, igg)
        dapi = np.where(outside, 0.1 + 20.0 * deb, dapi)

    # --- acquisition ---------------------------------------------------------------------------
    illum = (
        vignetting((h, w), vignetting_strength, rng)
        if vignetting_strength > 0
        else np.ones((h, w), np.float32)
    )
    psf = max(0.6, (0.3 if psf_um is None else float(psf_um)) / px)
    if haze > 0:  # out-of-focus light: a broad blur of the same signal
        neun, gs, igg, dapi = ((1 - haze) * c + haze * ndi.gaussian_filter(
            c.astype(np.float32), haze_um / px) for c in (neun, gs, igg, dapi))
    chans = [
        acquire(c, rng, psf_sigma_px=psf, illumination=illum, photons_per_unit=photons_per_unit,
                read_noise=read_noise, offset=dark_level)
        for c in (neun, gs, igg, dapi)
    ]
    image = np.stack(chans)

    # --- truth table -------------------------------------------------------------------------
    idx = np.arange(1, n + 1)
    cnt = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(float)
    ysum = np.bincount(lab.ravel(), weights=yy.ravel(), minlength=n + 1)[1:]
    xsum = np.bincount(lab.ravel(), weights=xx.ravel(), minlength=n + 1)[1:]
    border = np.zeros(n + 1, bool)
    for edge in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
        border[np.unique(edge)] = True
    area_um2 = cnt * px * px
    truth = pd.DataFrame(
        {
            "neuron_id": idx.astype(np.int64),
            "y_um": ysum / np.maximum(cnt, 1),
            "x_um": xsum / np.maximum(cnt, 1),
            "area_um2": area_um2,
            "diameter_um": np.sqrt(4 * area_um2 / np.pi),
            "touches_border": border[1:],
            "igg_positive": positive.astype(bool),
            "ring_igg_true": ring_true,
            "dim": dim.astype(bool),
            "bare": bare,
        }
    )
    return DrgPhantom(
        image=image,
        pixel_size_um=px,
        labels=lab.astype(np.int32),
        truth=truth,
        sheaths=sheath.astype(np.int32),
        lipofuscin=lipo,
        illumination=illum,
        dark_level=float(dark_level),
        control=bool(control),
    )


def match_neurons(
    truth: pd.DataFrame,
    table: pd.DataFrame,
    truth_labels: np.ndarray,
    *,
    pixel_size_um: float,
    tolerance_um: float = 5.0,
) -> pd.DataFrame:
    """Match detected neurons to true ones one-to-one by centroid.

    A detection can match a true neuron when its centroid lies inside the true
    neuron's label or within ``tolerance_um`` of the true centroid. Pairs are taken
    greedily by increasing centroid distance.

    Parameters
    ----------
    truth : pandas.DataFrame
        Truth table (``neuron_id, y_um, x_um``).
    table : pandas.DataFrame
        Detected table (``neuron_id, y_um, x_um``).
    truth_labels : ndarray
        Ground-truth label image.
    pixel_size_um : float
        Pixel size in µm.
    tolerance_um : float
        Distance tolerance in µm.

    Returns
    -------
    pandas.DataFrame
        Columns ``truth_id, detected_id, distance_um``, one row per matched pair.
    """
    if len(truth) == 0 or len(table) == 0:
        return pd.DataFrame({"truth_id": [], "detected_id": [], "distance_um": []})
    ty, tx = truth["y_um"].to_numpy(), truth["x_um"].to_numpy()
    dy, dx = table["y_um"].to_numpy(), table["x_um"].to_numpy()
    dist = np.hypot(ty[:, None] - dy[None], tx[:, None] - dx[None])
    h, w = truth_labels.shape
    iy = np.clip(np.round(dy / pixel_size_um).astype(int), 0, h - 1)
    ix = np.clip(np.round(dx / pixel_size_um).astype(int), 0, w - 1)
    inside_id = truth_labels[iy, ix]
    tid = truth["neuron_id"].to_numpy()
    ok = (dist <= tolerance_um) | (tid[:, None] == inside_id[None])
    ti, di = np.nonzero(ok)
    order = np.argsort(dist[ti, di], kind="stable")
    used_t, used_d = set(), set()
    rows = []
    for k in order:
        a, b = ti[k], di[k]
        if a in used_t or b in used_d:
            continue
        used_t.add(a)
        used_d.add(b)
        rows.append((int(tid[a]), int(table["neuron_id"].iloc[b]), float(dist[a, b])))
    return pd.DataFrame(rows, columns=["truth_id", "detected_id", "distance_um"])


def evaluate_drg(
    phantom: DrgPhantom,
    table: pd.DataFrame,
    *,
    min_truth_area_um2: float = 80.0,
    tolerance_um: float = 5.0,
) -> dict:
    """Compare a measured DRG table with a phantom's ground truth.

    True neurons smaller than ``min_truth_area_um2`` in the image (slivers cut by
    the border) are neither required nor penalised: a detection matched to one
    counts as neither true nor false positive.

    Parameters
    ----------
    phantom : DrgPhantom
        The phantom with ground truth.
    table : pandas.DataFrame
        Measured table (``neuron_id, y_um, x_um, touches_border`` and, if present,
        ``ring_igg`` and ``igg_positive``).
    min_truth_area_um2 : float
        Minimum visible area of a true neuron to count.
    tolerance_um : float
        Centroid matching tolerance in µm.

    Returns
    -------
    dict
        ``tp, fp, fn, precision, recall, f1``; ``auc`` of ``ring_igg`` for true
        positive vs negative neurons (matched, not touching the border);
        ``pct_true`` and ``pct_measured`` (% IgG-positive among non-border neurons;
        the latter needs an ``igg_positive`` column); ``matches`` (the matched pairs
        merged with truth, prefixed ``true_``, and measured columns).
    """
    truth = phantom.truth
    m = match_neurons(truth, table, phantom.labels, pixel_size_um=phantom.pixel_size_um,
                      tolerance_um=tolerance_um)
    big = set(truth.loc[truth["area_um2"] >= min_truth_area_um2, "neuron_id"].astype(int))
    matched_t = set(m["truth_id"].astype(int))
    matched_d = set(m["detected_id"].astype(int))
    tp = len(matched_t & big)
    fn = len(big - matched_t)
    fp = len(set(table["neuron_id"].astype(int)) - matched_d)
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    mm = m.merge(truth.add_prefix("true_"), left_on="truth_id", right_on="true_neuron_id")
    mm = mm.merge(table, left_on="detected_id", right_on="neuron_id")
    out = {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall,
           "f1": f1, "auc": float("nan"), "pct_true": float("nan"),
           "pct_measured": float("nan"), "matches": mm}
    inner = mm[~mm["true_touches_border"].astype(bool)] if len(mm) else mm
    if "ring_igg" in mm and len(inner):
        pos = inner.loc[inner["true_igg_positive"], "ring_igg"].to_numpy(float)
        neg = inner.loc[~inner["true_igg_positive"], "ring_igg"].to_numpy(float)
        out["auc"] = roc_auc(pos, neg)
    t_in = truth[~truth["touches_border"]]
    if len(t_in):
        out["pct_true"] = 100.0 * float(t_in["igg_positive"].mean())
    if "igg_positive" in table:
        d_in = table[~table["touches_border"].astype(bool)]
        called = parse_bool(d_in["igg_positive"], nullable=True).dropna()
        if len(called):  # over the called neurons (an unmeasured ring has no call)
            out["pct_measured"] = 100.0 * float(called.astype(bool).mean())
    return out


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of scores of positives vs negatives (Mann-Whitney).

    Parameters
    ----------
    positive, negative : array_like
        Scores of the positive and negative class; NaNs count as the lowest score.

    Returns
    -------
    float
        AUC in [0, 1] (NaN if a class is empty).
    """
    pos = np.nan_to_num(np.asarray(positive, float), nan=-np.inf)
    neg = np.nan_to_num(np.asarray(negative, float), nan=-np.inf)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)
