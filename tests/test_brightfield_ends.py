"""Bright-field sections whose end lies in glass: the glass, the cut end, the length.

At 0.25 µm/px the glass noise reaches far fewer counts per smoothed pixel than the
tissue's optical density, but a white level taken from the brightest single pixels is
the glass plus its noise: the glass itself then had an optical density at the tissue
threshold, the tissue mask frayed into the glass and the epidermal surface ran round the
section's cut end and out over the glass (length +30 % to +120 %, IENFD far too low).
"""

import numpy as np
import pytest

from histo_fms.skin import analyze_skin, polyline_length
from histo_fms.stain import deconvolve, tissue_mask
from histo_fms.synthetic.brightfield import make_brightfield_skin_section
from histo_fms.synthetic.skin import match_crossings

PX = 0.25


def _on_glass(seed: int, orientation: str, glass=(40, 80, 200)):
    """A 200 x 250 µm section with glass above, below and beyond its right (cut) end."""
    h, w = 800, 1000
    top, bottom, right = glass
    ph = make_brightfield_skin_section((h, w), PX, seed=seed, density_per_mm=25.0,
                                       orientation=orientation, thickness_um=(25.0, 40.0),
                                       jpeg_quality=None)
    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal(ph.white, 2.0, (h + top + bottom, w + right, 3)), 0, 255)
    rgb = rgb.astype(np.uint8)
    rgb[top:top + h, :w] = ph.rgb
    truth = ph.skin.truth_crossings[["y_um", "x_um"]].copy()
    truth["y_um"] += top * PX
    return ph, rgb, truth


@pytest.mark.parametrize(("seed", "orientation"), [(33, "up"), (32, "down")])
def test_section_end_in_glass_gives_the_true_epidermal_length(seed, orientation):
    ph, rgb, truth = _on_glass(seed, orientation)
    sep = deconvolve(rgb, pixel_size_um=PX)
    tissue = tissue_mask(rgb, sep.white, PX)
    res = analyze_skin(sep.plane("dab") * 1000.0, pixel_size_um=PX,
                       nuclei=sep.plane("haematoxylin") * 1000.0, tissue=tissue)
    true_len = polyline_length(ph.skin.surface_um)
    assert res.epidermis_length_mm * 1000 == pytest.approx(true_len, rel=0.03)
    assert res.dej_length_mm * 1000 == pytest.approx(polyline_length(ph.skin.dej_um),
                                                     rel=0.1)
    m = match_crossings(truth, res.crossings, tolerance_um=10.0)
    assert len(truth) >= 5
    assert abs(res.n_crossings - len(truth)) <= 1 and len(m) >= len(truth) - 1
    # the surface stays on the section: nothing beyond its cut end
    assert res.surface_um[:, 1].max() <= 1000 * PX + 3.0


def test_glass_a_little_darker_than_the_white_level_stays_glass():
    ph, rgb, _ = _on_glass(33, "up")
    sep = deconvolve(rgb, pixel_size_um=PX)
    ref = tissue_mask(rgb, sep.white, PX)
    # a white level 2 counts brighter still (the estimate is already the glass plus some
    # of its noise): the glass has an optical density of about 0.05 (summed over R, G, B),
    # above the tissue threshold of 0.04
    off = tissue_mask(rgb, np.asarray(sep.white) + 2.0, PX)
    assert (ref & off).sum() / (ref | off).sum() > 0.99
    near = np.zeros(rgb.shape[:2], bool)
    near[40 - 24:840 + 24, :1000 + 24] = True  # the rendered section and 6 µm around it
    assert off.any() and not (off & ~near).any()


def test_a_ragged_cut_end_is_trimmed_from_the_surface_line():
    from histo_fms.skin._dej import Frame
    from histo_fms.skin._epidermis import _trim_cut_ends

    # surface along x at y = 100 px, then down a ragged cut end at x ~ 400 to y = 260 (the
    # DEJ): zigzags of +-6 px with flat steps, as the glass boundary of a frayed end
    x = np.arange(0.0, 400.0, 4.0)
    surf = np.stack([np.full_like(x, 100.0), x], 1)
    y = np.arange(104.0, 260.0, 4.0)
    zig = 400.0 + 6.0 * np.sign(np.sin(y / 9.0))
    end = np.stack([y, zig], 1)
    line = np.vstack([surf, end])
    px = 0.25
    for flip, ln in ((False, line), (True, line[::-1] * [-1, 1] + [400, 0])):
        out = _trim_cut_ends(ln, Frame(transpose=False, flip=flip), reach_px=800.0, px=px)
        assert polyline_length(out) == pytest.approx(polyline_length(surf), abs=12.0)
    # a surface with a furrow (10 µm deep) far from the ends is kept whole
    furrow = surf.copy()
    furrow[40:50, 0] += 40.0 * np.sin(np.linspace(0, np.pi, 10))
    out = _trim_cut_ends(furrow, Frame(False, False), reach_px=800.0, px=px)
    assert len(out) == len(furrow)
