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


def test_mixed_batch_with_missing_optional_channels_runs_every_file(tmp_path):
    """Default configs, files with and without the optional channels: every file runs."""
    from pathlib import Path

    from histo_fms.synthetic.drg import make_drg_section

    root = Path(__file__).resolve().parents[1] / "pipelines"
    imgs = tmp_path / "skin"
    ph = make_skin_section((300, 500), 0.5, density_per_mm=20, seed=621)
    keep = {"all": ph.channel_names, "nocol": ["PGP9.5", "DAPI"]}
    for name, chans in keep.items():
        idx = [ph.channel_names.index(c) for c in chans]
        write_ome_tiff(np.ascontiguousarray(ph.image[idx]), imgs / f"{name}.ome.tif",
                       channel_names=chans, pixel_size_um=0.5)
    rc = main(["run", str(root / "skin_ienfd.yaml"), str(imgs), "--out", str(tmp_path / "o"),
               "--scheduler", "synchronous", "-q"])
    assert rc == 0
    s = pd.read_csv(tmp_path / "o" / "skin_summary.csv").set_index("image")
    assert s.loc["all.ome.tif", "roles_used"] == "fibre+membrane+nuclei"
    assert s.loc["all.ome.tif", "dej_source"] == "collagen_iv"
    assert s.loc["nocol.ome.tif", "roles_used"] == "fibre+nuclei"
    assert s.loc["nocol.ome.tif", "roles_skipped"] == "membrane=ColIV"
    assert s.loc["nocol.ome.tif", "dej_source"] == "nuclei"
    assert {"dej_to_surface_ratio", "qc_flag"} <= set(s.columns)
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    files = {f["image"]: f for f in run["files"]}
    assert files["nocol.ome.tif"]["roles_skipped"] == "membrane=ColIV"
    assert any("nocol.ome.tif" in w and "membrane" in w for w in run["warnings"])
    # the required role missing stays a one-line error
    write_ome_tiff(np.ascontiguousarray(ph.image[[ph.channel_names.index("DAPI")]]),
                   imgs / "nofibre.ome.tif", channel_names=["DAPI"], pixel_size_um=0.5)
    rc = main(["run", str(root / "skin_ienfd.yaml"), str(imgs / "nofibre.ome.tif"), "--out",
               str(tmp_path / "o2"), "--scheduler", "synchronous", "-q"])
    assert rc == 1
    run = json.loads((tmp_path / "o2" / "run.json").read_text())
    assert "no channel named 'PGP9.5' (role fibre)" in run["failed"][0]

    # DRG: without DAPI, and without the SGC marker and DAPI
    dimgs = tmp_path / "drg"
    d = make_drg_section((256, 256), 0.5, seed=622)
    for name, chans in {"all": d.channel_names, "nonuc": ["NeuN", "GS", "IgG"],
                        "bare": ["NeuN", "IgG"]}.items():
        idx = [d.channel_names.index(c) for c in chans]
        write_ome_tiff(np.ascontiguousarray(d.image[idx]), dimgs / f"{name}.ome.tif",
                       channel_names=chans, pixel_size_um=0.5)
    rc = main(["run", str(root / "drg_sgc_igg.yaml"), str(dimgs), "--out",
               str(tmp_path / "d"), "--scheduler", "synchronous", "-q"])
    assert rc == 0
    s = pd.read_csv(tmp_path / "d" / "drg_summary.csv").set_index("image")
    assert s.loc["all.ome.tif", "roles_used"] == "neuron+igg+sgc+nuclei"
    assert s.loc["nonuc.ome.tif", "roles_used"] == "neuron+igg+sgc"
    assert s.loc["bare.ome.tif", "roles_skipped"] == "sgc=GS+nuclei=DAPI"
