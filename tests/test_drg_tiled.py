"""Tiled DRG measurement equals the untiled run: same neurons, ids, labels and table."""

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from histo_fms._numerics._quantiles import exact_quantiles
from histo_fms.drg import DrgContext, DrgParams, compute_context, measure_drg, required_margin_px
from histo_fms.drg._context import alignment_px
from histo_fms.io import read_labels_scale, read_labels_zarr
from histo_fms.parallel import compute_context_tiled, measure_drg_tiled
from histo_fms.parallel._drg_tiled import _clusters_ok
from histo_fms.parallel._tiles import Tile, first_pixels
from histo_fms.synthetic.drg import make_drg_section

PX = 0.5
ROLE_NAMES = {"neuron": "NeuN", "igg": "IgG", "sgc": "GS", "nuclei": "DAPI"}
# below the conservative rule (required_margin_px) but enough on these phantoms: tiles
# are real crops of the section, so the test exercises locality, not whole-image tiles
CROP_MARGIN = 320


@pytest.fixture(scope="module")
def phantom():
    return make_drg_section((768, 768), PX, seed=5)


@pytest.fixture(scope="module")
def channels(phantom):
    return {k: phantom.channel(v) for k, v in ROLE_NAMES.items()}


@pytest.fixture(scope="module")
def untiled(channels):
    c = channels
    return measure_drg(c["neuron"], c["igg"], pixel_size_um=PX, sgc=c["sgc"],
                       nuclei=c["nuclei"])


def _lazy(channels, chunk=200):
    return {k: da.from_array(v, chunks=chunk) for k, v in channels.items()}


def _assert_same(table, path, untiled):
    labels = read_labels_zarr(path)
    np.testing.assert_array_equal(labels["neurons"], untiled.neurons)
    np.testing.assert_array_equal(labels["rings"], untiled.rings)
    assert read_labels_scale(path) == PX
    pd.testing.assert_frame_equal(table, untiled.table, rtol=1e-6)


def test_untiled_ids_are_canonical(untiled):
    ids, first = first_pixels(untiled.neurons)
    np.testing.assert_array_equal(ids, np.arange(1, ids.size + 1))
    assert np.all(np.diff(first) > 0)
    np.testing.assert_array_equal(untiled.table["neuron_id"], ids)


def test_context_tiled_equals_numpy(channels):
    p = DrgParams()
    ctx = compute_context(channels, pixel_size_um=PX, params=p)
    tiled = compute_context_tiled(_lazy(channels, 150), pixel_size_um=PX, params=p,
                                  tile_px=128, scheduler="synchronous")
    assert isinstance(tiled, DrgContext)
    assert tiled == ctx  # bit-identical, not just close
    assert set(ctx.lipofuscin_thresholds) == set(ROLE_NAMES)
    assert 0 < ctx.dark_levels["igg"] < 1000 and ctx.neuron_spread > 0
    # two channels, given dark levels, no lipofuscin rejection
    two = {k: channels[k] for k in ("neuron", "igg")}
    p2 = DrgParams(reject_lipofuscin=False)
    known = {"neuron": 100.0, "igg": 99.5}
    a = compute_context(two, pixel_size_um=PX, params=p2, dark_levels=known)
    b = compute_context_tiled(two, pixel_size_um=PX, params=p2, dark_levels=known, tile_px=256,
                              scheduler="synchronous")
    assert a == b and a.dark_levels == known and not a.lipofuscin_thresholds


def test_context_reads_the_section_twice(channels, monkeypatch):
    import histo_fms.parallel._drg_tiled as mod

    calls = []
    real = mod._compute

    def counting(tasks, client, scheduler):
        calls.append(len(tasks))
        return real(tasks, client, scheduler)

    monkeypatch.setattr(mod, "_compute", counting)
    lazy = _lazy(channels, 150)
    compute_context_tiled(lazy, pixel_size_um=PX, tile_px=256, scheduler="synchronous")
    assert calls == [1, 1]  # one tree-summed pass per dependent stage
    calls.clear()
    compute_context_tiled(lazy, pixel_size_um=PX, params=DrgParams(reject_lipofuscin=False),
                          tile_px=256, scheduler="synchronous")
    assert calls == [1]


def test_context_uses_quantised_quantiles_everywhere(channels):
    """The context, and the numpy fallbacks that compute the same values, agree."""
    from histo_fms._numerics._background import estimate_dark_level, smooth_for_stats
    from histo_fms._numerics._quantiles import quantise, quantised_quantiles
    from histo_fms.drg import detect_lipofuscin
    from histo_fms.segment import segment_classical

    p = DrgParams()
    ctx = compute_context(channels, pixel_size_um=PX, params=p)
    for role, img in channels.items():
        g = smooth_for_stats(img)
        dark, med, hi = quantised_quantiles(g, [0.001, 0.5, 0.995])
        assert ctx.dark_levels[role] == dark == estimate_dark_level(img)
        assert float(quantise(np.float32(dark))) == dark  # a quantised value
        assert ctx.medians[role] == med - dark
        assert ctx.maxima[role] == float(g.max()) - dark  # exact maximum
        if role == "neuron":
            assert ctx.neuron_spread == hi - med
    roles = list(ctx.lipofuscin_thresholds)
    kw = dict(pixel_size_um=PX, min_contrast=p.lipofuscin_min_contrast,
              quantile=p.lipofuscin_quantile, max_area_um2=p.lipofuscin_max_area_um2,
              dilate_um=p.lipofuscin_dilate_um)
    given = detect_lipofuscin([channels[r] for r in roles],
                              dark_levels=[ctx.dark_levels[r] for r in roles],
                              medians=[ctx.medians[r] for r in roles],
                              maxima=[ctx.maxima[r] for r in roles],
                              thresholds=[ctx.lipofuscin_thresholds[r] for r in roles], **kw)
    fallback = detect_lipofuscin([channels[r] for r in roles], **kw)
    np.testing.assert_array_equal(given, fallback)
    small = channels["neuron"][:256, :256]
    spread = quantised_quantiles(smooth_for_stats(small), [0.995])[0] - quantised_quantiles(
        smooth_for_stats(small), [0.5])[0]
    np.testing.assert_array_equal(segment_classical(small, pixel_size_um=PX),
                                  segment_classical(small, pixel_size_um=PX, spread=spread))


def test_exact_quantiles_match_numpy():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(size=5000), np.zeros(50), -np.zeros(50), [np.inf]])
    v = v.astype(np.float32)
    qs = [0.0, 0.005, 0.5, 0.98, 0.995, 1.0]
    np.testing.assert_allclose(exact_quantiles(v[:-1], qs), np.quantile(v[:-1], qs), rtol=1e-6)
    assert exact_quantiles(v, [1.0]) == [np.inf]


def test_tiled_equals_untiled_on_crops(channels, untiled, tmp_path):
    path = tmp_path / "labels.zarr"
    seen = []
    table = measure_drg_tiled(_lazy(channels), pixel_size_um=PX, tile_px=256,
                              margin_px=CROP_MARGIN, check_margin=False, labels_path=path,
                              scheduler="threads", progress=lambda *a: seen.append(a))
    _assert_same(table, path, untiled)
    assert ("tiles", 9, 9) in seen


def test_tiled_default_margin_and_rerun_overwrites(channels, untiled, tmp_path):
    path = tmp_path / "labels.zarr"
    (path / "stale").mkdir(parents=True)  # atomic: a run replaces what was there
    table = measure_drg_tiled(_lazy(channels), pixel_size_um=PX, tile_px=384,
                              labels_path=path, scheduler="synchronous")
    _assert_same(table, path, untiled)
    assert not (path / "stale").exists()
    assert not (path / "_provisional").exists()


def test_tiled_on_local_cluster(channels, untiled, tmp_path):
    distributed = pytest.importorskip("distributed")
    path = tmp_path / "labels.zarr"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        table = measure_drg_tiled(_lazy(channels), pixel_size_um=PX, tile_px=384,
                                  margin_px=CROP_MARGIN, check_margin=False, labels_path=path,
                                  client=client)
    _assert_same(table, path, untiled)


def test_margin_rule():
    p = DrgParams()
    m = required_margin_px(p, PX)
    assert m % alignment_px(p, PX) == 0
    # larger neurons, windows or rings need more margin; finer pixels need more pixels
    assert required_margin_px(DrgParams(max_diameter_um=80), PX) > m
    assert required_margin_px(DrgParams(background_reference_um=200), PX) > m
    assert required_margin_px(p, 0.25) > m
    # the rays of the sheath-enclosure candidates reach 2.2 x the largest soma radius
    # (plus 6 µm past the sheath): without them the margin is that much smaller
    no_rays = required_margin_px(DrgParams(segmentation_options={"sheath_rays": 0}), PX)
    assert no_rays < m - 2.2 * 30 / PX
    assert m * PX < 800  # µm: a tile of 2000 µm stays practical (one pass; two-pass less)


def test_cluster_check():
    shape = (400, 400)
    tile = Tile(0, (100, 200, 100, 200), (0, 300, 0, 300))
    labels = np.zeros((300, 300), np.int32)
    labels[140:160, 140:160] = 1
    assert _clusters_ok(None, labels, tile, shape, seg_r=20, region_r=30)
    # a cluster near the core reaching into the inexact band: run again with more margin
    fg = labels > 0
    fg[150:155, 150:295] = True
    assert not _clusters_ok(fg, labels, tile, shape, seg_r=20, region_r=30)
    # the core's neighbourhood itself must lie in the exact zone
    assert not _clusters_ok(None, labels, tile, shape, seg_r=20, region_r=90)


def test_missing_roles_and_bad_shapes(channels, tmp_path):
    with pytest.raises(ValueError, match="neuron"):
        measure_drg_tiled({"igg": channels["igg"]}, pixel_size_um=PX, tile_px=256,
                          labels_path=tmp_path / "x.zarr")
    with pytest.raises(ValueError, match="shape"):
        measure_drg_tiled({"neuron": channels["neuron"], "igg": channels["igg"][:100]},
                          pixel_size_um=PX, tile_px=256, labels_path=tmp_path / "x.zarr")


def test_empty_section(tmp_path):
    img = np.full((200, 200), 100, np.uint16)
    path = tmp_path / "labels.zarr"
    table = measure_drg_tiled({"neuron": img, "igg": img}, pixel_size_um=PX, tile_px=64,
                              labels_path=path, scheduler="synchronous")
    assert len(table) == 0 and list(table.columns) == list(measure_drg(
        img, img, pixel_size_um=PX).table.columns)
    assert not read_labels_zarr(path)["neurons"].any()


def test_two_pass_exact_tiles_are_real_crops(tmp_path):
    # margins of a few hundred px at 1 µm/px with smaller windows: the exact two-pass run
    # cuts a 512 px section into 3 x 3 real crops in both passes (segment: core + 280 px,
    # checked and rerun where a cluster reaches the inexact band; measure: core + 240 px,
    # with the section's labels), and still equals the untiled run bit for bit
    from histo_fms.drg._context import exact_tile_margins_px
    from histo_fms.parallel import _drg_tiled

    px = 1.0
    p = DrgParams(max_diameter_um=30, background_reference_um=50)
    seg_m, meas_m = exact_tile_margins_px(p, px)
    assert max(seg_m, meas_m) < 0.7 * required_margin_px(p, px)  # the one-pass margin
    ph = make_drg_section((512, 512), px, seed=5, packing=0.3, capsule=False,
                          touching_fraction=0.2)
    c = {k: ph.channel(v) for k, v in ROLE_NAMES.items()}
    untiled = measure_drg(c["neuron"], c["igg"], pixel_size_um=px, sgc=c["sgc"],
                          nuclei=c["nuclei"], params=p)
    assert len(untiled.table) > 50
    path = tmp_path / "labels.zarr"
    table = measure_drg_tiled(_lazy(c), pixel_size_um=px, params=p, tile_px=192,
                              labels_path=path, scheduler="synchronous")
    run = _drg_tiled.LAST_RUN
    assert run["margins"] == (seg_m, meas_m)
    for stage in ("segment", "tiles"):
        # some outer regions are smaller than the section
        assert run[stage]["outer_px"] < run[stage]["tasks"] * 512 * 512
    assert run["tiles"]["tasks"] == 9 and run["tiles"]["retried"] == 0
    labels = read_labels_zarr(path)
    np.testing.assert_array_equal(labels["neurons"], untiled.neurons)
    np.testing.assert_array_equal(labels["rings"], untiled.rings)
    pd.testing.assert_frame_equal(table, untiled.table, rtol=1e-6)
