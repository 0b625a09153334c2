"""The DEJ: follows the collagen IV line, or the nuclear layer's lower edge, across rete ridges."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from histo_fms.skin import find_epidermis
from histo_fms.skin._dej import min_cost_path
from histo_fms.synthetic.skin import make_skin_section

PX = 0.5


def _dense(p, step=0.25):
    p = np.asarray(p, float)
    s = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
    t = np.arange(0, s[-1], step)
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], 1)


def _error_um(found, truth, width_um, margin_um=10.0):
    """Distances (µm) from the found DEJ to the true one, away from the image ends."""
    f = _dense(found, 1.0)
    f = f[(f[:, 1] > margin_um) & (f[:, 1] < width_um - margin_um)]
    return cKDTree(_dense(truth)).query(f)[0]


def _epidermis_on_top(shape, rows):
    """All-tissue field whose rough epidermis is the first ``rows`` rows: (tissue, band)."""
    tissue = np.ones(shape, bool)
    band = np.zeros_like(tissue)
    band[:rows] = True
    return tissue, band


def _phantom(seed, membrane, orientation="up"):
    # strong rete ridges: 20 µm amplitude (the DEJ swings 40 µm up and down)
    return make_skin_section((320, 500), PX, seed=seed, with_membrane=membrane,
                             orientation=orientation, density_per_mm=0,
                             rete_amplitude_um=20.0, thickness_um=(50.0, 70.0))


@pytest.mark.parametrize("seed,orientation", [(31, "up"), (32, "down")])
def test_dej_follows_collagen_iv_within_3um(seed, orientation):
    ph = _phantom(seed, True, orientation)
    epi = find_epidermis(pixel_size_um=PX, nuclei=ph.channel("DAPI"),
                         membrane=ph.channel("ColIV"), fibre=ph.channel("PGP9.5"))
    assert epi.dej_source == "collagen_iv"
    err = _error_um(epi.dej_um, ph.dej_um, 500 * PX)
    assert np.percentile(err, 95) <= 3.0, np.percentile(err, [50, 95, 100])


def test_dej_bridges_membrane_gap_and_ignores_vessel_wall():
    ph = _phantom(33, True)
    col = ph.channel("ColIV").astype(np.float32)
    base = float(np.median(col))
    # a 25 µm gap in the basement membrane
    x0, x1 = 200, 250
    dej_y = np.interp(np.arange(500) * PX, ph.dej_um[:, 1], ph.dej_um[:, 0]) / PX
    yy = np.arange(col.shape[0])[:, None]
    gap = (np.abs(yy - dej_y[None]) < 6) & (np.arange(500)[None] >= x0) & (
        np.arange(500)[None] < x1)
    col[gap] = base
    # a bright vessel wall 12 µm beneath the DEJ, as bright as the membrane
    cy, cx, r = dej_y[380] + 12 / PX + 8 / PX, 380, 8 / PX
    t = np.linspace(0, 2 * np.pi, 400)
    ry, rx = (cy + r * np.sin(t)).astype(int), (cx + r * np.cos(t)).astype(int)
    ok = (ry >= 0) & (ry < col.shape[0]) & (rx >= 0) & (rx < 500)
    col[ry[ok], rx[ok]] = np.percentile(col, 99.9)
    epi = find_epidermis(pixel_size_um=PX, nuclei=ph.channel("DAPI"), membrane=col,
                         fibre=ph.channel("PGP9.5"))
    err = _error_um(epi.dej_um, ph.dej_um, 500 * PX)
    assert np.percentile(err, 95) <= 3.0 and err.max() <= 5.0, np.percentile(err, [50, 95, 100])


@pytest.mark.parametrize("seed,orientation", [(41, "up"), (42, "down"), (43, "up")])
def test_dej_follows_nuclear_layer_lower_edge_within_5um(seed, orientation):
    ph = _phantom(seed, False, orientation)
    epi = find_epidermis(pixel_size_um=PX, nuclei=ph.channel("DAPI"), fibre=ph.channel("PGP9.5"))
    assert epi.dej_source == "nuclei"
    err = _error_um(epi.dej_um, ph.dej_um, 500 * PX)
    assert np.percentile(err, 95) <= 5.0, np.percentile(err, [50, 95, 100])
    # the rete ridges are followed, not cut across: the DEJ is about as long as the truth
    assert epi.dej_length_um == pytest.approx(ph.dej_length_um, rel=0.1)


def test_min_cost_path_respects_slope_bound_and_bridges():
    cost = np.zeros((50, 40))
    cost[10, :15] = -1
    cost[30, 25:] = -1  # a gap from column 15 to 25 and a 20-row jump
    path = min_cost_path(cost, np.zeros(40, int), np.full(40, 49), max_step=2, step_cost=0.01)
    assert np.all(np.abs(np.diff(path)) <= 2)
    assert np.all(path[:12] == 10) and np.all(path[28:] == 30)


@pytest.mark.parametrize("seed,orientation", [(52, "down"), (53, "up")])
def test_dej_follows_deep_narrow_rete_ridges(seed, orientation):
    # deep narrow rete ridges (15-35 µm deep, steep flanks) that a nuclear estimate cuts
    # across: the collagen IV ridge is searched over the whole depth range
    ph = make_skin_section((360, 800), PX, seed=seed, with_membrane=True, density_per_mm=0,
                           deep_ridges_per_mm=8, thickness_um=(45, 60), orientation=orientation)
    epi = find_epidermis(pixel_size_um=PX, nuclei=ph.channel("DAPI"),
                         membrane=ph.channel("ColIV"), fibre=ph.channel("PGP9.5"))
    err = _error_um(epi.dej_um, ph.dej_um, 800 * PX)
    assert np.percentile(err, 95) <= 3.0, np.percentile(err, [50, 95, 100])


def test_dej_follows_deep_ridge_by_epidermal_autofluorescence():
    # without collagen IV the fibre channel's brighter epidermal level marks the ridge
    ph = make_skin_section((360, 800), PX, seed=53, with_membrane=False, density_per_mm=0,
                           deep_ridges_per_mm=8, thickness_um=(45, 60))
    epi = find_epidermis(pixel_size_um=PX, nuclei=ph.channel("DAPI"), fibre=ph.channel("PGP9.5"))
    err = _error_um(epi.dej_um, ph.dej_um, 800 * PX)
    assert np.percentile(err, 95) <= 5.0, np.percentile(err, [50, 95, 100])


def test_fibre_channel_level_cue_only_where_the_epidermis_is_brighter():
    # a two-level channel: 60 rows of "epidermis" over 140 of "dermis", with noise; the
    # cue marks the level step when the epidermis is brighter, and is absent (not
    # inverted) when the dermis is brighter, as in a bright-field chromogen map
    from histo_fms.skin import SkinParams
    from histo_fms.skin._dej import autofluorescence_edge

    rng = np.random.default_rng(0)
    px, p = 0.5, SkinParams()
    tissue, band = _epidermis_on_top((200, 400), 60)
    lo = np.zeros(400)
    for epi, derm in ((40.0, 10.0), (10.0, 40.0)):
        img = np.where(band, epi, derm) + rng.normal(0, 1.0, tissue.shape)
        e = autofluorescence_edge(img.astype(np.float32), tissue, band, lo_rows=lo, px=px, p=p)
        if epi > derm:
            assert np.all(np.abs(np.argmax(e, 0) - 60) <= 3)
        else:
            assert not e.any()



def test_fibre_channel_level_ignores_side_by_side_fibres_and_keeps_the_step():
    # the epidermis (rows < 60) a little brighter than the dermis; beneath the step four
    # fibres run side by side 2 µm apart (their union, ~8 µm, is wider than the 7 µm
    # opening): the diffuse level must stay the dermal one there and keep the step
    from histo_fms.skin import SkinParams
    from histo_fms.skin._dej import _diffuse_level

    rng = np.random.default_rng(1)
    px, p = 0.5, SkinParams()
    yy = np.arange(200)[:, None] * np.ones((1, 400))
    img = np.where(yy < 60, 30.0, 20.0)
    for off_um in (4.0, 6.0, 8.0, 10.0):
        img = img + 80.0 * np.exp(-0.5 * ((yy - 60 - off_um / px) / (0.5 / px)) ** 2)
    img = img + rng.normal(0, 1.0, img.shape)
    lvl = _diffuse_level(img.astype(np.float32), px, p.nucleus_diameter_um)
    below = lvl[60 + int(4 / px):60 + int(10 / px), 20:-20]
    assert np.median(below) < 23.0, np.median(below)
    # the step is still where it was (half-way crossing within 1.5 µm of row 60)
    col = np.median(lvl[:, 20:-20], axis=1)
    half = np.flatnonzero(col < 25.0)
    assert abs(half[half > 30][0] - 60) * px <= 1.5



def test_fibre_channel_level_cue_not_at_a_bright_dermal_structure_apart_from_the_epidermis():
    # a nerve bundle 15 µm wide, 30 µm beneath the epidermis, as bright as the epidermis:
    # its lower edge is a level step from "epidermal" to dermal too, but it is not the
    # epidermis's edge, so the cue is zero there and stays at the DEJ (row 60)
    from histo_fms.skin import SkinParams
    from histo_fms.skin._dej import autofluorescence_edge

    rng = np.random.default_rng(2)
    px, p = 0.5, SkinParams()
    tissue, band = _epidermis_on_top((240, 400), 60)
    img = np.where(band, 40.0, 10.0)
    img[120:150] = 40.0
    img = img + rng.normal(0, 1.0, tissue.shape)
    e = autofluorescence_edge(img.astype(np.float32), tissue, band, lo_rows=np.zeros(400),
                              px=px, p=p)
    assert np.all(np.abs(np.argmax(e, 0) - 60) <= 3)
    assert e[130:].max() <= 0.05 * e.max()


def test_fibre_channel_level_does_not_depend_on_the_photon_count():
    # epidermis 20 counts, dermis 10 counts above a 100-count offset, recorded with all,
    # half and a quarter of the photons: the diffuse level's step stays the true 10 counts
    # (an opening over noisy pixels had biased the brighter level down: 9.0 / 8.5 / 8.0)
    from histo_fms.skin import SkinParams
    from histo_fms.skin._dej import _diffuse_level

    rng = np.random.default_rng(3)
    sig = np.full((200, 400), 10.0)
    sig[:100] = 20.0
    steps = []
    for f in (1.0, 0.5, 0.25):
        img = 100.0 + rng.poisson(sig * f) / f
        lvl = _diffuse_level(img.astype(np.float32), 0.5, SkinParams().nucleus_diameter_um)
        steps.append(np.median(lvl[20:80, 50:350]) - np.median(lvl[120:180, 50:350]))
    assert np.all(np.abs(np.array(steps) - 10.0) <= 0.75), steps


def test_fibre_channel_level_cue_not_at_the_stratum_corneum_over_a_dim_stretch():
    # a bright stratum corneum (rows 40-60) over an epidermis whose level differs along
    # the section: 1.5 counts above the dermis on the left half, 9 on the right. Against
    # the section's levels the left epidermis is below the mid level, so the corneum's
    # lower edge passed for the DEJ there; judged per column the cue stays at the DEJ
    from histo_fms.skin import SkinParams
    from histo_fms.skin._dej import autofluorescence_edge

    rng = np.random.default_rng(4)
    px, p = 0.5, SkinParams()
    tissue = np.zeros((400, 600), bool)
    tissue[40:] = True
    band = np.zeros_like(tissue)
    band[40:160] = True
    img = np.full(tissue.shape, 113.0)
    img[60:160, :300] = 114.5
    img[60:160, 300:] = 122.0
    img[40:60] = 160.0
    img[:40] = 100.0
    img = img + rng.normal(0, 0.3, img.shape)
    e = autofluorescence_edge(img.astype(np.float32), tissue, band, lo_rows=np.full(600, 70.0),
                              px=px, p=p)
    assert e.any()
    left = np.argmax(e[:, 30:270], 0)  # away from the change of level and the image end
    assert np.all(np.abs(left - 160) <= 4), left
    # the brighter stretch: its step is scaled by its own columns' contrast, so its
    # maximum is at the DEJ too (against the section's typical, smaller, height it was
    # clipped to a plateau reaching up from the DEJ)
    right = np.argmax(e[:, 330:570], 0)
    assert np.all(np.abs(right - 160) <= 4), right


def test_fibre_channel_level_cue_as_strong_under_a_dim_stretch_of_epidermis():
    # the epidermis (rows < 80) 9 counts above the dermis on the left two thirds, 3 on the
    # right third. Scaled by the section's typical step the dim stretch's DEJ scored a
    # third of the bright one's, and a stronger edge deeper down (sub-epidermal fibres, a
    # dermal band) outscored it; scaled by each column's own contrast both score alike
    from histo_fms.skin import SkinParams
    from histo_fms.skin._dej import autofluorescence_edge

    rng = np.random.default_rng(5)
    px, p = 0.5, SkinParams()
    tissue, band = _epidermis_on_top((240, 900), 80)
    img = np.full(tissue.shape, 110.0)
    img[:80, :600] = 119.0
    img[:80, 600:] = 113.0
    img = img + rng.normal(0, 0.3, img.shape)
    e = autofluorescence_edge(img.astype(np.float32), tissue, band, lo_rows=np.zeros(900),
                              px=px, p=p)
    bright, dim = e[:, 40:560].max(0), e[:, 640:860].max(0)
    assert np.all(np.abs(np.argmax(e[:, 640:860], 0) - 80) <= 3)
    assert np.median(dim) >= 0.9 * np.median(bright), (np.median(dim), np.median(bright))
    # and a column with no contrast at all gains no weight from its noise
    flat = img.copy()
    flat[:80, 600:] = 110.0 + rng.normal(0, 0.3, (80, 300))
    e = autofluorescence_edge(flat.astype(np.float32), tissue, band, lo_rows=np.zeros(900),
                              px=px, p=p)
    assert e[:, 700:860].max() <= 0.5 * e[:, 40:560].max()


def test_fibre_channel_level_cue_not_under_a_papilla_at_a_bundle_joined_to_the_epidermis():
    # a dermal papilla (columns 150-250: the epidermis ends at row 30 there, row 60
    # elsewhere) over a nerve bundle (rows 60-80) that blur has joined to the rete ridges
    # on either side: the bundle's lower edge is a step from the epidermal level to the
    # dermal one beneath a bright region joined to the epidermis, so only the nuclear
    # density tells it from the DEJ (no basal keratinocytes above it)
    from histo_fms.skin import SkinParams
    from histo_fms.skin._dej import autofluorescence_edge

    rng = np.random.default_rng(3)
    px, p = 0.5, SkinParams()
    tissue, band = _epidermis_on_top((240, 400), 60)
    band[30:60, 150:250] = False
    img = np.where(band, 40.0, 10.0)
    img[60:80] = 40.0
    img = img + rng.normal(0, 1.0, tissue.shape)
    nuclear = np.where(band, 1.0, 0.1) + rng.normal(0, 0.02, tissue.shape)
    kw = dict(lo_rows=np.zeros(400), px=px, p=p)
    without = autofluorescence_edge(img.astype(np.float32), tissue, band, **kw)
    e = autofluorescence_edge(img.astype(np.float32), tissue, band,
                              nuclear=nuclear.astype(np.float32), **kw)
    # without the nuclear density the bundle's lower edge under the papilla scores as
    # high as a DEJ (and the slope-bounded path takes it rather than dive into the papilla)
    assert without[70:, 170:230].max() >= 0.5 * without.max()
    # with it: nothing at the bundle's edge there, the papilla's own edge (row 30) kept
    assert e[70:, 170:230].max() <= 0.05 * e.max()
    assert np.all(np.abs(np.argmax(e[:, 170:230], 0) - 30) <= 3)
