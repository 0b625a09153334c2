import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from histo_fms.drg import TABLE_COLUMNS, DrgParams, measure_drg, measure_neurons, size_class
from histo_fms.synthetic.drg import make_drg_section, match_neurons

PX = 0.5


def _run(ph, **kw):
    return measure_drg(ph.channel("NeuN"), ph.channel("IgG"), pixel_size_um=ph.pixel_size_um,
                       sgc=ph.channel("GS"), nuclei=ph.channel("DAPI"), **kw)


@pytest.fixture(scope="module")
def control():
    return make_drg_section((320, 320), PX, seed=31, control=True)


@pytest.fixture(scope="module")
def control_result(control):
    return _run(control)


def test_result_structure(control, control_result):
    r = control_result
    assert r.neurons.dtype == np.int32 and r.rings.dtype == np.int32
    assert list(r.table.columns) == TABLE_COLUMNS
    assert len(r.table) == len(np.unique(r.neurons)) - 1
    assert not np.any((r.rings > 0) & (r.neurons > 0))
    assert set(r.table["size_class"]) <= {"small", "medium", "large"}
    ok = r.table.dropna(subset=["ring_igg"])
    assert len(ok) == len(r.table)
    # control rings sit near background level (the true ratio is 1.0 +- 0.08)
    inner = ok[~ok["touches_border"]]
    assert inner["ring_igg"].median() == pytest.approx(1.0, abs=0.1)
    assert inner["sgc_coverage"].median() > 0.8


@pytest.mark.parametrize("shape", [(64, 64), (5, 5), (1, 1), (3, 7)])
@pytest.mark.parametrize("value", [0, 1000])
def test_empty_constant_tiny_images(shape, value):
    img = np.full(shape, value, np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = measure_drg(img, img, pixel_size_um=PX, sgc=img, nuclei=img)
    assert r.neurons.shape == shape and r.neurons.max() == 0
    assert len(r.table) == 0
    assert list(r.table.columns) == TABLE_COLUMNS


def test_given_labels_are_used(control):
    labels = control.labels.copy()
    labels[labels == 3] = 500  # non-contiguous ids are fine
    r = _run(control, labels=labels)
    np.testing.assert_array_equal(r.neurons, labels)
    assert set(r.table["neuron_id"]) == set(np.unique(labels)) - {0}
    np.testing.assert_allclose(r.table.sort_values("neuron_id")["area_um2"].to_numpy()[:2],
                               control.truth["area_um2"].to_numpy()[:2])


def test_without_sgc_channel(control):
    r = measure_drg(control.channel("NeuN"), control.channel("IgG"), pixel_size_um=PX)
    assert r.table["sgc_coverage"].isna().all()
    assert r.table["ring_igg"].notna().all()


def test_restrict_ring_to_sgc(control, control_result):
    labels = control_result.neurons
    full = _run(control, params=DrgParams(sheath_fraction=0), labels=labels)
    full = full.table.set_index("neuron_id")["ring_area_um2"]
    r = _run(control, params=DrgParams(restrict_ring_to_sgc=True, sheath_fraction=0),
             labels=labels)
    restricted = r.table.set_index("neuron_id")["ring_area_um2"]
    assert (restricted <= full + 1e-9).all() and (restricted < full).mean() > 0.5
    # the default measures the sheath proper: part of the annulus, never more
    sheath = control_result.table.set_index("neuron_id")["ring_area_um2"]
    assert (sheath <= full + 1e-9).all() and (sheath < full).mean() > 0.5


def test_vignetting_invariance():
    flat = make_drg_section((320, 320), PX, seed=41, vignetting_strength=0.0)
    vig = make_drg_section((320, 320), PX, seed=41, vignetting_strength=0.6)
    np.testing.assert_array_equal(flat.labels, vig.labels)
    assert vig.illumination.min() < 0.5
    a, b = _run(flat), _run(vig)
    m = match_neurons(a.table, b.table, a.neurons, pixel_size_um=PX, tolerance_um=3)
    assert len(m) >= 0.95 * len(a.table)
    ta = a.table.set_index("neuron_id").loc[m["truth_id"]]
    tb = b.table.set_index("neuron_id").loc[m["detected_id"]]
    inner = ~ta["touches_border"].to_numpy()
    ra, rb = ta["ring_igg"].to_numpy()[inner], tb["ring_igg"].to_numpy()[inner]
    rel = np.abs(rb / ra - 1)
    assert np.median(rel) < 0.05
    assert np.percentile(rel, 90) < 0.15
    assert np.corrcoef(ra, rb)[0, 1] > 0.95


def test_lipofuscin_on_negative_ring_does_not_flip_it(control, control_result):
    t = control_result.table
    inner = t[~t["touches_border"] & (t["area_um2"] > 150)]
    threshold = float(np.percentile(inner["ring_igg"], 99))
    # pick a negative neuron and put a 2 µm granule on its ring
    nid = int(inner.iloc[len(inner) // 2]["neuron_id"])
    rings = control_result.rings
    ys, xs = np.nonzero(rings == nid)
    k = len(ys) // 3
    cy, cx = ys[k], xs[k]
    img = control.image.astype(np.float32).copy()
    yy, xx = np.mgrid[: img.shape[1], : img.shape[2]]
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < (1.0 / PX) ** 2).astype(np.float32)
    disc = ndi.gaussian_filter(disc, 0.6)
    for c, amp in enumerate([6000, 4000, 15000, 6000]):
        img[c] += amp * disc
    img = np.clip(img, 0, 65535).astype(np.uint16)
    ph = type(control)(**{**control.__dict__, "image": img})

    before = t.set_index("neuron_id").loc[nid, "ring_igg"]
    after_tab = _run(ph, labels=control_result.neurons).table.set_index("neuron_id")
    after = after_tab.loc[nid, "ring_igg"]
    assert after == pytest.approx(before, abs=0.05)
    assert after < max(threshold, 1.15)
    # without lipofuscin rejection the granule does raise the ring's mean; the median is
    # not moved by a speck on part of the ring either (the default 10-90 % trimmed mean
    # is, where the speck covers more than a tenth of a small ring's sheath pixels)
    raw = _run(ph, labels=control_result.neurons,
               params=DrgParams(reject_lipofuscin=False, ring_statistic="mean"))
    assert raw.table.set_index("neuron_id").loc[nid, "ring_igg"] > before + 0.1
    med = _run(ph, labels=control_result.neurons,
               params=DrgParams(reject_lipofuscin=False, ring_statistic="median"))
    assert med.table.set_index("neuron_id").loc[nid, "ring_igg"] < max(threshold, 1.15)


def test_measure_neurons_units_and_classes():
    labels = np.zeros((100, 100), np.int32)
    yy, xx = np.mgrid[:100, :100]
    labels[(yy - 50) ** 2 + (xx - 40) ** 2 < 20**2] = 7
    labels[0:10, 90:100] = 2
    t = measure_neurons(labels, pixel_size_um=0.5).set_index("neuron_id")
    assert t.loc[7, "y_um"] == pytest.approx(25.0, abs=0.01)
    assert t.loc[7, "x_um"] == pytest.approx(20.0, abs=0.01)
    assert t.loc[7, "diameter_um"] == pytest.approx(20.0, rel=0.02)
    assert t.loc[7, "size_class"] == "small"
    assert not t.loc[7, "touches_border"] and t.loc[2, "touches_border"]
    assert list(size_class(np.array([10, 25, 30, 35, 36]))) == [
        "small", "medium", "medium", "medium", "large"]
    assert list(size_class(np.array([10, 25]), (12.0, 20.0))) == ["small", "large"]


def test_params_from_mapping_and_validation():
    p = DrgParams(**{"ring_width_um": 3.0, "size_class_bounds_um": [20, 30],
                     "segmentation_options": {"threshold": 0.1}})
    assert p.size_class_bounds_um == (20.0, 30.0)
    assert p.segmentation_options == {"threshold": 0.1}
    with pytest.raises(ValueError):
        DrgParams(ring_width_um=0)
    with pytest.raises(ValueError):
        DrgParams(size_class_bounds_um=(35, 25))
    with pytest.raises(TypeError):
        DrgParams(not_a_key=1)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        measure_drg(np.zeros((10, 10)), np.zeros((10, 11)), pixel_size_um=PX)
    with pytest.raises(ValueError):
        measure_drg(np.zeros((10, 10)), np.zeros((10, 10)), pixel_size_um=0)


def test_table_is_dataframe_with_types(control_result):
    t = control_result.table
    assert isinstance(t, pd.DataFrame)
    assert t["neuron_id"].dtype == np.int64
    assert t["touches_border"].dtype == bool


def test_dark_levels_and_lipofuscin_can_be_given(control, control_result):
    r = _run(control, labels=control_result.neurons, dark_levels=control_result.dark_levels,
             lipofuscin=control_result.lipofuscin)
    pd.testing.assert_frame_equal(r.table, control_result.table)
    # the known camera offset gives nearly the same ratios as the estimate
    known = {k: control.dark_level for k in ("neuron", "igg", "sgc", "nuclei")}
    r2 = _run(control, labels=control_result.neurons, dark_levels=known)
    np.testing.assert_allclose(r2.table["ring_igg"], control_result.table["ring_igg"], atol=0.05)
    with pytest.raises(ValueError):
        _run(control, dark_levels={"bogus": 1.0})


def test_ring_igg_ranks_rings_by_their_igg_with_bright_neurons():
    """Neurons with their own (cytoplasmic) IgG and thin or thick sheaths: ring_igg must
    rank rings by the IgG on them. The annulus mean with a plain background (the former
    measurement) is diluted by thin sheaths and lit by the neuron's glow."""
    from scipy.stats import spearmanr

    new, old = [], []
    for seed in (61, 62, 63, 64):
        ph = make_drg_section((448, 448), PX, seed=seed, positive_fraction=0.5,
                              neuron_igg_range=(1.0, 4.0))
        truth = ph.truth.set_index("neuron_id")
        for params, out in ((DrgParams(), new),
                            (DrgParams(sheath_fraction=0, glow_correction=False), old)):
            t = _run(ph, labels=ph.labels, params=params).table.set_index("neuron_id")
            t = t[~t["touches_border"]]
            out.append(spearmanr(t["ring_igg"], truth.loc[t.index, "ring_igg_true"]).statistic)
    assert np.mean(new) >= 0.85
    assert np.mean(new) >= np.mean(old) + 0.04
    assert min(new) >= 0.8


def test_phantom_control_bound_fraction_and_neuron_igg():
    ph = make_drg_section((320, 320), PX, seed=31, control=True, control_bound_fraction=0.3)
    base = make_drg_section((320, 320), PX, seed=31, control=True)
    assert 0 < ph.truth["igg_positive"].mean() < 0.6 and not base.truth["igg_positive"].any()
    np.testing.assert_array_equal(ph.labels, base.labels)
    lit = make_drg_section((320, 320), PX, seed=31, neuron_igg_range=(3.0, 4.0))
    inside = lit.labels > 0
    assert lit.channel("IgG")[inside].mean() > 2 * base.channel("IgG")[inside].mean()


def _vessel_onto_ring(ph, result, nid, amplitude, angle):
    """``ph`` with an IgG-bright, SGC-negative vessel 3 µm wide running from the tissue
    across neuron ``nid``'s sheath up to its outline (SGC-positive where it overlaps
    the sheath), in direction ``angle`` from the neuron's centre."""
    lab = result.neurons == nid
    cy, cx = (float(v.mean()) for v in np.nonzero(lab))
    radius = np.sqrt(lab.sum() / np.pi)
    yy, xx = np.mgrid[: lab.shape[0], : lab.shape[1]]
    along = (yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle)
    across = -(yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)
    tube = (np.abs(across) < 1.5 / PX) & (along > 0) & (along < radius + 15 / PX)
    tube &= result.neurons == 0
    blur = ndi.gaussian_filter(tube.astype(np.float32), 0.6)
    img = ph.image.astype(np.float32).copy()
    img[ph.channel_names.index("IgG")] += amplitude * blur
    img = np.clip(img, 0, 65535).astype(np.uint16)
    return type(ph)(**{**ph.__dict__, "image": img}), tube


def test_vessel_onto_a_negative_ring_does_not_flip_it(control, control_result):
    """A vessel running onto the ring is SGC-positive where it overlaps the sheath; the
    part connected to its SGC-negative length is left out, and the trimmed statistic
    is not moved by what is left (found on the independent phantoms, issue 12). (A
    vessel lying along the sheath for much more than ``vessel_reach_um`` is not caught.)"""
    t = control_result.table
    inner = t[~t["touches_border"] & (t["area_um2"] > 150)]
    igg = control.channel("IgG").astype(float)
    tissue = float(np.median(igg[(control_result.neurons == 0) & (control_result.rings == 0)]))
    dark = control_result.dark_levels["igg"]
    flipped_before = 0
    for k, nid in enumerate(inner["neuron_id"].to_numpy()[::3][:4]):
        ph, tube = _vessel_onto_ring(control, control_result, int(nid), 8 * (tissue - dark),
                                     angle=k * np.pi / 2)
        assert (tube & (control_result.rings == nid)).sum() >= 10  # it does lie on the ring
        before = t.set_index("neuron_id").loc[nid, "ring_igg"]
        new = _run(ph, labels=control_result.neurons).table.set_index("neuron_id")
        assert new.loc[nid, "ring_igg"] == pytest.approx(before, abs=0.15)
        old = _run(ph, labels=control_result.neurons,
                   params=DrgParams(vessel_reach_um=0, ring_statistic="mean")).table
        flipped_before += old.set_index("neuron_id").loc[nid, "ring_igg"] > before + 0.3
    assert flipped_before >= 2  # the former measurement takes the vessel for ring IgG


def test_ring_statistic_and_illumination_options(control, control_result):
    t = control_result.table.set_index("neuron_id")
    for kw in ({"ring_statistic": "median"}, {"ring_statistic": "mean"},
               {"illumination_sigma_um": 0}, {"illumination_sigma_um": 40.0}):
        r = _run(control, labels=control_result.neurons, params=DrgParams(**kw)).table
        r = r.set_index("neuron_id")
        inner = ~r["touches_border"]
        # every variant measures control rings near 1 and close to the default
        assert r.loc[inner, "ring_igg"].median() == pytest.approx(1.0, abs=0.1)
        assert np.nanmedian(np.abs(r["ring_igg"] - t["ring_igg"])) < 0.05
    with pytest.raises(ValueError, match="ring_statistic"):
        DrgParams(ring_statistic="mode")
    with pytest.raises(ValueError, match="illumination_sigma_um"):
        DrgParams(illumination_sigma_um=-1)
    with pytest.raises(ValueError, match="vessel_reach_um"):
        DrgParams(vessel_reach_um=-1)


def test_ring_igg_follows_illumination_not_local_texture():
    """Vignetting (large-scale, multiplicative) cancels in ring_igg: a bound ring in a
    dim corner of a strongly vignetted section measures like the same ring unvignetted."""
    from histo_fms.synthetic.drg import make_drg_section as mk
    flat = mk((320, 320), PX, seed=33, positive_fraction=0.5, vignetting_strength=0.0)
    vig = mk((320, 320), PX, seed=33, positive_fraction=0.5, vignetting_strength=0.5)
    a = _run(flat, labels=flat.labels).table.set_index("neuron_id")
    b = _run(vig, labels=vig.labels).table.set_index("neuron_id")
    inner = ~a["touches_border"]
    rel = (b.loc[inner, "ring_igg"] - a.loc[inner, "ring_igg"]).abs() / a.loc[inner, "ring_igg"]
    assert float(np.median(rel)) < 0.05
