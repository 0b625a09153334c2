"""Quantised quantiles: one mergeable histogram pass gives numpy's quantiles exactly."""

import numpy as np
import pytest

from histo_fms._numerics._quantiles import (
    N_BINS,
    KeyHistogram,
    add_histograms,
    exact_quantiles,
    float_keys,
    histogram_quantiles,
    key_histogram,
    keys_to_values,
    quantise,
    quantised_keys,
    quantised_quantiles,
)

QS = [0.0, 0.005, 0.25, 0.5, 0.98, 0.995, 1.0]


def _values(seed=0, n=20_000):
    rng = np.random.default_rng(seed)
    v = np.concatenate([rng.normal(size=n) * 300, rng.uniform(100, 4000, n),
                        np.zeros(30), -np.zeros(30), [1e-42, -1e-42, 3e38, -3e38],
                        np.full(40, 123.456)])
    return rng.permutation(v).astype(np.float32)


def test_quantise_is_truncation_toward_zero():
    v = _values()
    t = quantise(v)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(np.abs(t) <= np.abs(v), True)
    np.testing.assert_array_equal(np.sign(t[t != 0]), np.sign(v[t != 0]))
    rel = np.abs(v - t)[np.abs(v) > 1e-30] / np.abs(v[np.abs(v) > 1e-30])
    assert rel.max() < 2.0**-11
    assert np.array_equal(quantise(t), t)  # idempotent
    # small integers (up to 2**12) and infinities are kept
    ints = np.arange(-4096, 4097, dtype=np.float32)
    np.testing.assert_array_equal(quantise(ints), ints)
    inf = np.array([np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(quantise(inf), inf)
    assert np.signbit(quantise(np.float32(-0.0)))


def test_keys_order_and_inverse():
    v = _values()
    v = v[np.argsort(float_keys(v), kind="stable")]  # total order: -0.0 before 0.0
    k = quantised_keys(v)
    assert k.dtype == np.uint32 and int(k.max()) < N_BINS
    assert np.all(np.diff(k.astype(np.int64)) >= 0)  # monotone
    np.testing.assert_array_equal(k, float_keys(v) >> 12)
    # equal keys <=> equal quantised values (bit patterns: -0.0 differs from 0.0)
    t = quantise(v)
    back = keys_to_values(k)
    np.testing.assert_array_equal(back.view(np.uint32), t.view(np.uint32))
    ext = np.array([np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(keys_to_values(quantised_keys(ext)), ext)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 1000, 40_001])
def test_equals_quantiles_of_quantised_values(n):
    v = _values(seed=n)[:n]
    t = quantise(v)
    got = quantised_quantiles(v, QS)
    # bit-identical to the exact (float64-interpolated) quantiles of the quantised values
    assert got == exact_quantiles(t, QS)
    np.testing.assert_allclose(got, np.quantile(t.astype(np.float64), QS), rtol=1e-12,
                               atol=1e-300)


def test_chunk_histograms_add_up():
    v = _values(seed=3)
    whole = key_histogram(v)
    assert whole.counts.dtype == np.int64 and int(whole.counts.sum()) == v.size
    parts = [key_histogram(c) for c in np.array_split(v, [0, 5, 17_000, 17_001, 30_000])]
    total = parts[0]
    for h in parts[1:]:
        total = add_histograms(total, h)
    assert total.offset == whole.offset
    np.testing.assert_array_equal(total.counts, whole.counts)
    assert histogram_quantiles(total, QS) == quantised_quantiles(v, QS)
    # a dense 2**20-bin array gives the same quantiles
    dense = np.bincount(quantised_keys(v), minlength=N_BINS)
    assert dense.size == N_BINS
    assert histogram_quantiles(dense, QS) == quantised_quantiles(v, QS)
    # order of summation does not matter (integers)
    rev = parts[-1]
    for h in parts[-2::-1]:
        rev = add_histograms(rev, h)
    np.testing.assert_array_equal(rev.counts, whole.counts)


def test_large_array_is_chunked(monkeypatch):
    import histo_fms._numerics._quantiles as mod

    v = _values(seed=4)
    expected = key_histogram(v)
    monkeypatch.setattr(mod, "_CHUNK", 1000)
    got = key_histogram(v)
    assert got.offset == expected.offset
    np.testing.assert_array_equal(got.counts, expected.counts)


def test_edge_cases():
    empty = key_histogram(np.zeros(0, np.float32))
    assert empty.counts.size == 0
    assert all(np.isnan(quantised_quantiles(np.zeros(0), [0.5, 1.0])))
    assert all(np.isnan(histogram_quantiles(np.zeros(N_BINS, np.int64), [0.5])))
    h = key_histogram(np.array([5.0]))
    assert add_histograms(empty, h) is h and add_histograms(h, empty) is h
    # one value: every quantile is that value (quantised)
    x = np.float32(1234.5678)
    assert quantised_quantiles(np.array([x]), QS) == [float(quantise(x))] * len(QS)
    # ties
    assert quantised_quantiles(np.full((50, 50), 7.0, np.float32), QS) == [7.0] * len(QS)
    # negative values (rounded toward zero) and the interpolation between two of them
    neg = np.array([-3.0, -1.0], np.float32)
    assert quantised_quantiles(neg, [0.0, 0.5, 1.0]) == [-3.0, -2.0, -1.0]
    y = np.float32(-1234.5678)
    assert quantised_quantiles(np.array([y]), [0.5]) == [float(quantise(y))]
    assert float(quantise(y)) > float(y)
    # 2-D input, integer input
    img = np.arange(100, dtype=np.uint16).reshape(10, 10)
    assert quantised_quantiles(img, [0.5]) == [49.5]
    assert isinstance(key_histogram(img), KeyHistogram)
