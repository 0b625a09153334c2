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


# --- real-tissue behaviour -----------------------------------------------------------------

def _pooled_f1(evals):
    tp = sum(e["tp"] for e in evals)
    fp = sum(e["fp"] for e in evals)
    fn = sum(e["fn"] for e in evals)
    return 2 * tp / (2 * tp + fp + fn)


def test_real_tissue_like_phantom_segmented_with_sgc():
    from histo_fms.drg import measure_neurons
    from histo_fms.synthetic.drg import REAL_TISSUE, evaluate_drg, make_drg_section

    evals = []
    for seed in (0, 1):
        # axon puncta and fibre bundles between the somata, dark and pale nuclei, a
        # nerve root and empty slide with debris
        ph = make_drg_section((384, 384), 0.5, seed=seed, **REAL_TISSUE)
        lab = segment_neurons(ph.channel("NeuN"), pixel_size_um=0.5,
                              channels={"sgc": ph.channel("GS")})
        table = measure_neurons(lab, pixel_size_um=0.5)
        evals.append(evaluate_drg(ph, table))
        assert table["diameter_um"].max() <= 1.2 * 60
    assert _pooled_f1(evals) > 0.7


def test_tissue_sized_component_is_not_a_neuron():
    rng = np.random.default_rng(4)
    shape = (300, 300)  # 1 µm/px
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    # a bright, neck-free tissue region 200 x 120 µm, and two somata apart from it
    tissue = ((yy - 90) / 60.0) ** 2 + ((xx - 150) / 100.0) ** 2 < 1
    img = np.full(shape, 100.0)
    img[tissue] = 1500.0
    img[_disc(shape, 240, 70, 12)] = 1600.0
    img[_disc(shape, 240, 220, 15)] = 1600.0
    img = rng.poisson(img).astype(np.float32)
    lab = segment_neurons(img, pixel_size_um=1.0)
    assert lab.max() == 2
    assert not lab[tissue].any()
    assert lab[240, 70] > 0 and lab[240, 220] > 0


def test_sgc_sheath_splits_touching_neurons():
    rng = np.random.default_rng(5)
    shape = (160, 200)  # 0.5 µm/px
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    # two somata pressed together into one neck-free ellipse (40 x 24 µm), an SGC
    # sheath around both and between them
    cell = ((yy - 80) / 24.0) ** 2 + ((xx - 100) / 40.0) ** 2 < 1
    ring = (((yy - 80) / 28.0) ** 2 + ((xx - 100) / 44.0) ** 2 < 1) & ~cell
    wall = cell & (np.abs(xx - 100) < 2)
    neuron = np.where(cell, 1500.0, 150.0)
    neuron[wall] = 900.0
    sgc = np.full(shape, 100.0)
    sgc[ring | wall] = 1200.0
    neuron = rng.poisson(neuron).astype(np.float32)
    sgc = rng.poisson(sgc).astype(np.float32)
    alone = segment_neurons(neuron, pixel_size_um=0.5)
    assert alone.max() == 1  # no neck: one object without the SGC channel
    both = segment_neurons(neuron, pixel_size_um=0.5, channels={"sgc": sgc})
    assert both.max() == 2
    assert both[80, 75] > 0 and both[80, 125] > 0 and both[80, 75] != both[80, 125]


def test_eccentric_dark_nucleus_stays_in_its_soma():
    rng = np.random.default_rng(6)
    shape = (160, 160)  # 0.5 µm/px: a 36 µm soma whose dark nucleus reaches its edge
    img = np.full(shape, 150.0)
    soma = _disc(shape, 80, 80, 36)
    nucleus = _disc(shape, 80, 104, 13)
    img[soma] = 1500.0
    img[nucleus] = 200.0
    lab = segment_neurons(rng.poisson(img).astype(np.float32), pixel_size_um=0.5)
    assert lab.max() == 1
    assert lab[80, 104] == 1  # the nucleus is part of the soma
    assert (lab == 1).sum() == pytest.approx(soma.sum(), rel=0.15)


def test_fibre_bundles_are_not_neurons():
    rng = np.random.default_rng(7)
    shape = (200, 200)  # 0.5 µm/px
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, 150.0)
    img[np.abs(yy - 0.5 * xx - 30) < 4] = 1200.0  # 4 µm thick fibre bundle
    img[np.abs(xx - 150) < 10] = 1200.0  # 10 µm wide bundle across the image
    img[_disc(shape, 150, 50, 20)] = 1500.0
    lab = segment_neurons(rng.poisson(img).astype(np.float32), pixel_size_um=0.5)
    assert lab.max() == 1 and lab[150, 50] == 1


def test_small_object_without_sheath_is_not_a_soma():
    rng = np.random.default_rng(8)
    shape = (160, 240)  # 0.5 µm/px
    neuron = np.full(shape, 150.0)
    sgc = np.full(shape, 100.0)
    # a 36 µm soma and a 12 µm one, each wrapped in a 2 µm sheath, and a 12 µm blob
    # as bright as a soma 6 µm beside the large one's sheath, bare
    for cy, cx, r, wrapped in ((80, 60, 36, True), (80, 200, 12, True), (80, 125, 12, False)):
        neuron[_disc(shape, cy, cx, r)] = 1500.0
        if wrapped:
            sgc[_disc(shape, cy, cx, r + 5) & ~_disc(shape, cy, cx, r + 1)] = 1200.0
    neuron = rng.poisson(neuron).astype(np.float32)
    sgc = rng.poisson(sgc).astype(np.float32)
    lab = segment_neurons(neuron, pixel_size_um=0.5, channels={"sgc": sgc})
    assert lab.max() == 2 and lab[80, 60] > 0 and lab[80, 200] > 0 and lab[80, 125] == 0
    # the rule is about sheath evidence: off, the bare blob is a soma like the others
    off = segment_neurons(neuron, pixel_size_um=0.5, channels={"sgc": sgc}, bare_min_factor=0)
    assert off.max() == 3 and off[80, 125] > 0
    # without an SGC channel nothing tells them apart: all three are kept
    assert segment_neurons(neuron, pixel_size_um=0.5).max() == 3


def test_large_nucleus_behind_a_dim_rim_stays_in_its_soma():
    # a 44 µm soma whose 26 µm nucleus is eccentric; the thin cytoplasm rim beyond the
    # nucleus is dim (below the outline level): the outline alone leaves a crescent
    shape = (200, 200)  # 0.5 µm/px
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    soma = _disc(shape, 100, 100, 44)
    img = np.full(shape, 150.0)
    img[soma] = 1500.0
    img[soma & (xx > 128)] = 450.0
    img[_disc(shape, 100, 112, 26)] = 150.0
    rng = np.random.default_rng(3)
    img = rng.poisson(img).astype(np.float32)
    sgc = np.where(_disc(shape, 100, 100, 48) & ~soma, 1200.0, 100.0)  # its sheath
    ch = {"sgc": rng.poisson(sgc).astype(np.float32)}
    lab = segment_classical(img, pixel_size_um=0.5, channels=ch)
    assert lab.max() == 1 and lab[100, 112] == 1
    assert ((lab == 1) & soma).sum() / ((lab == 1) | soma).sum() > 0.85
    # without the nucleus pocket the crescent is not a soma
    no = segment_classical(img, pixel_size_um=0.5, channels=ch, nucleus_fill=False)
    assert no[100, 112] == 0


def test_nucleus_pockets_only_round_holes_of_one_object():
    from histo_fms.segment._nuclei import nucleus_pockets

    shape = (120, 200)
    labels = np.zeros(shape, np.int32)
    labels[_disc(shape, 60, 50, 40)] = 1
    labels[10:110, 110:150] = 2
    labels[10:110, 150:190] = 3
    holes = _disc(shape, 60, 50, 15) | _disc(shape, 60, 150, 15)  # own / shared
    out = nucleus_pockets(labels, holes, nucleus_area_px=50)
    assert (out == 1).sum() == _disc(shape, 60, 50, 15).sum()
    assert not out[:, 100:].any()  # the hole shared by two objects is no nucleus
    sgc = np.zeros(shape, bool)
    sgc[55:65, 40:60] = True  # sheath inside: not a nucleus
    assert not nucleus_pockets(labels, holes, nucleus_area_px=50, sgc_pos=sgc).any()
    big = _disc(shape, 60, 50, 32)  # most of its object: not a nucleus
    assert not nucleus_pockets(labels, big, nucleus_area_px=50).any()
