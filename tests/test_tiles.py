import numpy as np
import pytest
from scipy import ndimage as ndi

from histo_fms.parallel._tiles import (
    apply_mapping,
    canonical_mapping,
    first_pixels,
    global_first_pixels,
    tile_grid,
)


@pytest.mark.parametrize("shape,tile,margin", [((100, 130), 32, 7), ((64, 64), 64, 10),
                                               ((5, 300), 17, 0)])
def test_cores_partition_the_image(shape, tile, margin):
    cover = np.zeros(shape, int)
    for t in tile_grid(shape, tile, margin):
        cover[t.core_slices] += 1
        oy, ox = t.outer_slices
        assert oy.start >= 0 and ox.start >= 0 and oy.stop <= shape[0] and ox.stop <= shape[1]
        cy, cx = t.core_in_outer
        assert cy.start == t.core[0] - t.outer[0] and cy.stop - cy.start == t.core[1] - t.core[0]
        assert cx.stop - cx.start == t.core[3] - t.core[2]
    assert (cover == 1).all()


def test_canonical_numbering_independent_of_input_ids():
    rng = np.random.default_rng(3)
    lab, n = ndi.label(rng.random((60, 80)) > 0.8)
    perm = np.concatenate([[0], rng.permutation(n) + 1])
    shuffled = perm[lab]
    a = apply_mapping(lab, *(lambda i, f: (i, canonical_mapping(i, f)))(*first_pixels(lab)))
    b = apply_mapping(shuffled,
                      *(lambda i, f: (i, canonical_mapping(i, f)))(*first_pixels(shuffled)))
    np.testing.assert_array_equal(a, b)
    # 1..n in raster order of first pixels
    ids, first = first_pixels(a)
    assert np.all(np.diff(first[np.argsort(ids)]) > 0)


def test_global_first_pixels_of_a_crop():
    lab = np.zeros((20, 30), int)
    lab[5:8, 10:14] = 4
    lab[12:15, 2:4] = 9
    ids, first = global_first_pixels(lab[3:, 1:], (3, 1), 30)
    assert dict(zip(ids.tolist(), first.tolist(), strict=True)) == {4: 5 * 30 + 10,
                                                                    9: 12 * 30 + 2}
