import numpy as np
import pytest

from histo_fms.synthetic.drg import make_drg_section, roc_auc


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
