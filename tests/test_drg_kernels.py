"""Compiled kernels of the DRG measurement equal the numpy / scipy forms they replace.

Bit for bit (issue 17, per-pixel cost on one core): the lipofuscin spot test computed in
blocks around the wanted pixels equals the whole image's test (smoothing and grey
opening of the whole channel), for any block size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from histo_fms._numerics._gauss import gaussian_filter
from histo_fms._numerics._spots import spot_test_at


def _whole_image_test(channel, dark, where, size, floor, median, contrast):
    d = np.clip(np.asarray(channel, np.float32) - np.float32(dark), 0, None)
    d = gaussian_filter(d, 0.6)
    opened = ndi.grey_opening(d, size=(size, size))
    return where & (d > contrast * np.maximum(opened, floor)) & (d > median)


def test_spot_test_in_blocks_equals_whole_image():
    rng = np.random.default_rng(7)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 150, 2))
        dtype = rng.choice([np.uint16, np.float64])
        ch = rng.poisson(50, (h, w)).astype(dtype)
        ch[rng.random((h, w)) < 0.02] += 400  # granules
        where = rng.random((h, w)) < rng.choice([0.0, 0.002, 0.05, 1.0])
        size = int(rng.choice([1, 3, 7, 13]))
        args = (ch, float(rng.uniform(0, 60)), where, size, float(rng.uniform(0, 30)),
                float(rng.uniform(10, 60)), float(rng.uniform(1.0, 2.0)))
        ref = _whole_image_test(*args)
        for block in (5, 32, 1000):
            out = spot_test_at(*args, block=block)
            assert out.dtype == bool
            np.testing.assert_array_equal(out, ref)


def test_window_mean_equals_bincount_form():
    from histo_fms._numerics._quantiles import label_quantiles
    from histo_fms._numerics._ringops import window_mean

    rng = np.random.default_rng(8)
    for _ in range(30):
        h, w = (int(v) for v in rng.integers(1, 80, 2))
        nmax = int(rng.integers(0, 12))
        rings = rng.integers(0, nmax + 1, (h, w)).astype(np.int32)
        rings[rng.random((h, w)) < 0.5] = 0
        values = (rng.standard_normal((h, w)) * 30).astype(np.float32)
        values[rng.random((h, w)) < 0.1] = 7.0  # ties at the bounds
        lo = label_quantiles(values, rings, 0.1, nmax)
        hi = label_quantiles(values, rings, 0.9, nmax)
        rf, v = rings.ravel(), values.ravel().astype(np.float64)
        with np.errstate(invalid="ignore"):
            keep = (rf > 0) & (v >= lo[rf]) & (v <= hi[rf])
        rf = np.where(keep, rf, 0)
        n = np.bincount(rf, minlength=nmax + 1)
        s = np.bincount(rf, weights=v, minlength=nmax + 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        out = window_mean(values, rings, lo, hi, nmax)
        assert out.tobytes() == ref.tobytes()


def test_other_label_near_equals_min_max_filters():
    from histo_fms._numerics._ringops import other_label_near

    rng = np.random.default_rng(9)
    big = np.iinfo(np.int32).max
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        labels = rng.integers(0, 6, (h, w)).astype(np.int32)
        labels[rng.random((h, w)) < 0.7] = 0
        rings = rng.integers(0, 6, (h, w)).astype(np.int32)
        rings[(labels > 0) | (rng.random((h, w)) < 0.5)] = 0
        own = np.where(labels > 0, labels, rings)
        for half in (1, 2, 5, 40):
            k = 2 * half + 1
            mx = ndi.maximum_filter(own, size=k)
            mn = ndi.minimum_filter(np.where(own == 0, big, own), size=k)
            ref = (rings > 0) & ((mx != rings) | (mn != rings))
            np.testing.assert_array_equal(other_label_near(own, rings, half), ref)
