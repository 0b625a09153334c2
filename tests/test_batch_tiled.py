"""`histo-fms run` on a section processed in tiles gives the same outputs as untiled."""

import json

import numpy as np
import pandas as pd

from histo_fms.cli import main
from histo_fms.io import read_labels_zarr, write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section

BASE = """
pipeline: drg
channels: {neuron: NeuN, igg: IgG, sgc: GS}
calibration: {threshold: 1.1}
"""


def test_tiled_run_equals_untiled_run(tmp_path):
    ph = make_drg_section((640, 640), 0.5, seed=321)
    img = write_ome_tiff(ph.image, tmp_path / "big.ome.tif", channel_names=ph.channel_names,
                         pixel_size_um=0.5)
    tiled = tmp_path / "tiled.yaml"
    tiled.write_text(BASE + "parallel: {scheduler: synchronous, tile_size_um: 192}\n")
    whole = tmp_path / "whole.yaml"
    whole.write_text(BASE + "parallel: {scheduler: synchronous, tile_size_um: 100000}\n")
    assert main(["run", str(tiled), str(img), "--out", str(tmp_path / "t"), "-q"]) == 0
    assert main(["run", str(whole), str(img), "--out", str(tmp_path / "w"), "-q"]) == 0
    st = json.loads((tmp_path / "t" / "big" / "status.json").read_text())
    assert st["summary"]["tiled"] is True
    sw = json.loads((tmp_path / "w" / "big" / "status.json").read_text())
    assert sw["summary"]["tiled"] is False
    a = pd.read_csv(tmp_path / "t" / "big" / "neurons.csv")
    b = pd.read_csv(tmp_path / "w" / "big" / "neurons.csv")
    assert len(a) > 20
    pd.testing.assert_frame_equal(a, b, rtol=1e-6)
    la = read_labels_zarr(tmp_path / "t" / "big" / "labels.zarr")
    lb = read_labels_zarr(tmp_path / "w" / "big" / "labels.zarr")
    for name in ("neurons", "rings"):
        np.testing.assert_array_equal(la[name], lb[name])
    assert (tmp_path / "t" / "drg_summary.csv").read_bytes() == (
        tmp_path / "w" / "drg_summary.csv").read_bytes()
