import time

import numpy as np
import pytest

from histo_fms.synthetic.skin import evaluate_skin, make_skin_section, match_crossings


def test_phantom_channels_and_truth():
    t0 = time.perf_counter()
    ph = make_skin_section(seed=200, density_per_mm=20)
    assert time.perf_counter() - t0 < 6  # ~1 s alone; generous on a shared machine
    assert ph.image.dtype == np.uint16 and ph.image.shape == (3, 600, 2400)
    assert ph.channel_names == ["PGP9.5", "ColIV", "DAPI"]
    assert list(ph.truth_crossings.columns) == ["y_um", "x_um", "fibre_id"]
    assert ph.n_crossings > 5
    # crossings lie on the DEJ
    dej = ph.dej_um
    for y, x in ph.truth_crossings[["y_um", "x_um"]].to_numpy():
        assert np.interp(x, dej[:, 1], dej[:, 0]) == pytest.approx(y, abs=0.01)
    # epidermis 30-100 µm thick
    thick = ph.epidermis.sum(0) * ph.pixel_size_um
    assert thick.min() >= 29 and thick.max() <= 101
    assert ph.surface_length_um >= 1199 and ph.dej_length_um > ph.surface_length_um


def test_phantom_options():
    ph = make_skin_section((300, 800), seed=201, density_per_mm=0, with_membrane=False)
    assert ph.channel_names == ["PGP9.5", "DAPI"] and ph.n_crossings == 0
    up = make_skin_section((300, 800), seed=202, density_per_mm=10)
    down = make_skin_section((300, 800), seed=202, density_per_mm=10, orientation="down")
    np.testing.assert_array_equal(down.image, up.image[:, ::-1])
    np.testing.assert_allclose(down.truth_crossings.y_um, 149.5 - up.truth_crossings.y_um)
    assert make_skin_section((300, 800), seed=3, n_fibres=4).n_crossings == 4
    with pytest.raises(ValueError):
        make_skin_section((300, 800), orientation="left")


def test_density_is_poisson_mean():
    n = [make_skin_section((200, 800), seed=300 + i, density_per_mm=30, fragments_per_mm=0,
                           parallel_per_mm=0, n_bundles=0).n_crossings for i in range(6)]
    # 0.4 mm x 30 /mm = 12 expected per section
    assert 8 < np.mean(n) < 16


def test_match_and_evaluate():
    ph = make_skin_section((300, 800), seed=204, density_per_mm=20)
    det = ph.truth_crossings.copy()
    det["x_um"] += 4.0
    assert len(match_crossings(ph.truth_crossings, det)) == ph.n_crossings
    ev = evaluate_skin(ph, det.iloc[1:])
    assert ev["precision"] == 1.0 and ev["count_error"] == -1
