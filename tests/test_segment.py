import numpy as np
import pytest

from histo_fms.segment import (
    available_backends,
    register_backend,
    segment_classical,
    segment_neurons,
)
from histo_fms.segment._registry import _BACKENDS


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r**2


def _scene(rng, discs, shape=(160, 200), bg=200.0, offset=100.0):
    img = np.full(shape, bg, np.float32)
    for cy, cx, r, level in discs:
        img[_disc(shape, cy, cx, r)] = level
    return rng.poisson(img).astype(np.float32) + offset


def test_backends_registry():
    assert "classical" in available_backends()
    with pytest.raises(ValueError, match="unknown segmentation backend"):
        segment_neurons(np.zeros((8, 8)), pixel_size_um=0.5, backend="nope")


def test_register_custom_backend():
    def fake(image, *, pixel_size_um, value=3):
        return np.full(image.shape, value)

    register_backend("fake-test", fake)
    try:
        out = segment_neurons(np.zeros((4, 4)), pixel_size_um=1.0, backend="fake-test", value=2)
        assert out.dtype == np.int32 and (out == 2).all()
    finally:
        _BACKENDS.pop("fake-test")


def test_lazy_backend_missing_module_fails_loudly():
    register_backend("missing-test", "histo_fms.segment._does_not_exist:segment")
    try:
        with pytest.raises(ImportError, match="missing-test"):
            segment_neurons(np.zeros((4, 4)), pixel_size_um=1.0, backend="missing-test")
    finally:
        _BACKENDS.pop("missing-test")


@pytest.mark.parametrize("image", [np.zeros((64, 64)), np.full((64, 64), 500.0),
                                   np.zeros((2, 2)), np.zeros((0, 0))])
def test_empty_and_constant(image):
    lab = segment_neurons(image, pixel_size_um=0.5)
    assert lab.shape == image.shape and lab.dtype == np.int32 and not lab.any()


def test_touching_neurons_split_and_dim_found():
    rng = np.random.default_rng(0)
    # two touching bright neurons (20 µm diameter at 0.5 µm/px), one dim (4x weaker)
    img = _scene(rng, [(60, 60, 20, 1600), (60, 96, 20, 1600), (120, 150, 22, 400)])
    lab = segment_neurons(img, pixel_size_um=0.5)
    assert lab.max() == 3
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    assert lab[60, 60] != lab[60, 96]
    assert lab[120, 150] > 0
    # outline of the dim neuron close to the truth
    area = (lab == lab[120, 150]).sum()
    assert area == pytest.approx(np.pi * 22**2, rel=0.15)


def test_small_bright_granule_ignored():
    rng = np.random.default_rng(1)
    img = _scene(rng, [(60, 60, 20, 1600), (120, 150, 2, 5000)])
    lab = segment_classical(img, pixel_size_um=0.5)
    assert lab.max() == 1
    assert lab[120, 150] == 0


def test_vignetting_does_not_change_count():
    rng = np.random.default_rng(2)
    discs = [(40, 40, 16, 1600), (40, 150, 16, 1600), (120, 40, 16, 1600), (120, 150, 16, 500)]
    img = _scene(rng, discs) - 100
    yy, xx = np.mgrid[:160, :200]
    illum = 1 - 0.5 * ((yy / 160) ** 2 + (xx / 200) ** 2) / 2
    lab = segment_neurons(img * illum + 100, pixel_size_um=0.5)
    assert lab.max() == 4


def test_pixel_size_scales_min_diameter():
    rng = np.random.default_rng(3)
    img = _scene(rng, [(60, 60, 8, 1600)])  # 8 px radius
    # at 0.5 µm/px the object is 8 µm across: below a 10 µm minimum diameter
    assert segment_neurons(img, pixel_size_um=0.5).max() == 0
    # at 1.0 µm/px it is 16 µm across
    assert segment_neurons(img, pixel_size_um=1.0).max() == 1
