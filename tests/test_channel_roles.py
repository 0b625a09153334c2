"""One channel given for two roles is an error (``--channel igg=NeuN``), not a silent run."""

import json

import pytest

from histo_fms.cli import main
from histo_fms.io import InputError, resolve_channels, write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section

NAMES = ["NeuN", "IgG", "GS", "DAPI"]


def test_same_channel_for_two_roles_raises():
    with pytest.raises(InputError, match=r"channel 0:NeuN is given for two roles") as e:
        resolve_channels(NAMES, {"neuron": "NeuN", "igg": "neun"}, required=["neuron", "igg"],
                         path="x.tif")
    assert "\n" not in str(e.value) and "x.tif" in str(e.value)
    with pytest.raises(InputError, match="two roles"):
        resolve_channels(NAMES, {"neuron": 0, "igg": 1, "sgc": "1"},
                         required=["neuron", "igg"], optional=["sgc"])


def test_cli_run_with_duplicate_role_fails_the_file(tmp_path):
    ph = make_drg_section((128, 128), 0.5, seed=5)
    img = write_ome_tiff(ph.image, tmp_path / "a.ome.tif", channel_names=ph.channel_names,
                         pixel_size_um=0.5)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pipeline: drg\nchannels: {neuron: NeuN, igg: IgG}\n"
                   "parallel: {scheduler: synchronous}\n")
    rc = main(["run", str(cfg), str(img), "--out", str(tmp_path / "o"), "-q",
               "--channel", "igg=NeuN"])
    assert rc != 0
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    err = run["files"][0]["error"]
    assert run["files"][0]["status"] == "failed" and "two roles" in err and "\n" not in err
