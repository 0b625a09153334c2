"""Each EFNS/PNS counting rule pinned by its own small phantom."""

import numpy as np
import pytest

from histo_fms.skin import (
    NoEpidermisError,
    SkinParams,
    analyze_skin,
    find_epidermis,
    ienfd,
    recount_skin,
    summarize,
)
from histo_fms.synthetic.skin import evaluate_skin, make_skin_section

SHAPE = (300, 800)
QUIET = dict(fragments_per_mm=0.0, parallel_per_mm=0.0, n_bundles=0, plexus=False)


def run(ph, membrane=True):
    mem = ph.channel("ColIV") if (membrane and "ColIV" in ph.channel_names) else None
    return analyze_skin(ph.channel("PGP9.5"), pixel_size_um=ph.pixel_size_um, membrane=mem,
                        nuclei=ph.channel("DAPI"))


def test_intraepidermal_fragments_not_counted():
    ph = make_skin_section(SHAPE, seed=210, density_per_mm=0, **{**QUIET,
                                                                "fragments_per_mm": 40.0})
    assert ph.decoys["fragments"] >= 5
    res = run(ph)
    assert (res.fibres > 0).any()  # the fragments are traced ...
    assert res.n_crossings == 0  # ... but not counted


def test_parallel_subdej_fibres_not_counted():
    ph = make_skin_section(SHAPE, seed=211, density_per_mm=0, **{**QUIET,
                                                                "parallel_per_mm": 25.0})
    assert ph.decoys["parallel"] >= 4
    for membrane in (True, False):
        assert run(ph, membrane).n_crossings == 0


def test_dermal_bundles_and_plexus_not_counted():
    ph = make_skin_section((400, 800), seed=212, density_per_mm=0,
                           **{**QUIET, "n_bundles": 3, "plexus": True})
    assert run(ph).n_crossings == 0


def test_branching_fibre_counts_once():
    ph = make_skin_section(SHAPE, seed=213, n_fibres=1, branch_fraction=1.0, gap_fraction=0.0,
                           thickness_um=(70, 80), **QUIET)
    assert ph.decoys["branched"] == 1
    res = run(ph)
    assert res.n_crossings == 1
    assert evaluate_skin(ph, res.crossings)["tp"] == 1


def test_gap_after_crossing_counts_once():
    ph = make_skin_section(SHAPE, seed=214, n_fibres=1, branch_fraction=0.0, gap_fraction=1.0,
                           thickness_um=(70, 80), **QUIET)
    assert ph.decoys["gapped"] == 1
    for membrane in (True, False):
        res = run(ph, membrane)
        assert res.n_crossings == 1
        assert evaluate_skin(ph, res.crossings)["tp"] == 1


def test_no_fibres_gives_zero():
    ph = make_skin_section(SHAPE, seed=215, density_per_mm=0)
    res = run(ph)
    assert res.n_crossings == 0 and res.ienfd_per_mm == 0.0
    s = summarize(res)
    assert s["n_crossings"] == 0 and s["ienfd_per_mm"] == 0.0
    assert s["epidermis_length_mm"] == pytest.approx(ph.surface_length_um / 1000, rel=0.03)
    assert list(res.crossings.columns)[:3] == ["y_um", "x_um", "fibre_id"]


def test_blank_image_raises():
    rng = np.random.default_rng(216)
    blank = (100 + rng.normal(0, 3, SHAPE)).astype(np.uint16)
    with pytest.raises(NoEpidermisError):
        analyze_skin(blank, pixel_size_um=0.5, nuclei=blank.copy())
    assert issubclass(NoEpidermisError, ValueError)


def test_dermis_only_raises():
    ph = make_skin_section((600, 800), seed=217, density_per_mm=10)
    rows = int(np.ceil(ph.dej_um[:, 0].max() / ph.pixel_size_um)) + 20
    derm = ph.image[:, rows:]  # dermis fills the frame
    with pytest.raises(NoEpidermisError):
        analyze_skin(derm[0], pixel_size_um=0.5, membrane=derm[1], nuclei=derm[2])
    # dermis with a tissue edge (slide background beyond it) but no epidermis
    top = int(ph.surface_um[:, 0].min() / ph.pixel_size_um) - 2
    edge = np.concatenate([ph.image[:, :top], derm], axis=1)
    with pytest.raises(NoEpidermisError):
        analyze_skin(edge[0], pixel_size_um=0.5, nuclei=edge[2])


def test_epidermis_and_lengths_both_orientations():
    for ori, mem in (("up", False), ("down", True)):
        ph = make_skin_section(SHAPE, seed=218, density_per_mm=10, orientation=ori,
                               with_membrane=mem)
        mem_ch = ph.channel("ColIV") if mem else None
        epi = find_epidermis(pixel_size_um=0.5, nuclei=ph.channel("DAPI"), membrane=mem_ch,
                             fibre=ph.channel("PGP9.5"))
        iou = (epi.mask & ph.epidermis).sum() / (epi.mask | ph.epidermis).sum()
        assert iou > 0.85
        assert epi.surface_length_um == pytest.approx(ph.surface_length_um, rel=0.03)
        assert epi.dej_length_um == pytest.approx(ph.dej_length_um, rel=0.05)
        # the DEJ is on the dermis side: surface nearer the background edge of the image
        top = ori == "up"
        assert (epi.surface_um[:, 0].mean() < epi.dej_um[:, 0].mean()) == top


def test_recount_with_given_lines():
    ph = make_skin_section(SHAPE, seed=219, density_per_mm=25)
    res = run(ph)
    again = recount_skin(res.fibres, pixel_size_um=0.5, dej_um=res.dej_um,
                         surface_um=res.surface_um, epidermis=res.epidermis)
    assert again.n_crossings == res.n_crossings
    # reviewer-drawn (here: the true) lines, epidermis rebuilt from the polylines
    truth_lines = recount_skin(res.fibres, pixel_size_um=0.5, dej_um=ph.dej_um,
                               surface_um=ph.surface_um)
    ev = evaluate_skin(ph, truth_lines.crossings)
    assert ev["recall"] >= 0.8 and ev["precision"] >= 0.8
    assert truth_lines.epidermis_length_mm == pytest.approx(ph.surface_length_um / 1000)


def test_ienfd_and_params():
    assert ienfd(12, 1.2) == pytest.approx(10.0)
    assert ienfd(0, 1.0) == 0.0
    assert np.isnan(ienfd(3, 0.0))
    p = SkinParams(**{"fibre_sigmas_um": [0.5, 1.0], "min_penetration_um": 5})
    assert p.fibre_sigmas_um == (0.5, 1.0)
    with pytest.raises(ValueError):
        SkinParams(fibre_low_snr=9, fibre_high_snr=3)
    with pytest.raises(ValueError):
        SkinParams(crossing_band_um=0.5, dermal_extent_um=1.0)


def test_fibre_with_untraced_dermal_part_counts_once():
    # a fibre whose dermal part is too faint to trace, ending at the DEJ, entered there
    from histo_fms.skin import count_crossings, epidermis_from_polylines

    px = 0.5
    shape = (200, 200)
    surf = np.array([[10.0, 0.0], [10.0, 99.5]])
    dej = np.array([[60.0, 0.0], [60.0, 99.5]])
    epi = epidermis_from_polylines(surf, dej, shape, pixel_size_um=px)
    lab = np.zeros(shape, np.int32)
    lab[60:121, 100] = 1  # from the DEJ (row 120 = 60 µm) 30 µm up, nothing below
    lab[80:110, 150] = 2  # a fragment ending 10 µm above the DEJ: not counted
    cr = count_crossings(lab, epi, pixel_size_um=px)
    assert len(cr) == 1 and cr["x_um"].iloc[0] == pytest.approx(50.0)
    # the DEJ is drawn to a µm or two: a fibre reaching 31 µm in and ending 1.5 µm above
    # the drawn line entered (counted once, at its lower end); one ending 3.5 µm above is
    # a fragment, and with entry_tolerance_um=0 a fibre must reach the drawn line
    lab[58:118, 20] = 3  # lowest pixel row 117: 58.5 µm, 1.5 µm above the DEJ
    lab[50:114, 180] = 4  # lowest row 113: 56.5 µm, 3.5 µm above
    cr = count_crossings(lab, epi, pixel_size_um=px)
    assert sorted(cr["x_um"]) == pytest.approx([10.0, 50.0])
    row = cr[cr["x_um"] == 10.0].iloc[0]
    assert row["y_um"] == pytest.approx(58.5) and row["fibre_id"] == 3
    assert row["penetration_um"] == pytest.approx(31.0)  # top row 58: 29 µm
    cr = count_crossings(lab, epi, pixel_size_um=px, params=SkinParams(entry_tolerance_um=0))
    assert list(cr["x_um"]) == pytest.approx([50.0])


def test_shallow_entry_counts_when_steep_not_when_running_along_the_dej():
    # the DEJ is drawn to a few µm: a fibre that enters steeply but only 1.5 µm past the
    # drawn line entered; one that runs along the DEJ weaving 1.5 µm below to 3 µm above
    # the line over 40 µm did not (EFNS: fibres running along the DEJ are not counted)
    from skimage.draw import line

    from histo_fms.skin import count_crossings, epidermis_from_polylines

    px = 0.5
    shape = (200, 400)
    surf = np.array([[10.0, 0.0], [10.0, 199.5]])
    dej = np.array([[60.0, 0.0], [60.0, 199.5]])
    epi = epidermis_from_polylines(surf, dej, shape, pixel_size_um=px)
    lab = np.zeros(shape, np.int32)
    lab[117:140, 60] = 1  # from 10 µm below the DEJ (row 120) to 1.5 µm above it
    xs = np.arange(200, 280)
    ys = np.round(118.5 - 4.5 * np.sin((xs - 200) / 80 * 2 * np.pi)).astype(int)
    for k in range(len(xs) - 1):
        rr, cc = line(ys[k], xs[k], ys[k + 1], xs[k + 1])
        lab[rr, cc] = 2
    cr = count_crossings(lab, epi, pixel_size_um=px)
    assert len(cr) == 1 and cr["x_um"].iloc[0] == pytest.approx(30.0)
    # the same fibre counts when it goes on into the epidermis (deeper than shallow_entry_um)
    rr, cc = line(int(ys[-1]), 279, 95, 280)
    lab[rr, cc] = 2
    cr = count_crossings(lab, epi, pixel_size_um=px)
    assert len(cr) == 2
