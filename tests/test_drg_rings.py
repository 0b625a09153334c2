import numpy as np
import pytest

from histo_fms.drg import make_background_bands, make_rings
from histo_fms.synthetic.drg import make_drg_section


@pytest.fixture(scope="module")
def labels():
    return make_drg_section((256, 256), 0.5, seed=21).labels


def test_rings_never_overlap_neurons_or_each_other(labels):
    rings = make_rings(labels, 8)
    assert rings.dtype == np.int32
    assert not np.any((rings > 0) & (labels > 0))
    # one value per pixel -> rings cannot overlap; each ring pixel belongs to the
    # nearest neuron and lies within the width
    from scipy import ndimage as ndi

    dist, (iy, ix) = ndi.distance_transform_edt(labels == 0, return_indices=True)
    sel = rings > 0
    assert np.all(dist[sel] <= 8 + 1e-6)
    np.testing.assert_array_equal(rings[sel], labels[iy[sel], ix[sel]])
    # every neuron has a ring
    assert set(np.unique(rings)) - {0} == set(np.unique(labels)) - {0}


def test_ring_adjacent_to_touching_neighbour_is_clipped():
    labels = np.zeros((40, 60), np.int32)
    labels[10:30, 5:25] = 1
    labels[10:30, 27:47] = 2  # 2 px gap
    rings = make_rings(labels, 5)
    assert not np.any((rings > 0) & (labels > 0))
    gap = rings[10:30, 25:27]
    assert set(np.unique(gap)) <= {1, 2}


def test_ring_width_scales_with_pixel_size():
    # the same 20 µm disc at two pixel sizes, 4 µm ring -> same ring area in µm²
    areas = []
    for px in (0.5, 0.25):
        n = int(60 / px)
        yy, xx = np.mgrid[:n, :n] * px
        labels = ((yy - 30) ** 2 + (xx - 30) ** 2 < 10**2).astype(np.int32)
        rings = make_rings(labels, 4.0 / px)
        areas.append((rings > 0).sum() * px * px)
    expected = np.pi * (14**2 - 10**2)
    assert areas[0] == pytest.approx(expected, rel=0.08)
    assert areas[1] == pytest.approx(expected, rel=0.05)


def test_background_band_beyond_ring(labels):
    rings = make_rings(labels, 8)
    bands = make_background_bands(labels, 8, 10)
    assert not np.any((bands > 0) & ((rings > 0) | (labels > 0)))
    assert bands.any()


def test_empty_labels():
    z = np.zeros((10, 10), np.int32)
    assert not make_rings(z, 3).any()
    assert not make_background_bands(z, 3, 3).any()
