"""Beer-Lambert optical density, stain-vector estimation (Macenko) and separation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from skimage.color import rgb_from_hdx, rgb_from_hed

#: Named stain matrices (rows: optical-density vectors of the stains, R, G, B) and the
#: stain each row is, from :mod:`skimage.color` (Ruifrok & Johnston 2001).
NAMED_STAINS: dict[str, tuple[np.ndarray, tuple[str, str, str]]] = {
    "hdab": (np.asarray(rgb_from_hdx, float), ("haematoxylin", "dab", "residual")),
    "hed": (np.asarray(rgb_from_hed, float), ("haematoxylin", "eosin", "dab")),
}



@dataclass
class StainSeparation:
    """The stain maps of one bright-field image and how they were obtained.

    Attributes
    ----------
    concentrations : ndarray of float32, shape (Y, X, 3)
        Stain amounts in optical-density units (natural log), one plane per stain.
    names : tuple of str
        The stain of each plane (e.g. ``("haematoxylin", "dab", "residual")``).
    vectors : ndarray, shape (3, 3)
        The unit optical-density vector (R, G, B) of each stain.
    white : ndarray, shape (3,)
        The slide's white level (counts) used for the optical density.
    source : str
        ``"estimated"``, a named matrix (``"hdab"``, ``"hed"``) or ``"given"``.
    notes : list of str
        What was assumed (e.g. no tissue-free area to estimate the white level from).
    """

    concentrations: np.ndarray
    names: tuple[str, ...]
    vectors: np.ndarray
    white: np.ndarray
    source: str
    notes: list[str] = field(default_factory=list)

    def plane(self, name: str) -> np.ndarray:
        """Return the concentration map of the stain called ``name``."""
        try:
            return self.concentrations[..., self.names.index(name)]
        except ValueError:
            raise KeyError(f"no stain {name!r}; stains: {list(self.names)}") from None

    def provenance(self) -> dict:
        """Return the vectors, white level and source as plain JSON-able values."""
        return {"stain_source": self.source,
                "stain_vectors": {n: [round(float(v), 4) for v in vec]
                                  for n, vec in zip(self.names, self.vectors, strict=True)},
                "white_level": [round(float(w), 2) for w in self.white],
                "notes": list(self.notes)}


def _full_scale(rgb: np.ndarray) -> float:
    return float(np.iinfo(rgb.dtype).max) if np.issubdtype(rgb.dtype, np.integer) else 1.0


def estimate_white_level(rgb: np.ndarray, *, quantile: float = 0.995,
                         min_fraction: float = 0.6, block: int = 1
                         ) -> tuple[np.ndarray, str | None]:
    """Estimate the slide's white level (incident light) from its brightest area.

    Parameters
    ----------
    rgb : ndarray, shape (Y, X, 3)
        Bright-field RGB image (any numeric dtype).
    quantile : float
        Pixels (or means of ``block`` x ``block`` pixels) at least this bright (mean of R,
        G, B, as a quantile of the image) are the tissue-free glass; the white level is
        their per-channel median. The brightest single pixels are the glass plus some of
        its noise (1-4 counts too bright on our phantoms: the glass then has a summed
        optical density of up to ~0.05, which :func:`tissue_mask` allows for); block means
        are nearer the glass itself.
    min_fraction : float
        When even those pixels are darker than this fraction of the dtype's full scale
        (no glass in view), the full scale is used and a note says so.
    block : int
        Block side, pixels (1: single pixels; smaller for images of fewer than 64 blocks).
        The default stays 1: with block means (4 x 4) the lower white level changed the
        DAB maps enough to add false crossings on one of our phantoms (not understood).

    Returns
    -------
    white : ndarray, shape (3,)
        White level per channel (counts).
    note : str or None
        Why the full scale was used instead, if it was.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (Y, X, 3), got shape {rgb.shape}")
    full = _full_scale(rgb)
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 4e6)))
    sub = rgb[::step, ::step].astype(np.float32)
    b = int(max(1, min(block, np.sqrt(sub.shape[0] * sub.shape[1] / 64))))
    hy, hx = sub.shape[0] // b, sub.shape[1] // b
    if hy and hx:
        sub = sub[:hy * b, :hx * b].reshape(hy, b, hx, b, 3).mean(axis=(1, 3))
    sub = sub.reshape(-1, 3)
    bright = sub.mean(axis=1)
    thr = np.quantile(bright, quantile)
    white = np.median(sub[bright >= thr], axis=0)
    if float(white.min()) < min_fraction * full:
        return np.full(3, full), (f"no tissue-free area found (brightest {white.round(1)} "
                                  f"< {min_fraction:.0%} of full scale): white = {full:g}")
    return white.astype(float), None


def optical_density(rgb: np.ndarray, white: Sequence[float] | np.ndarray | None = None
                    ) -> np.ndarray:
    """Return the Beer-Lambert optical density ``-ln(I / I0)`` of an RGB image.

    Parameters
    ----------
    rgb : ndarray, shape (Y, X, 3)
        Bright-field image (counts).
    white : sequence of 3 floats, optional
        White level ``I0`` per channel (default :func:`estimate_white_level`).

    Returns
    -------
    ndarray of float32, shape (Y, X, 3)
        Optical density, >= 0 (pixels brighter than white are clipped to 0).
    """
    rgb = np.asarray(rgb)
    if white is None:
        white, _ = estimate_white_level(rgb)
    w = np.asarray(white, np.float32).reshape(1, 1, 3)
    i = np.maximum(rgb.astype(np.float32), 1.0)
    return np.maximum(-np.log(np.minimum(i / w, 1.0)), 0.0).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    if not n > 0:
        raise ValueError("a stain vector has zero length")
    return v / n


def vector_angle_deg(a: Sequence[float], b: Sequence[float]) -> float:
    """Return the angle between two optical-density vectors in degrees."""
    a, b = _unit(np.asarray(a, float)), _unit(np.asarray(b, float))
    return float(np.degrees(np.arccos(np.clip(abs(a @ b), -1.0, 1.0))))


def stain_matrix(vectors: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Complete two or three stain OD vectors into a 3 x 3 matrix of unit rows.

    Parameters
    ----------
    vectors : array_like, shape (2, 3) or (3, 3)
        Optical-density vectors (R, G, B) of the stains; with two, the third row is
        their normalised cross product (the residual).

    Returns
    -------
    ndarray, shape (3, 3)
        Unit rows; invertible.

    Raises
    ------
    ValueError
        Wrong shape, negative or zero vectors, or vectors that are (nearly) parallel.
    """
    v = np.asarray(vectors, float)
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] not in (2, 3):
        raise ValueError(f"stain vectors must be 2 or 3 rows of (R, G, B), got shape {v.shape}")
    if v.shape[0] == 2:
        if (v < 0).any():
            raise ValueError("optical-density stain vectors must be non-negative")
        third = np.cross(v[0], v[1])
        if third.sum() < 0:
            third = -third
        v = np.vstack([v, third])
    rows = np.array([_unit(r) for r in v])
    if abs(np.linalg.det(rows)) < 1e-3:
        raise ValueError("stain vectors are (nearly) parallel: cannot separate the stains")
    return rows


def estimate_stain_vectors(
    od: np.ndarray,
    *,
    reference: str = "hdab",
    beta: float = 0.15,
    alpha: float = 1.0,
    max_pixels: int = 200_000,
    pixel_size_um: float | None = None,
    background_um: float = 8.0,
    quantile: float = 0.995,
) -> np.ndarray:
    """Estimate the two stains' OD vectors of an image (Macenko, then local contrast).

    The optical densities of stained pixels (norm above ``beta``) are projected onto the
    plane of their two largest principal directions; the stain vectors are the
    directions at the ``alpha`` and ``100 - alpha`` percentiles of the angle in that
    plane (Macenko et al., ISBI 2009). Which vector is which stain is decided by the
    smaller angle to the ``reference`` matrix's first two rows.

    With a third stain (an eosin-like counterstain) the pixels fill a cone of three
    vectors, not a plane: the plane of the two largest principal directions mixes the
    third stain into both estimates (about 10° off with a light eosin). So when the
    pixel size is known the estimate is refined by local contrast: for each of the two
    stains, its most-stained pixels (top ``1 - quantile`` of its amount under the current
    vectors) are taken, and the stain's vector is the summed optical-density *increment*
    of those pixels over the local tissue background (median of ``background_um``
    blocks). Fibres and nuclei are small and sharp, the counterstain smooth, so the
    counterstain and the glass cancel in the increments; two rounds.

    Parameters
    ----------
    od : ndarray, shape (Y, X, 3)
        Optical density (:func:`optical_density`).
    reference : {"hdab", "hed"}
        Named matrix whose first two stains are estimated (``"hdab"``: haematoxylin
        and DAB).
    beta : float
        Minimum OD norm of a pixel used (transparent pixels carry no colour).
    alpha : float
        Percentile (0-50) of the extreme angles (robust to outliers).
    max_pixels : int
        Pixels sampled (on a regular grid) for the estimate.
    pixel_size_um : float, optional
        Pixel size of ``od`` (µm); without it only Macenko's estimate is made.
    background_um : float
        Block size of the local background of the refinement, µm.
    quantile : float
        Pixels above this quantile of a stain's amount refine its vector.

    Returns
    -------
    ndarray, shape (3, 3)
        Unit OD vectors: the two estimated stains in the reference's order, then the
        residual (their cross product).

    Raises
    ------
    ValueError
        Too few stained pixels to estimate from.
    """
    if reference not in NAMED_STAINS:
        raise ValueError(f"unknown reference stains {reference!r}; known: {sorted(NAMED_STAINS)}")
    ref = NAMED_STAINS[reference][0][:2]
    if reference == "hed":
        ref = NAMED_STAINS[reference][0][[0, 2]]
    x = np.asarray(od, np.float32).reshape(-1, 3)
    step = max(1, x.shape[0] // max_pixels)
    x = x[::step]
    x = x[np.linalg.norm(x, axis=1) > beta]
    if x.shape[0] < 100:
        raise ValueError(f"too few stained pixels ({x.shape[0]}) to estimate stain vectors")
    cov = np.cov(x.T.astype(np.float64))
    _, vecs = np.linalg.eigh(cov)
    plane = vecs[:, [2, 1]]  # largest two
    if plane[:, 0].sum() < 0:
        plane[:, 0] = -plane[:, 0]
    if plane[:, 1].sum() < 0:
        plane[:, 1] = -plane[:, 1]
    t = x @ plane
    phi = np.arctan2(t[:, 1], t[:, 0])
    lo, hi = np.percentile(phi, [alpha, 100 - alpha])
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    v1 = _unit(np.abs(v1) if v1.sum() < 0 else v1)
    v2 = _unit(np.abs(v2) if v2.sum() < 0 else v2)
    v1, v2 = np.maximum(v1, 0), np.maximum(v2, 0)
    keep = (vector_angle_deg(v1, ref[0]) + vector_angle_deg(v2, ref[1])
            <= vector_angle_deg(v2, ref[0]) + vector_angle_deg(v1, ref[1]))
    pair = np.vstack([v1, v2] if keep else [v2, v1])
    m = stain_matrix(pair)
    if pixel_size_um is not None and np.ndim(od) == 3:
        m = _refine_by_local_contrast(np.asarray(od, np.float32), m,
                                      max(2, int(round(background_um / pixel_size_um))),
                                      quantile)
    return m


def _block_median(od: np.ndarray, b: int) -> np.ndarray:
    """Median of each b x b block, repeated over the block (NaN where no full block)."""
    h, w, _ = od.shape
    hy, hx = h // b, w // b
    out = np.full(od.shape, np.nan, np.float32)
    if hy == 0 or hx == 0:
        return out
    blk = od[:hy * b, :hx * b].reshape(hy, b, hx, b, 3).transpose(0, 2, 1, 3, 4)
    med = np.median(blk.reshape(hy, hx, b * b, 3), axis=2)
    out[:hy * b, :hx * b] = np.repeat(np.repeat(med, b, 0), b, 1)
    return out


def _refine_by_local_contrast(od: np.ndarray, m: np.ndarray, block: int, quantile: float,
                              rounds: int = 2) -> np.ndarray:
    """Re-estimate the two stain vectors from their pixels' OD increments (see above)."""
    delta = (od - _block_median(od, block)).reshape(-1, 3)
    x = od.reshape(-1, 3)
    ok = np.isfinite(delta).all(1) & (np.linalg.norm(x, axis=1) > 0)
    if ok.sum() < 1000:
        return m
    for _ in range(rounds):
        c = x[ok] @ np.linalg.inv(m)
        new = []
        for k in (0, 1):
            sel = c[:, k] > np.quantile(c[:, k], quantile)
            v = np.maximum(delta[ok][sel].sum(0), 0.0)
            if sel.sum() < 20 or not np.linalg.norm(v) > 0:
                return m
            new.append(v / np.linalg.norm(v))
        try:
            m = stain_matrix(np.vstack(new))
        except ValueError:
            return m
    return m


def sample_step(shape_yx: Sequence[int], max_pixels: float = 4e6) -> int:
    """Return the grid step that samples at most about ``max_pixels`` of an image.

    The white level and the stain vectors are estimated on ``rgb[::step, ::step]``, so a
    whole image in memory and a whole-slide scan read with that stride give the same
    estimates.

    Parameters
    ----------
    shape_yx : sequence of int
        Image shape (Y, X).
    max_pixels : float
        Pixels wanted in the sample.

    Returns
    -------
    int
        The step (>= 1).
    """
    n = float(shape_yx[0]) * float(shape_yx[1])
    return max(1, int(np.sqrt(n / max_pixels)))


def resolve_stains(
    sample: np.ndarray,
    *,
    stains: str | Sequence[Sequence[float]] | np.ndarray = "estimate",
    white: Sequence[float] | np.ndarray | None = None,
    reference: str = "hdab",
    names: Sequence[str] | None = None,
    pixel_size_um: float | None = None,
) -> StainSeparation:
    """Decide the white level and stain vectors of a slide from a sample of its pixels.

    Parameters
    ----------
    sample : ndarray, shape (Y, X, 3)
        Pixels of the slide on a regular grid (e.g. ``rgb[::s, ::s]`` with
        ``s = sample_step(rgb.shape[:2])``), or the whole image.
    stains, white, reference, names
        As in :func:`deconvolve`.
    pixel_size_um : float, optional
        Pixel size of ``sample`` (µm; for a grid sample, the step times the slide's):
        refines estimated vectors by local contrast (:func:`estimate_stain_vectors`).

    Returns
    -------
    StainSeparation
        With an empty ``concentrations`` (0 x 0 x 3); the vectors, names, white level,
        source and notes to separate any region of the slide with :func:`separate`.
    """
    sample = np.asarray(sample)
    if sample.ndim != 3 or sample.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (Y, X, 3), got shape {sample.shape}")
    notes: list[str] = []
    if white is None:
        w, note = estimate_white_level(sample)
        if note:
            notes.append(note)
    else:
        w = np.asarray(white, float).reshape(3)
        if not (w > 0).all():
            raise ValueError(f"white level must be positive, got {w.tolist()}")
    if isinstance(stains, str):
        if stains == "estimate":
            m = estimate_stain_vectors(optical_density(sample, w), reference=reference,
                                       pixel_size_um=pixel_size_um)
            nm = NAMED_STAINS[reference][1]
            nm = (nm[0], nm[1], "residual") if reference == "hdab" else (nm[0], nm[2],
                                                                         "residual")
            source = "estimated"
        elif stains in NAMED_STAINS:
            m, nm = stain_matrix(NAMED_STAINS[stains][0]), NAMED_STAINS[stains][1]
            source = stains
        else:
            raise ValueError(f"unknown stains {stains!r}: 'estimate', "
                             f"{', '.join(map(repr, NAMED_STAINS))} or OD vectors")
    else:
        m = stain_matrix(stains)
        nm = tuple(names) if names is not None else ("haematoxylin", "dab", "residual")
        if len(nm) != 3:
            raise ValueError("names must name 3 stains (the third is the residual)")
        source = "given"
    return StainSeparation(concentrations=np.zeros((0, 0, 3), np.float32), names=tuple(nm),
                           vectors=m, white=w, source=source, notes=notes)


def separate(
    rgb: np.ndarray,
    vectors: np.ndarray,
    white: Sequence[float] | np.ndarray,
    *,
    planes: Sequence[int] | None = None,
    block_rows: int = 512,
) -> np.ndarray:
    """Stain concentrations of an RGB image, computed in float32 blocks of rows.

    Equivalent to :func:`skimage.color.separate_stains` (optical density times the
    inverse stain matrix, clipped at 0), but never holds more than ``block_rows`` rows
    in float, so a large region costs only its output planes.

    Parameters
    ----------
    rgb : ndarray, shape (Y, X, 3)
        Bright-field image (counts), e.g. a region read from a whole-slide scan.
    vectors : ndarray, shape (3, 3)
        Unit OD vectors of the stains (rows), e.g. ``StainSeparation.vectors``.
    white : sequence of 3 floats
        The slide's white level.
    planes : sequence of int, optional
        Which stains to return (default all three).
    block_rows : int
        Rows per block.

    Returns
    -------
    ndarray of float32, shape (Y, X, len(planes))
        Stain amounts in optical-density units (natural log), >= 0.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (Y, X, 3), got shape {rgb.shape}")
    planes = list(range(3)) if planes is None else list(planes)
    inv = np.linalg.inv(np.asarray(vectors, float))[:, planes].astype(np.float32)
    w = np.asarray(white, np.float32).reshape(1, 1, 3)
    out = np.empty(rgb.shape[:2] + (len(planes),), np.float32)
    lo = np.float32(1e-6)
    for y0 in range(0, rgb.shape[0], max(1, int(block_rows))):
        blk = rgb[y0:y0 + block_rows].astype(np.float32) / w
        np.clip(blk, lo, np.float32(1.0), out=blk)
        od = -np.log(blk)
        out[y0:y0 + block_rows] = np.maximum(od @ inv, 0.0)
    return out


def deconvolve(
    rgb: np.ndarray,
    *,
    stains: str | Sequence[Sequence[float]] | np.ndarray = "estimate",
    white: Sequence[float] | np.ndarray | None = None,
    reference: str = "hdab",
    names: Sequence[str] | None = None,
    pixel_size_um: float | None = None,
) -> StainSeparation:
    """Separate a bright-field RGB image into stain concentration maps.

    The white level and estimated vectors come from the grid sample
    ``rgb[::s, ::s]`` (``s = sample_step(rgb.shape[:2])``, at most about 4 million
    pixels), as for a whole-slide scan (:func:`resolve_stains`); the maps are computed in
    float32 blocks (:func:`separate`).

    Parameters
    ----------
    rgb : ndarray, shape (Y, X, 3)
        Bright-field image (uint8 / uint16 counts or floats in [0, 1]).
    stains : {"estimate", "hdab", "hed"} or array_like, shape (2, 3) or (3, 3)
        Stain vectors: estimated per image (Macenko, with ``reference`` deciding which
        is which), a named matrix, or given OD vectors (R, G, B).
    white : sequence of 3 floats, optional
        The slide's white level; default estimated from the brightest tissue-free area.
    reference : {"hdab", "hed"}
        Stains estimated (``"estimate"``) and their names.
    names : sequence of str, optional
        Names of given vectors (default haematoxylin, dab, residual).
    pixel_size_um : float, optional
        Pixel size (µm): estimated vectors are refined by local contrast, which
        removes the bias of an eosin-like third stain (:func:`estimate_stain_vectors`).

    Returns
    -------
    StainSeparation
        Concentrations (OD units), stain names, the vectors and white level used.

    Examples
    --------
    >>> from skimage import data
    >>> sep = deconvolve(data.immunohistochemistry(), stains="hdab")
    >>> sep.names
    ('haematoxylin', 'dab', 'residual')
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (Y, X, 3), got shape {rgb.shape}")
    s = sample_step(rgb.shape[:2])
    sep = resolve_stains(rgb[::s, ::s], stains=stains, white=white, reference=reference,
                         names=names,
                         pixel_size_um=None if pixel_size_um is None else pixel_size_um * s)
    sep.concentrations = separate(rgb, sep.vectors, sep.white)
    return sep


#: Smoothed summed optical density (R + G + B) above which a pixel is tissue, not glass.
#: The glass is OD 0 at the slide's white level (noise of a few counts: ~0.01); a lightly
#: counterstained dermis is about 0.1 or more.
GLASS_OD = 0.04


def tissue_mask(
    rgb: np.ndarray,
    white: Sequence[float] | np.ndarray,
    pixel_size_um: float,
    *,
    min_od: float = GLASS_OD,
    smooth_um: float = 2.0,
    min_area_um2: float = 400.0,
    block_rows: int = 512,
) -> np.ndarray:
    """Tissue versus glass of a bright-field image: near-white is glass.

    The summed optical density of the three colours (computed in float32 blocks of rows)
    is smoothed over ``smooth_um``; glass is where it stays below ``min_od`` (or, on a
    noisier scan, below eight standard deviations of the smoothed glass noise above the
    glass's own level, and at least ``min_od / 2`` above that level, so that glass a
    little darker than ``white`` stays glass). Holes are filled and specks under
    ``min_area_um2`` dropped. Unlike the stain maps, where a
    stratum corneum or a faint dermis can be as low as the glass, this tells the empty
    slide from any stained tissue whatever its stain.

    Parameters
    ----------
    rgb : ndarray, shape (Y, X, 3)
        Bright-field image (counts).
    white : sequence of 3 floats
        The slide's white level (:func:`estimate_white_level`).
    pixel_size_um : float
        Pixel size, µm.
    min_od : float
        Smallest smoothed summed OD of tissue.
    smooth_um : float
        Gaussian smoothing, µm.
    min_area_um2 : float
        Smaller tissue specks are glass.
    block_rows : int
        Rows per block of the optical density.

    Returns
    -------
    ndarray of bool, shape (Y, X)
        True on tissue.
    """
    from scipy import ndimage as ndi

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (Y, X, 3), got shape {rgb.shape}")
    px = float(pixel_size_um)
    if not px > 0:
        raise ValueError(f"pixel size must be > 0, got {pixel_size_um}")
    w = np.asarray(white, np.float32).reshape(1, 1, 3)
    od = np.empty(rgb.shape[:2], np.float32)
    for y0 in range(0, rgb.shape[0], max(1, int(block_rows))):
        blk = rgb[y0:y0 + block_rows].astype(np.float32) / w
        np.clip(blk, np.float32(1e-6), np.float32(1.0), out=blk)
        od[y0:y0 + block_rows] = -np.log(blk).sum(-1)
    sig = max(smooth_um / px, 0.5)
    sm = ndi.gaussian_filter(od, sig)
    t = float(min_od)
    # glass a little darker than ``white`` (a white given a few counts too bright, uneven
    # illumination) is found at its own level, up to half of ``min_od`` above it
    lo = float(np.percentile(sm[::4, ::4], 1))
    glass = sm < max(t, min(lo, t) + 0.5 * t)
    if glass.sum() > 1000:  # a noisy scan: the glass's own spread decides
        sub = od[::2, ::2][glass[::2, ::2]]
        res = sub - float(np.median(sub))
        sd = 1.4826 * float(np.median(np.abs(res))) / (2 * np.sqrt(np.pi) * sig)
        # and tissue is well above the glass's own level
        g = float(np.median(sm[glass]))
        t = max(t, g + 8 * sd, g + 0.5 * float(min_od))
    del od
    tissue = sm > t
    del sm
    lab, n = ndi.label(tissue)
    if n:
        sizes = np.bincount(lab.ravel())
        keep = sizes * px * px >= min_area_um2
        keep[0] = False
        tissue = keep[lab]
        del lab
        tissue = ndi.binary_fill_holes(tissue)
    return tissue
