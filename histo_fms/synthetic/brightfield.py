"""Synthetic bright-field PGP9.5 IHC skin sections (DAB + haematoxylin) with ground truth.

The geometry and the fibre ground truth are those of :func:`make_skin_section`; the
section is rendered as a bright-field RGB image by the Beer-Lambert law: DAB on the
fibres (and a faint non-specific background), haematoxylin on the nuclei with a light
cytoplasmic counterstain, an eosin-like tissue stain, slide white balance and stain
vectors that vary between sections, sensor noise and JPEG-like compression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stain import NAMED_STAINS, stain_matrix
from .skin import SkinPhantom, make_skin_section

__all__ = ["BrightfieldSkinPhantom", "make_brightfield_skin_section", "rotate_vector"]


@dataclass
class BrightfieldSkinPhantom:
    """A bright-field skin phantom.

    Attributes
    ----------
    rgb : ndarray of uint8, shape (Y, X, 3)
        The RGB image.
    pixel_size_um : float
        Pixel size in µm.
    skin : SkinPhantom
        The underlying section and its ground truth (crossings, DEJ, surface).
    stain_vectors : ndarray, shape (3, 3)
        Unit OD vectors of haematoxylin, DAB and the eosin-like stain used to render.
    white : ndarray, shape (3,)
        The slide white level used.
    """

    rgb: np.ndarray
    pixel_size_um: float
    skin: SkinPhantom
    stain_vectors: np.ndarray
    white: np.ndarray


def rotate_vector(v: np.ndarray, angle_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate a unit vector by ``angle_deg`` about a random axis, keeping it positive."""
    v = np.asarray(v, float) / np.linalg.norm(v)
    for _ in range(100):
        axis = rng.normal(size=3)
        axis -= axis @ v * v
        axis /= np.linalg.norm(axis)
        a = np.radians(angle_deg)
        out = v * np.cos(a) + axis * np.sin(a)
        if (out >= 0).all():
            return out / np.linalg.norm(out)
    return v


def _normalised(ch: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    ch = ch.astype(np.float32)
    bg = float(np.median(ch[tissue])) if tissue.any() else float(np.median(ch))
    hi = float(np.percentile(ch, 99.9))
    return np.clip((ch - bg) / max(hi - bg, 1e-6), 0.0, 1.5)


def make_brightfield_skin_section(
    shape: tuple[int, int] = (600, 2400),
    pixel_size_um: float = 0.5,
    *,
    seed: int = 0,
    density_per_mm: float = 12.0,
    dab_od: float = 1.0,
    haematoxylin_od: float = 0.6,
    eosin_od: float = 0.12,
    background_dab_od: float = 0.03,
    vector_jitter_deg: float = 4.0,
    white_jitter: float = 10.0,
    noise: float = 2.0,
    jpeg_quality: int | None = 90,
    stain_vectors: np.ndarray | None = None,
    white: np.ndarray | None = None,
    **skin_kw,
) -> BrightfieldSkinPhantom:
    """Render a skin section as bright-field PGP9.5 IHC (DAB, haematoxylin counterstain).

    Parameters
    ----------
    shape : tuple of int
        Image shape (Y, X) in pixels.
    pixel_size_um : float
        Pixel size in µm (scanners: 0.25-0.5).
    seed : int
        Random seed (geometry, stains, noise).
    density_per_mm : float
        Poisson mean of crossing fibres per mm (see :func:`make_skin_section`).
    dab_od, haematoxylin_od, eosin_od : float
        Peak optical densities of the chromogen on fibres, of haematoxylin on nuclei,
        and of the eosin-like tissue stain.
    background_dab_od : float
        Non-specific DAB in the tissue.
    vector_jitter_deg : float
        Each stain vector is rotated by up to this angle (stain batches, scanners).
    white_jitter : float
        Per-channel spread of the slide white level (white balance), counts.
    noise : float
        Sensor noise (counts, standard deviation).
    jpeg_quality : int or None
        JPEG compression quality (None: none).
    stain_vectors : ndarray, shape (3, 3), optional
        Render with these unit OD vectors (haematoxylin, DAB, eosin-like) instead of
        jittered ones, e.g. another section's, for sections of one slide (one stain batch).
    white : ndarray, shape (3,), optional
        Render with this white level instead of a jittered one (one slide, one scan).
    **skin_kw
        Passed to :func:`make_skin_section` (orientation, rete ridges, decoys...).

    Returns
    -------
    BrightfieldSkinPhantom
        The RGB image, the stain vectors and white level used, and the ground truth.
    """
    rng = np.random.default_rng(seed + 7919)
    skin_kw.setdefault("with_membrane", False)
    skin = make_skin_section(shape, pixel_size_um, seed=seed, density_per_mm=density_per_mm,
                             vignetting_strength=0.0, photons_per_unit=400.0, read_noise=1.0,
                             **skin_kw)
    h, w = shape
    px = float(pixel_size_um)
    surf = np.interp(np.arange(w), skin.surface_um[:, 1] / px, skin.surface_um[:, 0] / px)
    yy = np.arange(h)[:, None]
    tissue = yy >= surf[None] if skin.orientation == "up" else yy <= surf[None]
    epi = skin.epidermis
    dermis = tissue & ~epi
    fib = _normalised(skin.channel("PGP9.5"), tissue)
    nuc = _normalised(skin.channel("DAPI"), tissue)

    jitter = rng.uniform(0.3, 1.0, 3) * vector_jitter_deg
    base = NAMED_STAINS["hed"][0]
    v_h = rotate_vector(base[0], jitter[0], rng)
    v_dab = rotate_vector(base[2], jitter[1], rng)
    v_e = rotate_vector(base[1], jitter[2], rng)
    vectors = stain_matrix(np.vstack([v_h, v_dab, v_e]) if stain_vectors is None
                           else np.asarray(stain_vectors, float))
    c_dab = dab_od * rng.uniform(0.8, 1.2) * fib + background_dab_od * tissue
    c_h = haematoxylin_od * rng.uniform(0.8, 1.2) * nuc + 0.05 * tissue + 0.05 * epi
    c_e = eosin_od * rng.uniform(0.6, 1.4) * (dermis + 1.5 * epi)
    od = (c_h[..., None] * vectors[0] + c_dab[..., None] * vectors[1]
          + c_e[..., None] * vectors[2])
    white_j = np.clip(245.0 + rng.uniform(-white_jitter, white_jitter, 3), 200, 255)
    white = white_j if white is None else np.asarray(white, float).reshape(3)
    img = white.reshape(1, 1, 3) * np.exp(-od) + rng.normal(0, noise, od.shape)
    rgb = np.clip(np.round(img), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        from imagecodecs import jpeg_decode, jpeg_encode

        rgb = np.asarray(jpeg_decode(jpeg_encode(rgb, level=int(jpeg_quality))))
    return BrightfieldSkinPhantom(rgb=rgb, pixel_size_um=px, skin=skin,
                                  stain_vectors=vectors, white=white)
