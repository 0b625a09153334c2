"""Whole-slide bright-field scans: tissue pieces, windows, float32 separation."""

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from skimage.color import separate_stains

from histo_fms.brightfield_wsi import (
    clip_polyline,
    find_tissue_pieces,
    needs_regions,
    plan_windows,
    region_budget_px,
)
from histo_fms.cli import main
from histo_fms.skin import polyline_length
from histo_fms.stain import NAMED_STAINS, deconvolve, separate, stain_matrix
from histo_fms.synthetic.brightfield import make_brightfield_skin_section
from histo_fms.synthetic.skin import evaluate_skin


def test_float32_block_separation_equals_skimage():
    rng = np.random.default_rng(0)
    rgb = rng.integers(20, 256, (70, 50, 3)).astype(np.uint8)
    m = stain_matrix(NAMED_STAINS["hdab"][0][:2])
    white = np.array([250.0, 248.0, 252.0])
    ref = separate_stains(np.clip(rgb / white, 1e-6, 1), np.linalg.inv(m)) * -np.log(1e-6)
    got = separate(rgb, m, white, block_rows=16)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(separate(rgb, m, white, planes=[1]), got[..., 1:2], atol=1e-5)
    sep = deconvolve(rgb, stains=m[:2].tolist(), white=white)
    np.testing.assert_allclose(sep.concentrations, got, atol=1e-5)


def test_windows_cover_the_piece_and_split_the_overlaps():
    box = (100, 600, 50, 10_050)  # 500 x 10000 px
    ws = plan_windows(box, budget_px=500 * 2000, overlap_px=300)
    assert len(ws) > 1 and all(w.axis == 1 for w in ws)
    assert ws[0].x0 == 50 and ws[-1].x1 == 10_050
    assert all(w.n_pixels <= 500 * 2000 for w in ws)
    for a, b in zip(ws[:-1], ws[1:], strict=True):
        assert a.x1 - b.x0 >= 300  # they overlap by at least the overlap
        assert a.core1 == b.core0 and b.x0 < a.core1 < a.x1  # the core boundary in it
        assert a.core1 - b.x0 >= 150 and a.x1 - a.core1 >= 150  # far from both edges
    assert np.isneginf(ws[0].core0) and np.isposinf(ws[-1].core1)
    # a piece within the budget is one window
    assert len(plan_windows(box, budget_px=500 * 10_000, overlap_px=300)) == 1
    # a tall piece is split along y
    assert {w.axis for w in plan_windows((0, 9000, 0, 400), 400 * 2000, 300)} == {0}


def test_clipped_polyline_lengths_add_up():
    t = np.linspace(0, 6 * np.pi, 400)
    line = np.stack([50 + 20 * np.sin(t), t * 60], 1)
    bounds = [-np.inf, 200.0, 555.5, 900.0, np.inf]
    parts = [clip_polyline(line, 1, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:],
                                                              strict=True)]
    assert sum(p[1] for p in parts) == pytest.approx(polyline_length(line), rel=1e-9)
    assert all((p[0][:, 1] >= lo - 1e-9).all() and (p[0][:, 1] <= hi + 1e-9).all()
               for p, lo, hi in zip(parts, bounds[:-1], bounds[1:], strict=True))


def test_tissue_pieces_are_found_on_a_coarse_sample():
    od = np.zeros((300, 800), np.float32)
    od[40:120, 50:400] = 0.5   # a section
    od[200:260, 500:780] = 0.3  # another
    od[10, 700] = 3.0           # dust: too small
    boxes = find_tissue_pieces(od, 4, 0.5, margin_um=20.0, full_shape=(1200, 3200))
    assert len(boxes) == 2
    (y0, y1, x0, x1), second = boxes
    assert y0 <= 40 * 4 - 40 + 20 and y1 >= 120 * 4 + 40 - 20
    assert x0 <= 50 * 4 and x1 >= 400 * 4
    assert second[0] <= 200 * 4 and second[3] <= 3200
    assert find_tissue_pieces(np.zeros((100, 100)), 4, 0.5) == []


def test_budget_decides_the_region_path():
    assert region_budget_px(1.5) > 10_000_000
    assert not needs_regions((2000, 2000), 1.5)
    assert needs_regions((20_000, 40_000), 1.5)


def test_windowed_whole_slide_run_counts_the_whole_image_crossings(tmp_path):
    px = 0.5
    ph = make_brightfield_skin_section((320, 2000), px, seed=11, density_per_mm=20.0)
    d = tmp_path / "in"
    d.mkdir()
    tifffile.imwrite(d / "scan.svs", ph.rgb, photometric="rgb", tile=(256, 256),
                     compression="jpeg",
                     description=f"Aperio Image Library v12 |AppMag = 20|MPP = {px}")
    base = yaml.safe_load(open("pipelines/skin_ienfd_brightfield.yaml"))
    res = {}
    for name, gib in (("whole", 2.0), ("windows", 0.03)):
        cfg = dict(base, brightfield=dict(base["brightfield"], memory_gib=gib,
                                          window_overlap_um=150.0))
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        out = tmp_path / name
        assert main(["run", str(p), str(d), "--out", str(out), "--scheduler",
                     "synchronous"]) == 0
        res[name] = (pd.read_csv(out / "skin_summary.csv").iloc[0],
                     pd.read_csv(out / "scan" / "crossings.csv"), out)
    (sw, cw, _), (sn, cn, out) = res["whole"], res["windows"]
    assert sn["wsi_regions"] == "1 piece(s), 3 window(s)"
    assert pd.isna(sw.get("wsi_regions", np.nan))
    assert sn["stain_vectors"] == sw["stain_vectors"]  # same grid sample, same estimate
    assert len(cn) == len(cw) == sn["n_crossings"] >= 10
    d2 = np.hypot(cn["y_um"].to_numpy()[:, None] - cw["y_um"].to_numpy()[None],
                  cn["x_um"].to_numpy()[:, None] - cw["x_um"].to_numpy()[None])
    # the same crossings (the DEJ is traced again in each window: within 4 px)
    assert (d2.min(1) <= 2.0).all() and (d2.min(0) <= 2.0).all()
    e = evaluate_skin(ph.skin, cn)
    assert e["precision"] >= 0.9 and e["recall"] >= 0.85
    true_len = polyline_length(ph.skin.surface_um) / 1000.0
    assert sn["epidermis_length_mm"] == pytest.approx(true_len, rel=0.12)
    # labels in slide coordinates, fibre ids of the crossings present in them
    from histo_fms.io import read_labels_zarr

    lab = read_labels_zarr(out / "scan" / "labels.zarr")
    assert lab["fibres"].shape == ph.rgb.shape[:2]
    ids = set(np.unique(lab["fibres"])) - {0}
    assert set(cn["fibre_id"]) <= ids
    status = json.loads((out / "scan" / "status.json").read_text())
    assert len(status["reader"]["whole_slide"]["windows"]) == 3


def test_sections_on_glass_whole_and_in_windows_count_each_crossing_once(tmp_path):
    # two sections with glass all round (one upside down), as on a slide: the glass beyond
    # the deep edge of each is background; every window gives its piece's epidermis, the
    # seams count each crossing once and the windows' DEJ lengths add up to the file's.
    # No dermal nerve bundles or fibres parallel under the DEJ: those test the DEJ tracer
    # (tests/test_skin_*); here the glass, the pieces and the seams are tested.
    px = 0.5
    kw = dict(density_per_mm=25.0, parallel_per_mm=0.0, n_bundles=0, jpeg_quality=None)
    a = make_brightfield_skin_section((400, 1000), px, seed=81, **kw)
    b = make_brightfield_skin_section((400, 1000), px, seed=82, **kw,
                                      stain_vectors=a.stain_vectors, white=a.white)
    rng = np.random.default_rng(0)
    slide = np.clip(rng.normal(a.white, 2.0, (480, 2200, 3)), 0, 255).astype(np.uint8)
    slide[40:440, 40:1040] = a.rgb
    slide[40:440, 1160:2160] = b.rgb[::-1]
    truth = []
    for ph, x0, flip in ((a, 40, False), (b, 1160, True)):
        t = ph.skin.truth_crossings[["y_um", "x_um"]].copy()
        if flip:
            t["y_um"] = (400 - 1) * px - t["y_um"]
        t["y_um"] += 40 * px
        t["x_um"] += x0 * px
        truth.append(t)
    truth = pd.concat(truth, ignore_index=True)
    d = tmp_path / "in"
    d.mkdir()
    tifffile.imwrite(d / "slide.svs", slide, photometric="rgb", tile=(256, 256),
                     description=f"Aperio Image Library v12 |AppMag = 20|MPP = {px}")
    base = yaml.safe_load(open("pipelines/skin_ienfd_brightfield.yaml"))
    res = {}
    for name, gib in (("whole", 2.0), ("windows", 0.03)):
        cfg = dict(base, brightfield=dict(base["brightfield"], memory_gib=gib,
                                          window_overlap_um=150.0))
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        out = tmp_path / name
        assert main(["run", str(p), str(d), "--out", str(out), "--scheduler",
                     "synchronous"]) == 0
        res[name] = (pd.read_csv(out / "skin_summary.csv").iloc[0],
                     pd.read_csv(out / "slide" / "crossings.csv"),
                     json.loads((out / "slide" / "status.json").read_text()))
    from histo_fms.synthetic.skin import match_crossings

    for name, (summ, cr, _) in res.items():
        m = match_crossings(truth, cr, tolerance_um=10.0)
        assert len(truth) >= 20
        assert len(m) >= 0.9 * len(truth) and len(m) >= 0.9 * len(cr), (name, len(truth),
                                                                      len(cr), len(m))
        assert summ["wsi_failed_windows"] == 0 and "FAILED" not in summ["wsi_windows"]
        assert summ["n_crossings"] == len(cr)
    (sw, cw, _), (sn, cn, st) = res["whole"], res["windows"]
    assert sw["wsi_regions"] == "2 tissue piece(s) in 1 window"
    windows = st["reader"]["whole_slide"]["windows"]
    # the two sections are one box (their glass margins overlap); in a window holding the
    # end of one and the start of the other, only the section in its core is analysed
    assert len(windows) >= 3 and all(w["status"] == "ok" for w in windows)
    # the windows' DEJ and crossings add up to the file's: nothing counted twice at a seam
    assert sum(w["dej_um"] for w in windows) / 1000 == pytest.approx(sn["dej_length_mm"],
                                                                       abs=1e-3)
    assert sum(w["n_crossings"] for w in windows) == len(cn)
    assert sn["dej_length_mm"] == pytest.approx(sw["dej_length_mm"], rel=0.05)
    assert abs(len(cn) - len(cw)) <= 1
    d2 = np.hypot(cn["y_um"].to_numpy()[:, None] - cn["y_um"].to_numpy()[None],
                  cn["x_um"].to_numpy()[:, None] - cn["x_um"].to_numpy()[None])
    np.fill_diagonal(d2, np.inf)
    assert d2.min() > 3.0  # no crossing counted twice (merge distance)
