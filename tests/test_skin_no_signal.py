"""A collagen IV or nuclear channel of noise only is left out, and the section flagged."""

import json

import numpy as np
import pandas as pd
import pytest

from histo_fms._numerics._noise import channel_signal_ratio
from histo_fms.cli import main
from histo_fms.io import write_ome_tiff
from histo_fms.skin import NoEpidermisError, SkinParams, analyze_skin, summarize
from histo_fms.synthetic.skin import evaluate_skin, make_skin_section

PX = 0.5


@pytest.fixture(scope="module")
def section():
    # seed 3: with a noise ColIV channel the DEJ followed noise ridges and 29 crossings
    # were counted of 16 (before 2026-12-04, unflagged)
    return make_skin_section((600, 2000), PX, seed=3)


def _noise(like, seed=0):
    rng = np.random.default_rng(seed)
    return rng.poisson(np.full(like.shape, float(like.mean()))).astype(np.uint16)


def test_real_stains_stand_far_above_their_noise(section):
    for name in ("ColIV", "DAPI", "PGP9.5"):
        assert channel_signal_ratio(section.channel(name)) > 5.0, name
    assert 0.2 < channel_signal_ratio(_noise(section.channel("DAPI"))) < 0.35


def test_a_noise_membrane_channel_is_left_out_and_flagged(section):
    fib, dapi = section.channel("PGP9.5"), section.channel("DAPI")
    noisy = analyze_skin(fib, pixel_size_um=PX, membrane=_noise(section.channel("ColIV")),
                         nuclei=dapi)
    without = analyze_skin(fib, pixel_size_um=PX, nuclei=dapi)
    s = summarize(noisy)
    assert s["qc_flag"].split(";")[0] == "membrane_no_signal"
    assert s["dej_source"] == "nuclei"
    # the section is measured exactly as without the channel, and right
    assert s["n_crossings"] == summarize(without)["n_crossings"]
    np.testing.assert_array_equal(noisy.dej_um, without.dej_um)
    m = evaluate_skin(section, noisy.crossings)
    assert m["recall"] >= 0.8 and m["precision"] >= 0.8
    # the real channel is used and not flagged; the check can be turned off
    real = summarize(analyze_skin(fib, pixel_size_um=PX, membrane=section.channel("ColIV"),
                                  nuclei=dapi))
    assert real["dej_source"] == "collagen_iv" and "no_signal" not in real["qc_flag"]
    off = analyze_skin(fib, pixel_size_um=PX, membrane=_noise(section.channel("ColIV")),
                       nuclei=dapi, params=SkinParams(min_signal_ratio=0))
    assert off.dej_source == "collagen_iv" and "no_signal" not in summarize(off)["qc_flag"]


def test_a_noise_nuclear_channel_falls_back_or_says_why(section):
    fib = section.channel("PGP9.5")
    noise = _noise(section.channel("DAPI"), seed=1)
    try:
        res = analyze_skin(fib, pixel_size_um=PX, nuclei=noise)
    except NoEpidermisError as exc:  # autofluorescence alone may not suffice: say why
        assert "nuclei left out: no structure above their pixel noise" in str(exc)
    else:
        assert res.dej_source == "autofluorescence"
        assert "nuclei_no_signal" in summarize(res)["qc_flag"]


def test_a_skin_batch_warns_and_flags(tmp_path, section):
    img = section.image.copy()
    k = section.channel_names.index("ColIV")
    img[k] = _noise(img[k], seed=2)
    write_ome_tiff(img, tmp_path / "in" / "noisy.ome.tif",
                   channel_names=section.channel_names, pixel_size_um=PX)
    cfg = tmp_path / "skin.yaml"
    cfg.write_text("pipeline: skin\nchannels: {fibre: PGP9.5, membrane: ColIV, nuclei: DAPI}\n"
                   "parallel: {scheduler: synchronous}\n")
    out = tmp_path / "out"
    assert main(["run", str(cfg), str(tmp_path / "in"), "--out", str(out), "-q"]) == 0
    s = pd.read_csv(out / "skin_summary.csv", keep_default_na=False).iloc[0]
    assert s["qc_flag"].startswith("membrane_no_signal") and s["dej_source"] == "nuclei"
    run = json.loads((out / "run.json").read_text())
    lines = [w for w in run["warnings"] if w.startswith("noisy.ome.tif:")]
    assert len(lines) == 1
    assert "membrane channel shows no structure above its pixel noise" in lines[0]
    assert "the DEJ was placed without it" in lines[0]
