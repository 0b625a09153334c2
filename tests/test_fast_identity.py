"""The fast segmentation kernels give bit-identical results (issue 17).

:mod:`histo_fms.segment._fast` and :mod:`histo_fms._numerics._morph` replace per-object
steps of the classical segmentation by faster ones. Each is compared here with the
reference it replaces (in :mod:`histo_fms.segment._objects` and scikit-image), on random
masks including degenerate ones, and the whole DRG measurement is run with the fast
kernels and with the references swapped back in: labels, rings and every table column
must be equal bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from histo_fms.drg import measure_drg
from histo_fms.segment import _classical, _fast, _levels, _objects
from histo_fms.synthetic.drg import REAL_TISSUE, make_drg_section


def _random_masks(seed: int, n: int, max_size: int = 70):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(1, max_size, 2))
        kind = rng.random()
        if kind < 0.15:  # a few scattered pixels
            m = np.zeros((h, w), bool)
            m[rng.integers(0, h, 3), rng.integers(0, w, 3)] = True
        elif kind < 0.2:
            m = np.ones((h, w), bool)
        elif kind < 0.25:  # one line
            m = np.zeros((h, w), bool)
            m[int(rng.integers(0, h))] = True
        else:
            m = (ndi.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 6))
                 > rng.uniform(0.35, 0.65))
        yield rng, m


def test_hull_pixel_count_equals_convex_hull_image():
    n = 0
    for _, m in _random_masks(0, 600):
        if m.any() and min(m.shape) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # degenerate hulls warn
                ref = int(convex_hull_image(m).sum())
            assert _fast.hull_pixel_count(m) == ref
            n += 1
    assert n > 400


@pytest.mark.parametrize("name", ["disc_opening", "disc_closing"])
def test_disc_morphology_equals_distance_transform_reference(name):
    ref, fast = getattr(_objects, name), getattr(_fast, name)
    radii = [0.5, 1.0, 1.5, 2.0, 2.9, 3.0, np.sqrt(8), 4.7, 5.5, 6.0, 7.3, 12.0]
    for rng, m in _random_masks(1, 300):
        r = float(rng.choice(radii))
        np.testing.assert_array_equal(fast(m, r), ref(m, r), err_msg=f"{m.shape} r={r}")


def test_open_fill_equals_opening_then_hole_filling():
    for rng, m in _random_masks(2, 300, max_size=90):
        r, hole = float(rng.choice([1.0, 2.0, 3.0, 4.5])), float(rng.choice([3, 30, 400]))
        ref = _objects.fill_small_holes(_objects.disc_opening(m, r), hole)
        np.testing.assert_array_equal(_fast.open_fill(m, r, hole), ref)


def test_level_openings_equal_opening_then_hole_filling_at_every_level():
    rng = np.random.default_rng(3)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(8, 90, 2))
        c = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(1, 5)).astype(np.float32)
        obj = c > np.quantile(c, rng.uniform(0.2, 0.6))
        c[rng.random((h, w)) < 0.01] = np.nan
        if rng.random() < 0.1:
            obj[:] = True  # fills its crop: no background
        r = float(rng.choice([0.5, 1.0, 2.0, 3.0, 4.5, 7.0]))
        hole = float(rng.choice([3, 30, 400]))
        opened = _fast.LevelOpenings(c, obj, r)
        for t in np.quantile(c[~np.isnan(c)], np.linspace(0, 0.95, 8)):
            ref = _objects.fill_small_holes(_objects.disc_opening(obj & (c > t), r), hole)
            np.testing.assert_array_equal(opened(t, hole), ref)


def _random_labels(seed: int, shape=(160, 160)):
    rng = np.random.default_rng(seed)
    m = ndi.gaussian_filter(rng.random(shape), 3) > 0.52
    lab, _ = ndi.label(m)
    return lab


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shape_measures_equal_reference_and_gates_only_skip(seed):
    lab = _random_labels(seed)
    assert lab.max() > 10
    ref = _slow_shape_measures(lab)
    for a, b in zip(_fast.shape_measures(lab), ref, strict=True):
        np.testing.assert_array_equal(a, b)
    gates = {"min_area": 30, "max_area": 400, "min_axis_ratio": 0.4, "min_solidity": 0.8}
    area, ratio, solid, rnd = _fast.shape_measures(lab, **gates)
    r_area, r_ratio, r_solid, r_rnd = ref
    np.testing.assert_array_equal(area, r_area)
    for got, want in ((ratio, r_ratio), (solid, r_solid), (rnd, r_rnd)):
        done = ~np.isnan(got)
        np.testing.assert_array_equal(got[done], want[done])
    # a measure is skipped only when an earlier limit already fails
    in_range = (r_area >= 30) & (r_area <= 400)
    assert not np.isnan(ratio[in_range]).any() and np.isnan(ratio[1:][~in_range[1:]]).all()
    assert (~np.isnan(solid) | ~in_range | (r_ratio < 0.4)).all()
    assert (~np.isnan(rnd) | ~in_range | (r_ratio < 0.4) | (r_solid < 0.8)).all()
    assert np.isnan(rnd).any() and (~np.isnan(rnd[1:])).any()


def _exact_cov(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Covariance (divisor n - 1) of integer coordinates: exact numerators (Python
    integers), one float division each; within rounding of ``np.cov``."""
    n = len(yy)
    y, x = [int(v) for v in yy], [int(v) for v in xx]
    sy, sx = sum(y), sum(x)
    syy = sum(v * v for v in y)
    sxx = sum(v * v for v in x)
    sxy = sum(a * b for a, b in zip(y, x, strict=True))
    d = float(n * (n - 1))
    cyy, cxy, cxx = (float(n * syy - sy * sy) / d, float(n * sxy - sy * sx) / d,
                     float(n * sxx - sx * sx) / d)
    return np.array([[cyy, cxy], [cxy, cxx]])


def test_exact_covariance_is_np_cov_to_rounding():
    for _, m in _random_masks(4, 60):
        yy, xx = np.nonzero(m)
        if yy.size >= 2:
            want = np.cov(np.stack([yy, xx]).astype(float))
            np.testing.assert_allclose(_exact_cov(yy, xx), want, rtol=1e-12, atol=1e-12)


# The reference (the one the library used before issue 17, with the covariance from
# exact integer moments): one convex hull and one distance-transform opening per
# object, every measure computed.
def _slow_shape_measures(labels: np.ndarray, round_fraction: float = 0.2
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Area (px), axis ratio, solidity and roundness of every label id.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    round_fraction : float
        Roundness is the fraction of an object left by a disc opening whose radius
        is this fraction of the object's equivalent diameter: close to 1 for a soma
        (disc or ellipse), low for branching fibres and ragged tissue pieces.

    Returns
    -------
    area, axis_ratio, solidity, roundness : ndarray, shape (n + 1,)
        Indexed by label id (entry 0 unused); axis ratio is minor / major axis,
        solidity area / convex hull area.
    """
    labels = np.asarray(labels)
    n = int(labels.max()) if labels.size else 0
    area = np.bincount(labels.ravel(), minlength=n + 1).astype(float)
    ratio = np.ones(n + 1)
    solid = np.ones(n + 1)
    rnd = np.ones(n + 1)
    if n == 0:
        return area, ratio, solid, rnd
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        m = labels[sl] == k
        yy, xx = np.nonzero(m)
        if yy.size < 3:
            continue
        cov = _exact_cov(yy, xx) + np.eye(2) / 12.0
        ev = np.linalg.eigvalsh(cov)
        ratio[k] = float(np.sqrt(max(ev[0], 1e-12) / max(ev[1], 1e-12)))
        if m.shape[0] >= 2 and m.shape[1] >= 2:
            hull = convex_hull_image(m)
            solid[k] = float(m.sum()) / max(float(hull.sum()), 1.0)
        rad = round_fraction * np.sqrt(4 * area[k] / np.pi)
        if rad >= 1:
            pm = np.pad(m, 1)
            rnd[k] = float(_objects.disc_opening(pm, rad).sum()) / max(float(m.sum()), 1.0)
    return area, ratio, solid, rnd


def _reference_shape_measures(labels, round_fraction=0.2, **_gates):
    return _slow_shape_measures(labels, round_fraction)


def _reference_piece_measures(labels, level, ids, mom, round_fraction=0.2, **_gates):
    """Every measure of every piece, one reference call per piece (in its box)."""
    stack = labels if labels.ndim == 3 else labels[None]
    out = np.ones((3, len(ids)))
    for j, (lv, k, (y0, y1, x0, x1)) in enumerate(
            zip(level.tolist(), ids.tolist(), mom[:, 1:5].tolist(), strict=True)):
        m = (stack[lv, y0:y1, x0:x1] == k).astype(np.int32)
        _, ratio, solid, rnd = _slow_shape_measures(m, round_fraction)
        out[:, j] = ratio[1], solid[1], rnd[1]
    return out[0], out[1], out[2]


class _ReferenceLevelOpenings:
    def __init__(self, contrast, obj, radius_px):
        self.c, self.obj, self.r = contrast, obj, radius_px

    def __call__(self, t, max_hole_px):
        m = _objects.disc_opening(self.obj & (self.c > t), self.r)
        return _objects.fill_small_holes(m, max_hole_px)

    def labels(self, levels, max_hole_px):
        labs = np.zeros((len(levels), *self.obj.shape), np.int32)
        counts = np.zeros(len(levels), np.int64)
        for i, t in enumerate(levels):
            labs[i], counts[i] = ndi.label(self(t, max_hole_px))
        return labs, counts


def _run(ph, px):
    c = {n: ph.channel(n) for n in ph.channel_names}
    return measure_drg(c["NeuN"], c["IgG"], sgc=c.get("GS"), nuclei=c.get("DAPI"),
                       pixel_size_um=px)


@pytest.mark.parametrize(("seed", "px"), [(5, 0.5), (8, 0.65)])
def test_drg_measurement_identical_with_reference_kernels(monkeypatch, seed, px):
    ph = make_drg_section((384, 384), px, seed=seed, **REAL_TISSUE)
    new = _run(ph, px)
    assert len(new.table) > 5
    monkeypatch.setattr(_levels, "piece_measures", _reference_piece_measures)
    monkeypatch.setattr(_levels, "LevelOpenings", _ReferenceLevelOpenings)
    monkeypatch.setattr(_classical, "shape_measures", _reference_shape_measures)
    monkeypatch.setattr(_classical, "disc_opening", _objects.disc_opening)
    monkeypatch.setattr(_classical, "disc_closing", _objects.disc_closing)
    ref = _run(ph, px)
    np.testing.assert_array_equal(new.neurons, ref.neurons)
    np.testing.assert_array_equal(new.rings, ref.rings)
    pd.testing.assert_frame_equal(new.table, ref.table, check_exact=True)


def test_within_depth_equals_distance_transform_threshold():
    from histo_fms._numerics._morph import within_depth
    for rng, m in _random_masks(4, 200, max_size=80):
        d = float(rng.choice([0.5, 1.0, np.sqrt(2), 2.0, 3.0, 4.6, 6.0, np.sqrt(50), 9.5]))
        ref = m & (ndi.distance_transform_edt(m) <= d)
        np.testing.assert_array_equal(within_depth(m, d), ref, err_msg=f"{m.shape} d={d}")


def _reference_close_objects(labels, radius_px, max_hole_px, relative=0.0):
    """close_objects as it was before issue 17 (reference disc closing, scipy labels)."""
    labels = np.asarray(labels, np.int32)
    out = labels.copy()
    h, w = labels.shape
    area = np.bincount(labels.ravel())
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        rad = max(float(radius_px), relative * np.sqrt(4 * area[k] / np.pi))
        pad = int(np.ceil(rad)) + 2
        y0, y1 = max(0, sl[0].start - pad), min(h, sl[0].stop + pad)
        x0, x1 = max(0, sl[1].start - pad), min(w, sl[1].stop + pad)
        sub = labels[y0:y1, x0:x1]
        m = sub == k
        closed = _objects.disc_closing(m, rad) if rad >= 1 else m
        bg, n = ndi.label(~closed)
        size = np.bincount(bg.ravel(), minlength=n + 1)
        fill = size <= max_hole_px
        fill[0] = False
        for edge in (bg[0], bg[-1], bg[:, 0], bg[:, -1]):
            fill[edge] = False
        add = (closed | fill[bg]) & ~m & (sub == 0) & (out[y0:y1, x0:x1] == 0)
        out[y0:y1, x0:x1][add] = k
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_close_objects_equals_reference(seed):
    lab = _random_labels(seed)
    rng = np.random.default_rng(seed)
    lab[rng.random(lab.shape) < 0.05] = 0  # holes
    for radius, hole, rel in ((0.5, 20, 0.0), (1.5, 30, 0.0), (2.5, 50, 0.1), (4.0, 5, 0.2)):
        np.testing.assert_array_equal(_objects.close_objects(lab, radius, hole, rel),
                                      _reference_close_objects(lab, radius, hole, rel))
