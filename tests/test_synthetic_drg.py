import numpy as np
import pandas as pd
import pytest

from histo_fms.synthetic.drg import REAL_TISSUE, make_drg_section, roc_auc


@pytest.fixture(scope="module")
def phantom():
    return make_drg_section((384, 384), 0.5, seed=11)


def test_shapes_and_types(phantom):
    assert phantom.image.shape == (4, 384, 384)
    assert phantom.image.dtype == np.uint16
    assert phantom.channel_names == ["NeuN", "GS", "IgG", "DAPI"]
    assert phantom.labels.dtype == np.int32
    assert phantom.labels.shape == (384, 384)
    cols = {"neuron_id", "y_um", "x_um", "area_um2", "diameter_um", "touches_border",
            "igg_positive", "ring_igg_true"}
    assert cols <= set(phantom.truth.columns)
    assert phantom.truth["igg_positive"].dtype == bool


def test_truth_matches_labels(phantom):
    t = phantom.truth
    ids = np.unique(phantom.labels)
    assert list(ids[1:]) == list(t["neuron_id"])
    counts = np.bincount(phantom.labels.ravel())[1:]
    np.testing.assert_allclose(t["area_um2"], counts * 0.25)
    # centroids in µm from the top-left pixel centre
    yy, xx = np.nonzero(phantom.labels == 1)
    assert t["y_um"].iloc[0] == pytest.approx(yy.mean() * 0.5)
    assert t["x_um"].iloc[0] == pytest.approx(xx.mean() * 0.5)
    border = set(np.unique(np.concatenate([phantom.labels[0], phantom.labels[-1],
                                           phantom.labels[:, 0], phantom.labels[:, -1]])))
    border.discard(0)
    assert set(t.loc[t["touches_border"], "neuron_id"]) == border


def test_ring_truth_ranges(phantom):
    t = phantom.truth.dropna(subset=["ring_igg_true"])
    pos, neg = t[t["igg_positive"]], t[~t["igg_positive"]]
    assert len(pos) > 5 and len(neg) > 5
    assert pos["ring_igg_true"].between(1.4, 5.2).all()
    assert neg["ring_igg_true"].between(0.85, 1.15).all()


def test_realism_features(phantom):
    t = phantom.truth
    assert t["touches_border"].any()
    assert t["dim"].any()
    inner = t[~t["touches_border"]]
    assert inner["diameter_um"].max() > 30 and inner["diameter_um"].min() < 25
    assert phantom.lipofuscin.any()
    assert phantom.illumination.min() < 0.75
    # sheaths never overlap neurons
    assert not np.any((phantom.sheaths > 0) & (phantom.labels > 0))


def test_control_and_determinism():
    a = make_drg_section((192, 192), seed=5, control=True)
    b = make_drg_section((192, 192), seed=5, control=True)
    np.testing.assert_array_equal(a.image, b.image)
    assert not a.truth["igg_positive"].any()
    assert a.control


def test_pixel_size_scales_geometry():
    a = make_drg_section((256, 256), 0.5, seed=3)
    b = make_drg_section((427, 427), 0.3, seed=3)
    # same physical field -> similar neuron sizes in µm
    assert a.truth["diameter_um"].median() == pytest.approx(b.truth["diameter_um"].median(),
                                                          rel=0.35)


def test_roc_auc():
    assert roc_auc([2, 3], [0, 1]) == 1.0
    assert roc_auc([1], [1]) == 0.5
    assert np.isnan(roc_auc([], [1]))


def test_axon_field_fills_interstitium_without_changing_truth():
    bare = make_drg_section((256, 256), 0.5, seed=4)
    real = make_drg_section((256, 256), 0.5, seed=4, axon_density=1.0,
                            nucleus_contrast=(0.15, 1.0))
    np.testing.assert_array_equal(bare.labels, real.labels)  # same neurons
    pd.testing.assert_frame_equal(bare.truth, real.truth)
    between = (real.labels == 0) & (real.sheaths == 0)
    soma = real.labels > 0
    neun_b = bare.channel("NeuN").astype(float) - bare.dark_level
    neun_r = real.channel("NeuN").astype(float) - real.dark_level
    level = np.median(neun_r[soma])
    # puncta and fibre bundles: the interstitium is bright in many places
    assert np.percentile(neun_r[between], 90) > 0.3 * level
    assert np.percentile(neun_b[between], 90) < 0.15 * level


def test_nerve_root_and_slide_with_debris():
    ph = make_drg_section((384, 384), 0.5, seed=8, **{**REAL_TISSUE, "outside_fraction": 0.2})
    ref = make_drg_section((384, 384), 0.5, seed=8)
    assert len(ph.truth) < len(ref.truth)  # no somata in the root or on the slide
    neun = ph.channel("NeuN").astype(float) - ph.dark_level
    bands = [neun[:20], neun[-20:], neun[:, :20], neun[:, -20:]]
    labs = [ph.labels[:20], ph.labels[-20:], ph.labels[:, :20], ph.labels[:, -20:]]
    level = np.median(neun[ph.labels > 0])
    slide = int(np.argmin([np.median(b) for b in bands]))
    assert np.median(bands[slide]) < 0.02 * level  # empty slide ...
    assert bands[slide].max() > 0.2 * level  # ... with bright debris
    assert not labs[slide].any()


def test_pressed_pairs_are_convex_with_a_faint_sheath_between():
    from skimage.morphology import convex_hull_image

    ph = make_drg_section((320, 320), 0.5, seed=4, pressed_fraction=0.6)
    lab, gs = ph.labels, ph.channel("GS").astype(float) - ph.dark_level
    # neighbour pairs sharing a long interface
    a, b = lab[:, :-1], lab[:, 1:]
    sel = (a != b) & (a > 0) & (b > 0)
    pairs, count = np.unique(np.stack([np.minimum(a[sel], b[sel]),
                                       np.maximum(a[sel], b[sel])]), axis=1, return_counts=True)
    convex = 0
    for (i, j), c in zip(pairs.T, count, strict=True):
        both = (lab == i) | (lab == j)
        if c < 10 or ph.truth.loc[[i - 1, j - 1], "touches_border"].any():
            continue
        ys, xs = np.nonzero(both)
        m = both[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        convex += m.sum() / convex_hull_image(m).sum() > 0.95
    assert convex >= 2  # unions with no neck at their waist
    sheath = np.median(gs[ph.sheaths > 0])
    inside = np.median(gs[lab > 0])
    line = np.zeros(lab.shape, bool)
    line[:, :-1] |= sel
    line = line & (lab > 0)
    assert inside < np.median(gs[line]) < 0.75 * sheath  # a faint line, not a sheath
