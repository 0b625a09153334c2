"""The compiled kernels of ``histo_fms._numerics`` equal the scipy calls they replace.

Bit for bit, on random masks and images including degenerate ones (one row or column,
no feature pixel, all feature pixels, NaN), so that swapping them in changes no label,
ring or table value (issue 17: per-pixel cost on one core).
"""

from __future__ import annotations

import platform

import numpy as np
import pytest
from scipy import ndimage as ndi

from histo_fms._numerics import _edt, _gauss


def _masks(seed: int, n: int, max_size: int = 40):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(1, max_size, 2))
        k = rng.random()
        if k < 0.08:
            m = np.ones((h, w), bool)
        elif k < 0.12:
            m = np.zeros((h, w), bool)
        elif k < 0.25:
            m = rng.random((h, w)) < 0.97  # a few scattered features: many ties
        elif k < 0.5:
            m = rng.random((h, w)) < rng.uniform(0.3, 0.9)
        else:
            m = (ndi.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 4))
                 > rng.uniform(0.3, 0.7))
        yield m


def test_feature_transform_equals_scipy_with_its_tie_breaking():
    for m in _masks(0, 600):
        ref = ndi.distance_transform_edt(m, return_distances=False, return_indices=True)
        np.testing.assert_array_equal(_edt.feature_transform(m), ref, err_msg=str(m.shape))
        h, w = m.shape
        d2 = ((ref[0] - np.arange(h)[:, None]) ** 2 + (ref[1] - np.arange(w)) ** 2)
        np.testing.assert_array_equal(_edt.squared_distance_map(m), d2.astype(np.int32))
        f = d2.astype(np.int32).astype(np.float32)
        np.sqrt(f, out=f)
        got = _edt.distance_map_float32(m)
        assert got.dtype == np.float32 and np.array_equal(got, f)
        if m.any() and not m.all():  # scipy's float64 distances: same squared values
            np.testing.assert_array_equal(np.sqrt(d2.astype(np.float64)),
                                          ndi.distance_transform_edt(m))


def test_feature_transform_of_a_large_mask_and_non_bool_input():
    rng = np.random.default_rng(1)
    m = ndi.gaussian_filter(rng.random((300, 257)), 3) > 0.5
    ref = ndi.distance_transform_edt(m, return_distances=False, return_indices=True)
    np.testing.assert_array_equal(_edt.feature_transform(m.astype(np.uint8)), ref)
    np.testing.assert_array_equal(_edt.feature_transform(m[:, ::-1]),
                                  ndi.distance_transform_edt(m[:, ::-1],
                                                             return_distances=False,
                                                             return_indices=True))


#: scipy's x86-64 wheels correlate without fused multiply-adds, as the kernel does; its
#: macOS arm64 wheel fuses some (the last bit may differ there, not between our runs)
_SCIPY_UNFUSED = platform.machine().lower() in ("x86_64", "amd64")


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if not _SCIPY_UNFUSED:
        tol = 1e-5 if a.dtype == np.float32 else 1e-12
        return bool(np.allclose(a, b, rtol=tol, atol=tol * np.nanmax(np.abs(b), initial=1.0),
                                equal_nan=True))
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                          np.ascontiguousarray(b).view(np.uint8))


def test_gaussian_filter_equals_scipy_bit_for_bit():
    rng = np.random.default_rng(2)
    n = 0
    for _ in range(600):
        h, w = (int(v) for v in rng.integers(1, 45, 2))
        dt = np.float32 if rng.random() < 0.7 else np.float64
        a = (rng.random((h, w)) * rng.choice([1e-3, 1.0, 4000.0])).astype(dt)
        if rng.random() < 0.1:
            a[rng.random((h, w)) < 0.05] = np.nan
        s = float(rng.choice([0.3, 0.6, 1.0, 1.7, 2.5, 5.0, 12.0]))  # lines shorter too
        sigma = (s, float(rng.choice([0.0, 0.6, 3.3]))) if rng.random() < 0.3 else s
        order = 0 if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(0, 3, 2))
        ref = ndi.gaussian_filter(a, sigma, order=order)
        got = _gauss.gaussian_filter(a, sigma, order=order)
        assert _same_bits(got, ref), (a.shape, dt, sigma, order)
        n += 1
    assert n == 600


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_filter_on_views_and_other_inputs(dtype):
    rng = np.random.default_rng(3)
    a = rng.random((120, 90)).astype(dtype)
    view = a[::2, 5:80]
    assert _same_bits(_gauss.gaussian_filter(view, 1.5), ndi.gaussian_filter(view, 1.5))
    assert _same_bits(_gauss.gaussian_filter(a, 0.0), ndi.gaussian_filter(a, 0.0))
    ints = (a * 100).astype(np.uint16)  # not a kernel dtype: scipy's result
    assert _same_bits(_gauss.gaussian_filter(ints, 2.0), ndi.gaussian_filter(ints, 2.0))


def _reference_fill_small_holes(mask: np.ndarray, max_area_px: float) -> np.ndarray:
    """The scipy implementation the kernel replaces."""
    bg, n = ndi.label(~mask)
    if n == 0:
        return mask
    size = np.bincount(bg.ravel())
    fill = size <= max_area_px
    fill[0] = False
    for edge in (bg[0], bg[-1], bg[:, 0], bg[:, -1]):
        fill[edge] = False
    return mask | fill[bg]


def test_label_and_hole_filling_equal_scipy():
    from histo_fms._numerics import _label

    rng = np.random.default_rng(4)
    for m in _masks(5, 600):
        for conn, st in ((1, None), (2, np.ones((3, 3), bool))):
            ref, n = ndi.label(m, structure=st)
            got, k = _label.label(m, conn)
            assert k == n and got.dtype == ref.dtype
            np.testing.assert_array_equal(got, ref)
        hole = float(rng.choice([0, 1, 3, 30, 400]))
        np.testing.assert_array_equal(_label.fill_small_holes(m, hole),
                                      _reference_fill_small_holes(m, hole))
    checker = (np.add.outer(np.arange(31), np.arange(17)) % 2).astype(bool)  # most labels
    np.testing.assert_array_equal(_label.label(checker)[0], ndi.label(checker)[0])


def test_hull_pixel_count_equals_convex_hull_image():
    import warnings

    from skimage.morphology import convex_hull_image

    from histo_fms._numerics import _hull

    n = 0
    for m in _masks(6, 400, max_size=60):
        if m.any() and min(m.shape) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # degenerate hulls warn
                ref = int(convex_hull_image(m).sum())
            assert _hull.hull_pixel_count(m) == ref, m.shape
            n += 1
    assert n > 250


def test_fused_disc_opening_and_closing_equal_two_distance_transforms():
    rng = np.random.default_rng(7)
    for m in _masks(8, 500):
        if not m.any():
            continue
        r = float(rng.choice([1.0, 1.5, 2.0, np.sqrt(8), 4.7, 6.0, 9.5]))
        r2 = r * r
        d2 = _edt.squared_distance_map  # (checked against scipy above)
        core = d2(m) > r2
        ref = (d2(~core) <= r2) & m if core.any() else np.zeros_like(m)
        np.testing.assert_array_equal(_edt.disc_opening(m, r), ref)
        grown = d2(~m) <= r2
        ref = grown if grown.all() else ~(d2(grown) <= r2)
        np.testing.assert_array_equal(_edt.disc_closing(m, r), ref)


def test_cityblock_dilation_erosion_opening_equal_scipy_iterations():
    from histo_fms._numerics import _cityblock

    rng = np.random.default_rng(9)
    pairs = ((_cityblock.binary_dilation, ndi.binary_dilation),
             (_cityblock.binary_erosion, ndi.binary_erosion),
             (_cityblock.binary_opening, ndi.binary_opening))
    for m in _masks(10, 500):
        k = int(rng.integers(1, 9))  # more than a tiny array's size too
        for fast, ref in pairs:
            np.testing.assert_array_equal(fast(m, k), ref(m, iterations=k),
                                          err_msg=f"{fast.__name__} {m.shape} {k}")


def _reference_disc_extreme(a: np.ndarray, radius_px: float, erode: bool) -> np.ndarray:
    """Min / max over the disc as the AND / OR of running filters over its rectangles."""
    from histo_fms._numerics._morph import disc_rectangles

    filt = ndi.minimum_filter1d if erode else ndi.maximum_filter1d
    cval = erode if a.dtype == bool else (np.inf if erode else -np.inf)
    out = None
    for h, w in disc_rectangles(radius_px):
        v = filt(a, 2 * h + 1, axis=0, mode="constant", cval=cval) if h else a
        if w:
            v = filt(v, 2 * w + 1, axis=1, mode="constant", cval=cval)
        out = v.copy() if out is None else (np.minimum if erode else np.maximum)(out, v)
    return out


def test_disc_min_max_kernel_equals_running_filters_over_rectangles():
    from histo_fms._numerics import _morph

    rng = np.random.default_rng(11)
    for m in _masks(12, 400):
        r = float(rng.choice([0.5, 1.0, 1.5, 2.0, 2.9, np.sqrt(8), 4.7, 6.0, 7.3]))
        if rng.random() < 0.5:
            a = m
        else:
            a = rng.random(m.shape).astype(rng.choice([np.float32, np.float64]))
            a[m] = -np.inf
        for erode in (True, False):
            got = _morph._combine(a, r, erode)
            assert got.dtype == a.dtype
            np.testing.assert_array_equal(got, _reference_disc_extreme(a, r, erode))


def test_numba_is_imported_only_when_a_kernel_runs():
    """``import histo_fms.cli`` (``--help``) pays neither numba's nor scipy.stats' import."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "import histo_fms.cli, histo_fms.drg, histo_fms.segment._fast\n"
            "assert 'numba' not in sys.modules, 'numba imported eagerly'\n"
            "assert 'scipy.stats' not in sys.modules, 'scipy.stats imported eagerly'\n"
            "from histo_fms._numerics._label import label\n"
            "lab, n = label(np.eye(5, dtype=bool))\n"
            "assert 'numba' in sys.modules and n == 5, n\n"
            "import pickle\n"
            "from histo_fms._numerics._label import _label\n"
            "assert pickle.loads(pickle.dumps(_label)) is not None\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_fused_label_sums_equal_bincount_bit_for_bit():
    from histo_fms._numerics._sums import label_cross_sums, label_moment_sums

    rng = np.random.default_rng(3)
    lab = rng.integers(0, 40, (300, 200)).astype(np.int32)
    lab[:50] = 0
    y = (rng.random(lab.shape) * 3000).astype(np.float32)
    g = rng.random(lab.shape).astype(np.float32)
    n, sy, syy = label_moment_sums(lab, y, 45)
    f = lab.ravel()

    def bc(w=None):
        return np.bincount(f, weights=w, minlength=46)

    def mul(a, b):
        return np.multiply(a.ravel(), b.ravel(), dtype=np.float64)

    np.testing.assert_array_equal(n, bc())
    assert n.dtype == bc().dtype
    np.testing.assert_array_equal(sy, bc(y.ravel()))
    np.testing.assert_array_equal(syy, bc(mul(y, y)))
    for got, want in zip(label_cross_sums(lab, g, y, 45),
                         (bc(g.ravel()), bc(mul(g, g)), bc(mul(g, y))), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        label_moment_sums(lab, y, 10)


def test_label_moments_boxes_counts_and_exact_covariance():
    from histo_fms._numerics._moments import covariances, label_moments

    rng = np.random.default_rng(5)
    lab = ndi.label(ndi.gaussian_filter(rng.random((200, 260)), 3) > 0.52)[0]
    mom = label_moments(lab)
    n = int(lab.max())
    np.testing.assert_array_equal(mom[1:, 0], np.bincount(lab.ravel(), minlength=n + 1)[1:])
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        assert tuple(mom[k, 1:5]) == (sl[0].start, sl[0].stop, sl[1].start, sl[1].stop)
    ids = np.flatnonzero(mom[:, 0] >= 2)
    ids = ids[ids > 0]
    cov = covariances(mom, ids)
    for k, c in zip(ids, cov, strict=True):
        yy, xx = np.nonzero(lab == k)
        np.testing.assert_allclose(c, np.cov(np.stack([yy, xx]).astype(float)),
                                   rtol=1e-12, atol=1e-12)
        # translation-exact: the same bits for the object anywhere in the array
    shifted = label_moments(np.pad(lab, ((7, 0), (13, 0))))
    np.testing.assert_array_equal(covariances(shifted, ids), cov)
    # an object too large for int64 numerators takes the Python-integer path
    big = np.zeros((1105, 1110), np.int32)
    big[2:1104, 3:1105] = 1
    big[600:, 900:] = 0
    yy, xx = np.nonzero(big)
    np.testing.assert_allclose(covariances(label_moments(big), np.array([1]))[0],
                               np.cov(np.stack([yy, xx]).astype(float)), rtol=1e-12)


def test_h_maxima_equals_skimage():
    from skimage.morphology import h_maxima as sk_h_maxima

    from histo_fms._numerics._extrema import h_maxima

    rng = np.random.default_rng(0)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        f = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(0.3, 4)) * rng.integers(1, 200)
        f = np.round(f * 10).astype(np.int32)
        if rng.random() < 0.3:
            f[rng.random(f.shape) < 0.3] = 0
        for hh in (1, 2, 4, 7):
            want = sk_h_maxima(f, hh)
            got = h_maxima(f, hh)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{f.shape} h={hh}")
    # a distance map as split_at_faint_sheath uses it (plateaus, a neck)
    m = np.zeros((40, 70), bool)
    m[5:35, 5:30] = m[8:32, 40:66] = m[18:22, 28:42] = True
    d = np.round(ndi.distance_transform_edt(m) * 4).astype(np.int32)
    np.testing.assert_array_equal(h_maxima(d, 4), sk_h_maxima(d, 4))


def test_distance_transform_edt_equals_scipy_bit_for_bit():
    rng = np.random.default_rng(9)
    cases = [np.ones((5, 7), bool), np.zeros((4, 4), bool), np.ones((1, 9), bool)]
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        cases.append(ndi.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 5))
                     > rng.uniform(0.3, 0.7))
    line = np.ones((120, 300), bool)
    line[60 + (10 * np.sin(np.arange(300) / 20)).astype(int), np.arange(300)] = False
    cases.append(line)
    for m in cases:
        want = ndi.distance_transform_edt(m)
        got = _edt.distance_transform_edt(m)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_compiled_upsampling_equals_the_numpy_expression_bit_for_bit():
    from histo_fms._numerics._background import _linear_index, upsample_linear

    def numpy_upsample(small, f, shape):  # the expression the kernel replaces
        a = np.asarray(small, np.float32)
        y0, y1, wy = _linear_index(a.shape[0], shape[0], f)
        x0, x1, wx = _linear_index(a.shape[1], shape[1], f)
        rows = a[y0] * (1 - wy)[:, None] + a[y1] * wy[:, None]
        out = rows[:, x0]
        out *= 1 - wx
        out += rows[:, x1] * wx
        return out

    rng = np.random.default_rng(1)
    for _ in range(100):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        f = int(rng.choice([1, 2, 4, 8, 16, 32]))
        small = (rng.random((h, w)) * 10 ** rng.uniform(-3, 4)).astype(np.float32)
        shape = (int(rng.integers(1, h * f + 1)), int(rng.integers(1, w * f + 1)))
        got, want = upsample_linear(small, f, shape), numpy_upsample(small, f, shape)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
