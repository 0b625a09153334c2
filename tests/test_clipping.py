"""Detector clipping is reported, never silently measured as real intensity."""

import json

import numpy as np

from histo_fms.cli import main
from histo_fms.io import write_ome_tiff
from histo_fms.io._clipping import clipped_fraction, clipping_warning
from histo_fms.synthetic.drg import make_drg_section


def test_clipped_fraction_finds_the_detector_ceiling():
    a = np.zeros((100, 100), np.uint16)
    a[:2] = 4095  # 12-bit camera in a uint16 file: 2 % of the pixels clipped
    assert clipped_fraction(a) == (4095, 0.02)
    a[:2] = 4000  # brightest pixels below any ceiling: nothing clipped
    assert clipped_fraction(a) == (None, 0.0)
    assert clipped_fraction(a.astype(np.float32)) == (None, 0.0)
    line = clipping_warning("s.ome.tif", {"igg": [4095, 0.02], "neuron": [None, 0.0]})
    assert line.startswith("s.ome.tif: pixels at the detector's maximum (igg 2.00 % at 4095)")
    assert clipping_warning("s.ome.tif", {"igg": [65535, 0.0001]}) is None


def test_a_run_on_a_clipped_section_warns_and_records_it(tmp_path):
    ph = make_drg_section((256, 256), 0.5, seed=5)
    img = ph.image.copy()
    igg = ph.channel_names.index("IgG")
    img[igg][img[igg] >= np.quantile(img[igg], 0.99)] = 65535  # the brightest 1 % clipped
    write_ome_tiff(img, tmp_path / "clip.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    cfg = tmp_path / "drg.yaml"
    cfg.write_text("pipeline: drg\nchannels: {neuron: NeuN, sgc: GS, igg: IgG, nuclei: DAPI}\n"
                   "calibration: {threshold: 1.0}\nparallel: {scheduler: synchronous}\n")
    out = tmp_path / "out"
    assert main(["run", str(cfg), str(tmp_path / "clip.ome.tif"), "--out", str(out),
                 "-q"]) == 0
    run = json.loads((out / "run.json").read_text())
    [line] = [w for w in run["warnings"] if "detector's maximum" in w]
    assert line.startswith("clip.ome.tif: pixels at the detector's maximum (igg 1.")
    status = json.loads((out / "clip" / "status.json").read_text())
    assert status["summary"]["clipped"]["igg"][0] == 65535
