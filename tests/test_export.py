"""QuPath GeoJSON and OME-Zarr exports of a real DRG run."""

import json

import numpy as np
import pandas as pd
import pytest

from histo_fms.batch import run_pipeline
from histo_fms.cli import main
from histo_fms.config import load_config
from histo_fms.export import label_polygons, qupath_features
from histo_fms.io import read_labels_zarr, read_omezarr, write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section


@pytest.fixture(scope="module")
def drg_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("exp")
    ph = make_drg_section((256, 256), 0.5, seed=77, positive_fraction=0.5)
    img = write_ome_tiff(ph.image, d / "s1.ome.tif", channel_names=ph.channel_names,
                         pixel_size_um=0.5)
    cfg = load_config(None, pipeline="drg", overrides={
        "channels": {"neuron": "NeuN", "igg": "IgG", "sgc": "GS"},
        "parallel": {"scheduler": "synchronous"}, "calibration": {"threshold": 1.6}})
    run_pipeline(cfg, [img], d / "out")
    return d / "out"


def _shoelace(ring):
    r = np.asarray(ring)
    return 0.5 * np.sum(r[:-1, 0] * r[1:, 1] - r[1:, 0] * r[:-1, 1])


def test_label_polygons_geometry():
    lab = np.zeros((40, 50), int)
    lab[5:25, 10:30] = 1  # 20 x 20 square
    lab[30:35, 40:48] = 2
    polys = label_polygons(lab)
    ring = np.asarray(polys[1])
    assert np.allclose(ring[0], ring[-1])
    xs, ys = ring[:, 0], ring[:, 1]
    # boundary passes half a pixel inside the outer edge at most
    assert xs.min() >= 10 and xs.max() <= 30 and ys.min() >= 5 and ys.max() <= 25
    assert _shoelace(ring) == pytest.approx(400, rel=0.03)
    assert _shoelace(polys[2]) > 0  # counter-clockwise in (x, y)


def test_qupath_geojson_structure_and_content(drg_run, tmp_path):
    rc = main(["export", str(drg_run), "--to", "qupath", "--dest", str(tmp_path)])
    assert rc == 0
    fc = json.loads((tmp_path / "s1.geojson").read_text())  # strict JSON: no NaN
    assert fc["type"] == "FeatureCollection"
    table = pd.read_csv(drg_run / "s1" / "neurons.csv")
    labels = read_labels_zarr(drg_run / "s1" / "labels.zarr")["neurons"]
    dets = [f for f in fc["features"] if f["properties"]["objectType"] == "detection"]
    assert len(dets) == len(table)
    n_pos = int((table["igg_positive"] & ~table["touches_border"]).sum())
    assert sum(f["properties"]["classification"]["name"] == "IgG+" for f in dets) == n_pos
    for f in dets:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
        ring = f["geometry"]["coordinates"][0]
        assert len(ring) >= 4 and ring[0] == ring[-1]
        nid = f["properties"]["measurements"]["neuron_id"]
        area = (labels == nid).sum()
        assert _shoelace(ring) == pytest.approx(area, rel=0.15)
        row = table[table["neuron_id"] == nid].iloc[0]
        assert f["properties"]["measurements"]["ring_igg"] == pytest.approx(row["ring_igg"],
                                                                            rel=1e-5)
        c = f["properties"]["classification"]
        assert isinstance(c["name"], str) and len(c["color"]) == 3


def test_points_and_lines_in_pixels():
    cr = pd.DataFrame({"y_um": [10.0], "x_um": [20.0], "fibre_id": [3]})
    fc = qupath_features(pixel_size_um=0.5, crossings=cr,
                         lines={"dej": np.array([[0.0, 0.0], [5.0, 10.0]])})
    pt, line = fc["features"]
    assert pt["geometry"] == {"type": "Point", "coordinates": [40.5, 20.5]}
    assert line["geometry"]["coordinates"] == [[0.5, 0.5], [20.5, 10.5]]
    assert line["properties"]["classification"]["name"] == "DEJ"


def test_omezarr_export_round_trip(drg_run, tmp_path):
    rc = main(["export", str(drg_run), "--to", "omezarr", "--dest", str(tmp_path)])
    assert rc == 0
    img = read_omezarr(tmp_path / "s1.ome.zarr")
    assert img.channel_names == ["NeuN", "GS", "IgG", "DAPI"] and img.pixel_size_um == 0.5
    import zarr

    root = zarr.open_group(str(tmp_path / "s1.ome.zarr"), mode="r")
    got = np.asarray(root["labels/neurons/0"][...])
    want = read_labels_zarr(drg_run / "s1" / "labels.zarr")["neurons"]
    np.testing.assert_array_equal(got, want)


def test_omezarr_export_read_by_ome_zarr_library(drg_run, tmp_path):
    """The reader behind napari-ome-zarr sees the image pyramid, channels and labels."""
    pytest.importorskip("ome_zarr", reason="ome-zarr not installed")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    main(["export", str(drg_run), "--to", "omezarr", "--dest", str(tmp_path)])
    nodes = list(Reader(parse_url(str(tmp_path / "s1.ome.zarr")))())
    image = nodes[0]
    assert image.metadata["channel_names"] == ["NeuN", "GS", "IgG", "DAPI"]
    assert image.data[0].shape == (4, 256, 256)
    labels = [n for n in nodes if "Label" in [type(s).__name__ for s in n.specs]]
    names = {n.metadata.get("name") for n in labels}
    assert {"neurons", "rings"} <= names
    want = read_labels_zarr(drg_run / "s1" / "labels.zarr")["neurons"]
    got = next(n for n in labels if n.metadata.get("name") == "neurons").data[0]
    np.testing.assert_array_equal(np.asarray(got), want)


def test_qupath_classes_leave_an_unmeasured_ring_uncalled():
    lab = np.zeros((40, 60), int)
    for k in range(5):
        lab[10:20, 2 + 12 * k: 10 + 12 * k] = k + 1
    table = pd.DataFrame({"neuron_id": [1, 2, 3, 4, 5],
                          "igg_positive": pd.array([True, False, pd.NA, True, False],
                                                   dtype="boolean"),
                          "touches_border": [False, False, False, True, False],
                          "excluded": [False, False, False, False, True]})
    names = {f["properties"]["measurements"]["neuron_id"]:
             f["properties"]["classification"]["name"]
             for f in qupath_features(pixel_size_um=0.5, neurons=lab, table=table)["features"]}
    assert names == {1: "IgG+", 2: "IgG-", 3: "Uncalled", 4: "Border", 5: "Excluded"}
    # read back from a CSV (blank call), and without any call column: nothing is "IgG-"
    table["igg_positive"] = ["True", "False", "", "True", "False"]
    got = qupath_features(pixel_size_um=0.5, neurons=lab, table=table)["features"]
    assert got[2]["properties"]["classification"]["name"] == "Uncalled"
    got = qupath_features(pixel_size_um=0.5, neurons=lab, table=table.drop(
        columns=["igg_positive", "excluded", "touches_border"]))["features"]
    assert {f["properties"]["classification"]["name"] for f in got} == {"Uncalled"}


def test_damaged_labels_listed_and_the_rest_exported(tmp_path, capsys):
    import tifffile

    from histo_fms.io import InputError, read_labels_scale

    imgs = []
    for i in (1, 2):
        ph = make_drg_section((128, 128), 0.5, seed=80 + i)
        imgs.append(write_ome_tiff(ph.image, tmp_path / f"s{i}.ome.tif",
                                   channel_names=ph.channel_names, pixel_size_um=0.5))
    cfg = load_config(None, pipeline="drg", overrides={
        "channels": {"neuron": "NeuN", "igg": "IgG", "sgc": "GS"},
        "parallel": {"scheduler": "synchronous"}, "calibration": {"threshold": 1.6}})
    out = tmp_path / "out"
    run_pipeline(cfg, imgs, out)
    (out / "s1" / "labels.zarr" / ".zgroup").write_text("junk")  # damaged on disk
    with pytest.raises(InputError, match=r"^s1/labels\.zarr: cannot read the label images"):
        read_labels_zarr(out / "s1" / "labels.zarr")
    with pytest.raises(InputError, match=r"^s1/labels\.zarr: "):
        read_labels_scale(out / "s1" / "labels.zarr")
    rc = main(["export", str(out), "--to", "qupath", "--dest", str(tmp_path / "q")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "1 image(s) not exported" in err and "s1: s1/labels.zarr: cannot read" in err
    assert (tmp_path / "q" / "s2.geojson").exists()
    assert not (tmp_path / "q" / "s1.geojson").exists()
    # validate lists it under its labels, not under the reference
    ref = tmp_path / "ref"
    ref.mkdir()
    for s in ("s1", "s2"):
        tifffile.imwrite(ref / f"{s}.tif", np.zeros((128, 128), np.uint8))
    assert main(["validate", str(out), "--reference", str(ref)]) == 0
    err = capsys.readouterr().err
    assert "s1: s1/labels.zarr: cannot read the label images" in err
