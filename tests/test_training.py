"""Reviewed labels become cellpose training pairs (training itself needs cellpose)."""

import importlib.util

import numpy as np
import pytest
import tifffile

from histo_fms.batch import run_pipeline
from histo_fms.cli import main
from histo_fms.config import load_config
from histo_fms.io import InputError, read_labels_zarr, write_labels_zarr, write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section
from histo_fms.training import export_training_pairs


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    ph = make_drg_section((192, 192), 0.5, seed=31)
    for i in range(2):
        write_ome_tiff(ph.image, d / f"s{i}.ome.tif", channel_names=ph.channel_names,
                       pixel_size_um=0.5)
    cfg = load_config(None, pipeline="drg", overrides={
        "channels": {"neuron": "NeuN", "igg": "IgG"}, "parallel": {"scheduler": "synchronous"},
        "calibration": {"threshold": 1.5}})
    run_pipeline(cfg, [d / "s0.ome.tif", d / "s1.ome.tif"], d / "out")
    return d / "out", ph


def test_no_reviewed_labels_is_a_clear_error(results, tmp_path):
    out, _ = results
    with pytest.raises(InputError, match="no reviewed neuron labels"):
        export_training_pairs(out, tmp_path / "pairs")


def test_pairs_are_the_reviewed_labels_and_the_neuron_channel(results, tmp_path):
    out, ph = results
    auto = read_labels_zarr(out / "s1" / "labels.zarr")["neurons"]
    edited = auto.copy()
    edited[edited == 1] = 0  # a reviewer deleted neuron 1
    write_labels_zarr({"neurons": edited}, out / "s1" / "reviewed" / "labels.zarr",
                      pixel_size_um=0.5)
    rc = main(["train", str(out), "--out", str(tmp_path), "--export-only"])
    assert rc == 0
    pairs = sorted((tmp_path / "training_pairs").iterdir())
    assert [p.name for p in pairs] == ["s1_img.tif", "s1_masks.tif"]  # s0 was not reviewed
    np.testing.assert_array_equal(tifffile.imread(pairs[1]), edited)
    np.testing.assert_array_equal(tifffile.imread(pairs[0]), ph.channel("NeuN"))


@pytest.mark.skipif(importlib.util.find_spec("cellpose") is None,
                    reason="cellpose not installed; fine-tuning needs cellpose + its weights")
def test_fine_tune_needs_weights(results, tmp_path):
    from histo_fms.segment._cellpose import models_dir

    if not (models_dir() / "cpsam").exists():
        pytest.skip(f"cpsam weights not in {models_dir()} (offline): run histo-fms "
                    "cellpose-fetch where there is internet")
    out, _ = results
    rc = main(["train", str(out), "--out", str(tmp_path), "--epochs", "1",
               "--include-unreviewed"])
    assert rc == 0
    assert any((tmp_path / "models").iterdir())
