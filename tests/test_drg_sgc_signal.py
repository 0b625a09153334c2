"""An SGC channel with no structure above its noise is left out, and the section flagged."""

import json

import numpy as np
import pandas as pd
import pytest

from histo_fms._numerics._noise import signal_ratio
from histo_fms.cli import main
from histo_fms.drg import DrgParams, NoSignalError, compute_context, measure_drg
from histo_fms.drg._context import SGC_NO_SIGNAL, sgc_usable
from histo_fms.io import write_ome_tiff
from histo_fms.synthetic.drg import REAL_TISSUE, WIDEFIELD, make_drg_section
from histo_fms.validation import match_instances

PX = 0.9


@pytest.fixture(scope="module")
def section():
    return make_drg_section((320, 320), PX, seed=21, **REAL_TISSUE, **WIDEFIELD)


def _noise(shape, mean, seed=0):
    """A channel of camera noise only (what a blank channel or failed stain records)."""
    return np.random.default_rng(seed).poisson(np.full(shape, mean)).astype(np.uint16)


def _ratio(sgc, px=PX):
    return compute_context({"sgc": sgc}, pixel_size_um=px, lipofuscin=False).sgc_signal_ratio


@pytest.mark.parametrize("mean", [30.0, 3000.0])
def test_white_noise_gives_the_same_small_ratio_at_any_level(mean):
    r = _ratio(_noise((400, 400), mean) + 100)
    assert 0.2 < r < 0.35  # theory 0.27: the level of the noise does not matter


def test_a_real_sheath_stain_stands_far_above_its_noise(section):
    assert _ratio(section.channel("GS")) > 5.0
    # and over all of a constant channel's pixels there is nothing at all
    assert _ratio(np.full((64, 64), 100, np.uint16)) == 0.0
    assert signal_ratio(3.0, (1.0, 1.0)) == np.inf


def test_a_noise_sgc_channel_is_left_out_and_flagged(section):
    nf, igg = section.channel("NeuN"), section.channel("IgG")
    noise = _noise(nf.shape, float(section.channel("GS").mean()))
    bare = measure_drg(nf, igg, pixel_size_um=PX)
    res = measure_drg(nf, igg, pixel_size_um=PX, sgc=noise)
    assert res.qc_flag == SGC_NO_SIGNAL and bare.qc_flag == ""
    assert not sgc_usable(res.context)
    # noise ridges would cut the foreground to pieces (5 objects, none right, before):
    # the section is segmented and measured as without an SGC channel
    np.testing.assert_array_equal(res.neurons, bare.neurons)
    pd.testing.assert_frame_equal(res.table, bare.table)
    assert res.table["sgc_coverage"].isna().all()
    assert len(match_instances(res.neurons, section.labels)) >= 0.4 * section.labels.max()
    # the real stain is used and not flagged
    real = measure_drg(nf, igg, pixel_size_um=PX, sgc=section.channel("GS"))
    assert real.qc_flag == "" and real.table["sgc_coverage"].notna().all()


def test_the_check_can_be_turned_off_and_restricting_rings_to_noise_is_an_error(section):
    nf, igg = section.channel("NeuN"), section.channel("IgG")
    noise = _noise(nf.shape, 200.0)
    off = measure_drg(nf, igg, pixel_size_um=PX, sgc=noise,
                      params=DrgParams(min_signal_ratio=0))
    assert off.qc_flag == "" and off.table["sgc_coverage"].notna().any()
    with pytest.raises(ValueError, match="no structure above its pixel noise"):
        measure_drg(nf, igg, pixel_size_um=PX, sgc=noise,
                    params=DrgParams(restrict_ring_to_sgc=True))
    with pytest.raises(ValueError, match="min_signal_ratio"):
        DrgParams(min_signal_ratio=-1)


def _batch_with_noise(tmp_path, channel, name, seed, tile):
    """Run a two-file batch: ``name`` has ``channel`` replaced by noise, ``good`` is intact.

    Returns the run's exit code and its output folder.
    """
    ph = make_drg_section((256, 256), 0.5, seed=seed)
    img = ph.image.copy()
    k = ph.channel_names.index(channel)
    img[k] = _noise(img[k].shape, float(img[k].mean()), seed=seed)
    for stem, data in ((name, img), ("good", ph.image)):
        write_ome_tiff(data, tmp_path / "in" / f"{stem}.ome.tif",
                       channel_names=ph.channel_names, pixel_size_um=0.5)
    cfg = tmp_path / "drg.yaml"
    par = "{scheduler: synchronous" + (f", tile_size_um: {tile}" if tile else "") + "}"
    cfg.write_text("pipeline: drg\nchannels: {neuron: NeuN, sgc: GS, igg: IgG, nuclei: DAPI}\n"
                   f"parallel: {par}\n")
    out = tmp_path / "out"
    rc = main(["run", str(cfg), str(tmp_path / "in"), "--out", str(out), "-q",
               "--threshold", "1.5"])
    return rc, out


@pytest.mark.parametrize("tile", [None, 96])
def test_a_batch_flags_the_section_in_its_summary_and_warnings(tmp_path, tile):
    rc, out = _batch_with_noise(tmp_path, "GS", "noisy", 508, tile)
    assert rc == 0
    s = pd.read_csv(out / "drg_summary.csv", keep_default_na=False).set_index("image")
    assert s.loc["noisy.ome.tif", "qc_flag"] == SGC_NO_SIGNAL
    assert s.loc["good.ome.tif", "qc_flag"] == ""
    assert int(s.loc["noisy.ome.tif", "n_neurons"]) > 0
    t = pd.read_csv(out / "noisy" / "neurons.csv")
    assert t["sgc_coverage"].isna().all()
    run = json.loads((out / "run.json").read_text())
    lines = [w for w in run["warnings"] if w.startswith("noisy.ome.tif:")]
    assert len(lines) == 1 and "no structure above its pixel noise" in lines[0]
    assert "signal ratio 0.2" in lines[0] and "sgc_coverage is left empty" in lines[0]
    assert not [w for w in run["warnings"] if w.startswith("good.ome.tif:")]
    rec = {f["image"]: f for f in run["files"]}["noisy.ome.tif"]
    assert rec["tiled"] is bool(tile)  # both paths, whole and tiled, took it


@pytest.mark.parametrize("tile", [None, 96])
def test_a_neuron_channel_of_noise_fails_its_file_with_one_line(tmp_path, tile):
    rc, out = _batch_with_noise(tmp_path, "NeuN", "noneuron", 509, tile)
    assert rc == 1  # one file failed, the batch finished
    run = json.loads((out / "run.json").read_text())
    rec = {f["image"]: f for f in run["files"]}
    err = rec["noneuron.ome.tif"]["error"]
    assert err.startswith("noneuron.ome.tif: the neuron channel shows no structure")
    assert "internal error" not in err and "\n" not in err
    assert rec["good.ome.tif"]["status"] == "ok"
    s = pd.read_csv(out / "drg_summary.csv")
    assert list(s["image"]) == ["good.ome.tif"]  # no row of numbers made from noise


def test_a_blank_neuron_channel_still_gives_no_neurons_not_an_error():
    blank = np.full((64, 64), 100, np.uint16)
    res = measure_drg(blank, blank, pixel_size_um=0.5)
    assert res.neurons.max() == 0 and len(res.table) == 0
    with pytest.raises(NoSignalError, match="neuron channel shows no structure"):
        measure_drg(_noise((64, 64), 100.0), blank, pixel_size_um=0.5)
