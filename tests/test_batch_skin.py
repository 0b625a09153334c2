"""End-to-end skin batch through the CLI: contract outputs, per-file errors, zero fibres."""

import json

import numpy as np
import pandas as pd
import pytest

from histo_fms.cli import main
from histo_fms.io import read_labels_zarr, read_polylines, write_ome_tiff
from histo_fms.synthetic.skin import make_skin_section

CONFIG = """
pipeline: skin
channels: {fibre: PGP9.5, membrane: ColIV, nuclei: DAPI}
parallel: {scheduler: synchronous}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("skin")
    imgs = d / "imgs"
    ph = make_skin_section((400, 1600), 0.5, density_per_mm=20, seed=611)
    write_ome_tiff(ph.image, imgs / "a.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    none = make_skin_section((400, 1600), 0.5, density_per_mm=0, seed=612, orientation="down")
    write_ome_tiff(none.image, imgs / "nofibres.ome.tif", channel_names=none.channel_names,
                   pixel_size_um=0.5)
    dermis = ph.image[:, -120:, :]  # a dermis-only strip: no epidermis
    if ph.orientation == "down":
        dermis = ph.image[:, :120, :]
    write_ome_tiff(np.ascontiguousarray(dermis), imgs / "dermis.ome.tif",
                   channel_names=ph.channel_names, pixel_size_um=0.5)
    sheet = d / "s.csv"
    sheet.write_text("image,subject,group\na.ome.tif,P1,FMS\nnofibres.ome.tif,P2,HC\n")
    cfg = d / "skin.yaml"
    cfg.write_text(CONFIG)
    rc = main(["run", str(cfg), str(imgs), "--out", str(d / "out"), "--samples", str(sheet),
               "-q"])
    return d / "out", ph, rc


def test_outputs_and_counts(run):
    out, ph, rc = run
    assert rc == 1  # the dermis-only file failed, the batch finished
    cr = pd.read_csv(out / "a" / "crossings.csv")
    assert {"y_um", "x_um", "fibre_id"} <= set(cr.columns)
    assert abs(len(cr) - ph.n_crossings) <= max(1, 0.15 * ph.n_crossings)
    lines = read_polylines(out / "a" / "polylines.json")
    assert lines["dej"].shape[1] == 2 and len(lines["surface"]) > 10
    lab = read_labels_zarr(out / "a" / "labels.zarr")
    assert lab["epidermis"].shape == ph.image.shape[1:] and lab["epidermis"].any()
    s = pd.read_csv(out / "skin_summary.csv").set_index("image")
    for col in ["n_crossings", "epidermis_length_mm", "dej_length_mm", "ienfd_per_mm",
                "subject", "group"]:
        assert col in s.columns
    a = s.loc["a.ome.tif"]
    assert a["n_crossings"] == len(cr)
    assert a["epidermis_length_mm"] == pytest.approx(ph.surface_length_um / 1000, rel=0.03)
    assert a["ienfd_per_mm"] == pytest.approx(len(cr) / a["epidermis_length_mm"], rel=1e-4)
    assert s.loc["nofibres.ome.tif", "n_crossings"] == 0
    assert s.loc["nofibres.ome.tif", "ienfd_per_mm"] == 0.0
    assert s.loc["a.ome.tif", "group"] == "FMS"


def test_no_epidermis_is_a_one_line_per_file_error(run):
    out, _, _ = run
    files = {f["image"]: f for f in json.loads((out / "run.json").read_text())["files"]}
    err = files["dermis.ome.tif"]["error"]
    assert files["dermis.ome.tif"]["status"] == "failed"
    assert err.startswith("dermis.ome.tif: no epidermis found") and "\n" not in err
    assert files["a.ome.tif"]["status"] == "ok"
