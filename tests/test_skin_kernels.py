"""The compiled kernels of the skin pipeline equal the library calls they replace.

Bit for bit (issue 17, per-pixel cost on one core): the Sato ridge filter against
scikit-image's, hole filling and the disc opening against scipy's, per-label extrema
against ``scipy.ndimage.minimum`` / ``maximum``, and the DEJ tracer's column passes
against their numpy formulations (kept here as the reference).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import sato as sk_sato
from skimage.morphology import disk

from histo_fms._numerics._binary import binary_fill_holes, binary_opening_disk
from histo_fms._numerics._columns import min_cost_path, step_edge
from histo_fms._numerics._labelstats import label_extrema
from histo_fms._numerics._ridges import sato


def _masks(seed: int, n: int, max_size: int = 60):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(1, max_size, 2))
        k = rng.random()
        if k < 0.1:
            yield np.ones((h, w), bool)
        elif k < 0.15:
            yield np.zeros((h, w), bool)
        elif k < 0.4:
            yield rng.random((h, w)) < rng.uniform(0.3, 0.9)
        else:
            yield ndi.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 3)) > rng.uniform(
                0.4, 0.6)


def test_sato_equals_scikit_image():
    rng = np.random.default_rng(0)
    for shape, sigmas, dtype in [((40, 57), [0.5, 1.0, 2.5], np.float32),
                                 ((33, 20), [1.5, 3.0], np.float64),
                                 ((1, 9), [0.7], np.float32)]:
        img = (rng.random(shape) * 100).astype(dtype)
        img[0, 0] = 1e4  # a bright outlier at the border
        for black in (False, True):
            ref = sk_sato(img, sigmas=sigmas, black_ridges=black, mode="reflect")
            out = sato(img, sigmas, black_ridges=black)
            assert out.dtype == ref.dtype
            assert out.tobytes() == ref.tobytes()
    # other modes are scikit-image's own
    img = rng.random((20, 20)).astype(np.float32)
    np.testing.assert_array_equal(sato(img, [1.0], mode="nearest"),
                                  sk_sato(img, sigmas=[1.0], mode="nearest"))


def test_fill_holes_and_disc_opening_equal_scipy():
    for m in _masks(1, 300):
        np.testing.assert_array_equal(binary_fill_holes(m), ndi.binary_fill_holes(m))
        for r in (1, 2, 4, 6):
            ref = ndi.binary_opening(m, disk(r))
            out = binary_opening_disk(m, r)
            assert out.dtype == bool and out.shape == m.shape
            np.testing.assert_array_equal(out, ref)


def test_label_extrema_equal_scipy():
    rng = np.random.default_rng(2)
    for m in _masks(2, 100):
        lab, n = ndi.label(m)
        for dtype in (np.float32, np.float64, np.uint8):
            v = (rng.standard_normal(m.shape) * 20).astype(dtype)
            if dtype != np.uint8:
                v.flat[0] = -np.inf
            lo, hi = label_extrema(v, lab, n)
            if n == 0:
                assert lo.size == hi.size == 0
                continue
            idx = np.arange(1, n + 1)
            assert lo.dtype == v.dtype
            np.testing.assert_array_equal(lo, ndi.minimum(v, lab, idx))
            np.testing.assert_array_equal(hi, ndi.maximum(v, lab, idx))


def _step_edge_numpy(tex, half_px, above_only=False):
    r = tex.shape[0]
    h = max(1, int(half_px))
    pad = np.pad(np.asarray(tex, np.float64), ((h, h), (0, 0)), mode="edge")
    cs = np.concatenate([np.zeros((1, tex.shape[1])), np.cumsum(pad, 0)])
    i = np.arange(r) + h
    above = (cs[i] - cs[i - h]) / h
    if above_only:
        return above.astype(np.float32)
    below = (cs[i + 1 + h] - cs[i + 1]) / h
    return (above - below).astype(np.float32)


def _min_cost_path_numpy(cost, lo, hi, *, max_step, step_cost):
    r, c = cost.shape
    rows = np.arange(r)
    big = np.float64(1e18)
    allowed = (rows[:, None] >= lo[None]) & (rows[:, None] <= hi[None])
    cst = np.where(allowed, cost, big)
    acc = cst[:, 0].astype(np.float64)
    back = np.zeros((r, c), np.int16)
    shifts = np.arange(-max_step, max_step + 1)
    pen = step_cost * np.abs(shifts)
    for j in range(1, c):
        pad = np.full(r + 2 * max_step, big)
        pad[max_step:max_step + r] = acc
        cand = np.stack([pad[max_step + s:max_step + s + r] for s in shifts]) + pen[:, None]
        k = np.argmin(cand, axis=0)
        acc = cand[k, rows] + cst[:, j]
        back[:, j] = shifts[k]
    path = np.zeros(c, np.int64)
    path[-1] = int(np.argmin(acc))
    for j in range(c - 1, 0, -1):
        path[j - 1] = min(max(path[j] + back[path[j], j], 0), r - 1)
    return np.clip(path, 0, r - 1)


def test_step_edge_equals_numpy():
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64, np.uint16):
        for shape in [(50, 40), (1, 7), (120, 33)]:
            tex = (rng.random(shape) * 500).astype(dtype)
            for h in (0, 1, 3, 12, 80):
                for above in (False, True):
                    ref = _step_edge_numpy(tex, h, above)
                    out = step_edge(tex, h, above_only=above)
                    assert out.dtype == np.float32
                    assert out.tobytes() == ref.tobytes()


def test_min_cost_path_equals_numpy_with_ties_and_nan():
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        for shape in [(40, 60), (5, 3), (1, 4), (90, 70)]:
            cost = rng.random(shape).astype(dtype)
            cost[rng.random(shape) < 0.05] = 0.5  # ties between shifts
            lo = rng.integers(0, max(1, shape[0] // 2), shape[1])
            hi = lo + rng.integers(-1, shape[0], shape[1])  # some columns allow no row
            for max_step, step_cost in [(1, 0.1), (3, 0.0), (5, 0.02)]:
                ref = _min_cost_path_numpy(cost, lo, hi, max_step=max_step, step_cost=step_cost)
                out = min_cost_path(cost, lo, hi, max_step=max_step, step_cost=step_cost)
                assert out.dtype == ref.dtype
                np.testing.assert_array_equal(out, ref)
            bad = cost.astype(np.float64)
            bad.flat[rng.integers(0, bad.size)] = np.nan
            np.testing.assert_array_equal(
                min_cost_path(bad, lo, hi, max_step=2, step_cost=0.1),
                _min_cost_path_numpy(bad, lo, hi, max_step=2, step_cost=0.1))
