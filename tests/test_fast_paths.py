"""Fast implementations pinned against the straightforward ones they replace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from histo_fms._numerics._background import upsample_linear
from histo_fms._numerics._quantiles import label_quantiles
from histo_fms.drg._lipofuscin import _floor, _opening_size, _spots_at, lipofuscin_flat
from histo_fms.segment._classical import _watershed_clusters
from histo_fms.synthetic.drg import make_drg_section


@pytest.fixture(scope="module")
def phantom():
    return make_drg_section((384, 384), 0.5, seed=7)


def test_label_quantiles_equal_scipy_median_and_numpy():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(120, 90)).astype(np.float32)
    lab = rng.integers(0, 30, size=v.shape)
    lab[lab == 17] = 0  # an empty label
    med = label_quantiles(v, lab, 0.5, 31)
    ids = np.arange(1, 30)
    ref = np.asarray(ndi.median(v, lab, ids), float)
    present = np.isin(ids, lab)
    np.testing.assert_allclose(med[1:30][present], ref[present], rtol=0, atol=1e-6)
    assert np.isnan(med[17]) and np.isnan(med[0]) and np.isnan(med[30:]).all()
    q90 = label_quantiles(v, lab, 0.9)
    for i in (1, 5, 29):
        assert q90[i] == pytest.approx(np.quantile(v[lab == i].astype(float), 0.9), abs=1e-6)


@pytest.mark.parametrize("f, shape", [(8, (200, 240)), (8, (197, 233)), (4, (64, 64))])
def test_upsample_linear_equals_scipy_zoom(f, shape):
    rng = np.random.default_rng(f)
    small = rng.random((-(-shape[0] // f), -(-shape[1] // f))).astype(np.float32)
    ref = ndi.zoom(small, f, order=1, grid_mode=True, mode="nearest")[:shape[0], :shape[1]]
    got = upsample_linear(small, f, shape)
    assert got.shape == shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-6)


def _clusters(labels):
    from skimage.morphology import local_maxima

    mask = ndi.binary_dilation(labels > 0, iterations=2)  # touching neurons -> clusters
    cc, n = ndi.label(mask)
    dist = ndi.distance_transform_edt(mask)
    q = np.round(ndi.gaussian_filter(dist, 1.0) * 20).astype(np.int32)
    markers, _ = ndi.label(local_maxima(q, connectivity=2, allow_borders=True) & mask,
                           structure=np.ones((3, 3), bool))
    return q, markers, cc, n


def test_watershed_per_cluster_is_local_and_a_watershed(phantom):
    q, markers, cc, n = _clusters(phantom.labels)
    assert np.bincount(cc[markers > 0]).max() > 1  # some clusters hold several markers
    got = _watershed_clusters(q, markers, cc, n)
    # a watershed of the same markers: skimage's whole-image flooding differs only in
    # how it breaks exact ties (its heap order depends on every other cluster)
    ref = watershed(-q, markers, mask=cc > 0)
    assert ((got > 0) == (cc > 0)).all()
    assert (got == ref).mean() > 0.99
    for k in np.unique(markers[markers > 0]):  # every marker keeps its pixels
        assert (got[markers == k] == k).all()
    # each cluster's result depends on that cluster only: a crop gives the same
    y0, x0 = 97, 131
    crop = (slice(y0, None), slice(x0, None))
    q2, m2, cc2 = q[crop], markers[crop], cc[crop]
    inner = np.unique(cc2[cc2 > 0])
    slices = ndi.find_objects(cc)
    whole_inside = [k for k in inner if slices[k - 1][0].start >= y0
                    and slices[k - 1][1].start >= x0]
    cc2b, n2 = ndi.label(cc2 > 0)
    got2 = _watershed_clusters(q2, m2, cc2b, n2)
    sel = np.isin(cc2, whole_inside)
    assert sel.sum() > 1000
    np.testing.assert_array_equal(got2[sel], got[crop][sel])


def test_spot_test_restricted_to_pixels_equals_whole_image(phantom):
    c = phantom.channel("GS")
    kw = dict(dark_level=float(phantom.dark_level), median=150.0, maximum=4000.0,
              pixel_size_um=0.5)
    flat, whole, _ = lipofuscin_flat(c, **kw)
    rng = np.random.default_rng(3)
    where = np.zeros(c.shape, bool)
    where[rng.integers(0, 384, 400), rng.integers(0, 384, 400)] = True
    where[:4] = True  # image edge
    where[200:260, 100:110] = True  # a block (crops of neighbouring clusters overlap)
    where |= whole & (rng.random(c.shape) < 0.5)
    part = _spots_at(c, kw["dark_level"], where, _opening_size(20.0, 0.5),
                     _floor(kw["median"], kw["maximum"]), kw["median"], 1.5)
    assert (whole & where).sum() > 50
    np.testing.assert_array_equal(part, whole & where)
    flat2, none, _ = lipofuscin_flat(c, spots=False, **kw)
    np.testing.assert_array_equal(flat2, flat)
    assert none is None


def test_distance_helpers_equal_scipy_edt():
    from histo_fms._numerics._local import distance_float32, nearest_feature, squared_distance

    rng = np.random.default_rng(1)
    bg = rng.random((130, 170)) > 0.003
    ref, (iy, ix) = ndi.distance_transform_edt(bg, return_indices=True)
    ft = nearest_feature(bg)
    np.testing.assert_array_equal(ft[0], iy)
    np.testing.assert_array_equal(ft[1], ix)
    np.testing.assert_array_equal(squared_distance(ft, rows=7), np.round(ref**2).astype(int))
    np.testing.assert_allclose(distance_float32(bg), ref, rtol=1e-6)


def test_inpaint_in_crops_equals_whole_image(phantom):
    from histo_fms.segment._classical import _inpaint

    img = phantom.channel("NeuN").astype(np.float32)
    rng = np.random.default_rng(2)
    mask = np.zeros(img.shape, bool)
    mask[rng.integers(0, 384, 60), rng.integers(0, 384, 60)] = True
    mask = ndi.binary_dilation(mask, iterations=2)
    mask[:2, :50] = True
    sigma = 4.0
    w = (~mask).astype(np.float32)
    num, den = ndi.gaussian_filter(img * w, sigma), ndi.gaussian_filter(w, sigma)
    ref = img.copy()
    ref[mask] = np.where(den[mask] > 1e-3, num[mask] / np.maximum(den[mask], 1e-3), 0.0)
    np.testing.assert_array_equal(_inpaint(img, mask, sigma), ref)
