"""Glass (empty slide) around a skin section: beyond its deep edge, at its ends, between pieces.

A section on a real slide has glass all round. The glass beyond the deep (dermal) edge used
to join the stratum-corneum strips into a ring around the dermis, which was then filled into
the epidermis ("no dermis beyond the dense band"): whole-slide windows were dropped.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

from histo_fms.brightfield_wsi import _dedupe, analyze_tissue_pieces, window_digest
from histo_fms.skin import SkinParams, analyze_skin, find_epidermis, polyline_length
from histo_fms.stain import deconvolve, tissue_mask
from histo_fms.synthetic.brightfield import make_brightfield_skin_section
from histo_fms.synthetic.skin import evaluate_skin, make_skin_section

PX = 0.5


def _glass(white, shape, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(white, 2.0, (*shape, 3)), 0, 255).astype(np.uint8)


def _on_glass(rgb, white, pad):
    out = _glass(white, (rgb.shape[0] + 2 * pad, rgb.shape[1] + 2 * pad))
    out[pad:pad + rgb.shape[0], pad:pad + rgb.shape[1]] = rgb
    return out


def _shifted(df, dy_um, dx_um, flip_h_px=None):
    df = df[["y_um", "x_um"]].copy()
    if flip_h_px is not None:
        df["y_um"] = (flip_h_px - 1) * PX - df["y_um"]
    df["y_um"] += dy_um
    df["x_um"] += dx_um
    return df


@pytest.mark.parametrize(("seed", "orientation"), [
    pytest.param(61, "up", marks=pytest.mark.xfail(
        strict=True, reason="known limitation: the rim along the deep glass, not closed "
        "round the dermis, is still joined to the stratum corneum (DEJ 25-77 µm off)")),
    (62, "down")])
def test_fluorescence_dermis_ending_in_glass_keeps_its_dej(seed, orientation):
    ph = make_skin_section((300, 500), PX, seed=seed, with_membrane=False, density_per_mm=0,
                           orientation=orientation, thickness_um=(50.0, 70.0))
    img = ph.image.astype(np.float32)
    # the slide beyond the deep edge: rows of the image's own background (offset + noise)
    surf = ph.surface_um[:, 0] / PX
    if orientation == "up":
        k = int(surf.min()) - 4
        glass = img[:, :k]
        img = np.concatenate([img] + [glass] * (80 // k + 1), axis=1)[:, :300 + 80]
    else:
        k = 300 - int(surf.max()) - 4
        glass = img[:, -k:]
        img = np.concatenate([glass] * (80 // k + 1) + [img], axis=1)
        img = img[:, -(300 + 80):]
        shift = img.shape[1] - 300
    names = ph.channel_names
    ch = {n: img[i] for i, n in enumerate(names)}
    epi = find_epidermis(pixel_size_um=PX, nuclei=ch["DAPI"], fibre=ch["PGP9.5"])
    truth = ph.dej_um.copy()
    if orientation == "down":
        truth[:, 0] += shift * PX
    f = epi.dej_um[(epi.dej_um[:, 1] > 10) & (epi.dej_um[:, 1] < 240)]
    err = cKDTree(truth).query(f)[0]
    assert np.percentile(err, 95) <= 5.0, np.percentile(err, [50, 95, 100])
    # the epidermis is not the whole tissue: nothing of it far below the true DEJ
    rows = np.nonzero(epi.mask.any(1))[0]
    deep = truth[:, 0].max() / PX + 20 / PX if orientation == "up" else \
        truth[:, 0].min() / PX - 20 / PX
    assert (rows <= deep).all() if orientation == "up" else (rows >= deep).all()


@pytest.mark.parametrize(("seed", "orientation", "px"), [(63, "up", 0.5), (64, "down", 0.5),
                                                        (65, "up", 0.45)])
def test_brightfield_section_with_glass_all_round_counts_its_crossings(seed, orientation, px):
    shape = (int(200 / px), int(200 / px))
    # no fibres running parallel under the DEJ: in so short a section they are the DEJ
    # tracer's test (tests/test_skin_*), not the glass's
    ph = make_brightfield_skin_section(shape, px, seed=seed, n_fibres=6, parallel_per_mm=0.0,
                                       orientation=orientation, jpeg_quality=None)
    pad = int(15 / px)
    rgb = _on_glass(ph.rgb, ph.white, pad)
    sep = deconvolve(rgb, pixel_size_um=px)
    tissue = tissue_mask(rgb, sep.white, px)
    # glass is background: the pad, whatever its stain maps say
    assert not tissue[:pad // 2].any() and not tissue[:, :pad // 2].any()
    assert not tissue[-pad // 2:].any() and not tissue[:, -pad // 2:].any()
    res = analyze_skin(sep.plane("dab") * 1000, nuclei=sep.plane("haematoxylin") * 1000,
                       pixel_size_um=px, tissue=tissue)
    cr = res.crossings.copy()
    cr["y_um"] -= pad * px
    cr["x_um"] -= pad * px
    e = evaluate_skin(ph.skin, cr, tolerance_um=10.0)
    assert e["n_true"] >= 4
    assert e["tp"] >= e["n_true"] - 1 and e["n_detected"] - e["tp"] <= 1, e
    # the DEJ runs the length of the section, not round the dermis; the surface too, not
    # round the section's cut ends (there the epidermis meets the glass across its depth)
    assert res.dej_length_mm == pytest.approx(ph.skin.dej_length_um / 1000, rel=0.25)
    assert res.epidermis_length_mm == pytest.approx(ph.skin.surface_length_um / 1000,
                                                    rel=0.08)


def test_pieces_separated_by_glass_are_each_analysed_or_listed():
    # 100 µm tall sections: a thin epidermis leaves a dermis thicker than the largest
    # stratum corneum (a thinner one would be taken for it)
    kw = dict(density_per_mm=30.0, jpeg_quality=None, thickness_um=(30.0, 40.0))
    a = make_brightfield_skin_section((200, 400), PX, seed=71, **kw)
    b = make_brightfield_skin_section((200, 400), PX, seed=72, **kw,
                                      stain_vectors=a.stain_vectors, white=a.white)
    rgb = _glass(a.white, (512, 512))
    rgb[20:220, 30:430] = a.rgb
    rgb[280:480, 30:430] = b.rgb[::-1]  # the second upside down, 30 µm of glass between
    # a dermis-only fragment (counterstain, no epidermis) beside them, 15 µm of glass away
    rgb[150:350, 460:500] = a.rgb[-1, 200]
    sep = deconvolve(rgb, pixel_size_um=PX)
    tissue = tissue_mask(rgb, sep.white, PX)
    parts = analyze_tissue_pieces(sep.plane("dab") * 1000, sep.plane("haematoxylin") * 1000,
                                  tissue, PX, SkinParams(), min_area_um2=1000.0)
    ok = [p for p in parts if p.status == "ok"]
    failed = [p for p in parts if p.status == "failed"]
    assert len(ok) == 2 and len(failed) == 1 and failed[0].reason
    # specks under the minimum area are listed as skipped, with why, never failed
    assert all(p.area_um2 < 1000.0 and "debris" in p.reason for p in parts
               if p.status == "skipped")
    for p, ph, flip, y0 in zip(sorted(ok, key=lambda p: p.y0), (a, b), (None, 200),
                               (20, 280), strict=True):
        cr = p.result.crossings.copy()
        cr["y_um"] += (p.y0 - y0) * PX
        cr["x_um"] += (p.x0 - 30) * PX
        if flip:
            cr["y_um"] = (flip - 1) * PX - cr["y_um"]
        e = evaluate_skin(ph.skin, cr, tolerance_um=10.0)
        assert e["tp"] >= e["n_true"] - 1 and e["n_detected"] - e["tp"] <= 1, e
        assert p.result.epidermis_length_mm * 1000 == pytest.approx(
            polyline_length(ph.skin.surface_um), rel=0.05)
    rows = [{"window": 1, "piece": 1, "tissue_piece": i + 1,
             "status": p.status, "reason": p.reason,
             "dej_um": 1.0, "surface_um": 1.0, "n_crossings": 0} for i, p in enumerate(parts)]
    assert "FAILED (" in window_digest(rows)


def test_a_sliver_in_a_window_overlap_is_skipped_not_failed():
    # a window whose core holds only the edge of a section (its bulk in the overlap, which
    # the neighbouring window measures) and a speck of debris: both listed as skipped
    tissue = np.zeros((400, 400), bool)
    tissue[20:380, 0:300] = True     # the section, its bulk left of the core
    tissue[200:210, 350:360] = True  # debris in the core
    core = np.zeros_like(tissue)
    core[:, 280:] = True
    z = np.zeros(tissue.shape, np.float32)
    parts = analyze_tissue_pieces(z, z, tissue, PX, SkinParams(), core=core)
    assert [p.status for p in parts] == ["skipped", "skipped"]
    assert "neighbouring window" in parts[0].reason and "debris" in parts[1].reason
    rows = [{"window": 1, "piece": 1, "tissue_piece": i + 1, "status": p.status,
             "reason": p.reason, "dej_um": 0.0, "surface_um": 0.0, "n_crossings": 0}
            for i, p in enumerate(parts)]
    assert "skipped (" in window_digest(rows) and "FAILED" not in window_digest(rows)


def test_a_crossing_on_a_window_seam_is_counted_once():
    boundary = 500.0
    prev = pd.DataFrame({"y_um": [100.0, 120.0], "x_um": [499.0, 300.0]})
    kept = pd.DataFrame({"y_um": [100.5, 100.0, 110.0], "x_um": [500.5, 505.0, 800.0]})
    out = _dedupe(kept, prev, boundary, "x_um", 3.0)
    # the same fibre seen from both sides of the seam: once; one 6 µm away: a second fibre
    assert out["x_um"].tolist() == [505.0, 800.0]
    assert _dedupe(kept, prev.iloc[:0], boundary, "x_um", 3.0).equals(kept)
