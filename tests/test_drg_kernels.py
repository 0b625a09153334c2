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
