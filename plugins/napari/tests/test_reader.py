"""Readers: images as channel layers in µm; results folders as labels/points/shapes."""

import numpy as np
import pytest

from napari_histo_fms import get_image_reader, get_results_reader
from napari_histo_fms._layers import COLOURS


def test_image_reader(tmp_path):
    from plugin_testdata import write_drg_inputs

    (path,) = write_drg_inputs(tmp_path, ["drgimg_m1_fms"])
    reader = get_image_reader(str(path))
    assert callable(reader)
    layers = reader(str(path))
    assert [kw["name"] for _, kw, _ in layers] == ["NeuN", "GS", "IgG", "DAPI"]
    for data, kw, kind in layers:
        assert kind == "image" and kw["scale"] == (0.5, 0.5) and data.shape == (256, 256)


@pytest.mark.parametrize("name", ["notes.txt", "broken.tif", "missing.tif", "folder"])
def test_readers_return_none_for_foreign_paths(tmp_path, name):
    p = tmp_path / name
    if name == "notes.txt":
        p.write_text("hello")
    elif name == "broken.tif":
        p.write_bytes(b"not a tiff at all")
    elif name == "folder":
        p.mkdir()
        (p / "a.txt").write_text("x")
    assert get_image_reader(str(p)) is None
    assert get_results_reader(str(p)) is None
    assert get_results_reader([str(p), str(p)]) is None


def test_results_reader_drg(drg_out):
    stem = "drgimg_m1_fms"
    for target in (drg_out, drg_out / stem, drg_out / "run.json"):
        reader = get_results_reader(str(target))
        assert callable(reader), target
    layers = {kw["name"]: (d, kw, k) for d, kw, k in reader(str(drg_out / stem))}
    assert {"NeuN", "GS", "IgG", "DAPI", "neurons", "rings"} <= set(layers)
    data, kw, kind = layers["neurons"]
    assert kind == "labels" and kw["scale"] == (0.5, 0.5)
    import pandas as pd

    table = pd.read_csv(drg_out / stem / "neurons.csv")
    for _, row in table.iterrows():
        want = COLOURS["positive"] if row["igg_positive"] else COLOURS["negative"]
        if row["touches_border"]:  # left out of the summary: drawn apart
            want = COLOURS["border"]
        assert kw["colormap"][int(row["neuron_id"])] == want
    feats = kw["features"].set_index("index")
    np.testing.assert_allclose(feats.loc[table["neuron_id"], "ring_igg"],
                               table["ring_igg"].round(3))


def test_results_reader_in_viewer(make_napari_viewer, drg_out, skin_out):
    viewer = make_napari_viewer()
    viewer.open(str(drg_out), plugin="napari-histo-fms")
    names = [layer.name for layer in viewer.layers]
    assert "neurons" in names and "NeuN" in names
    np.testing.assert_allclose(viewer.layers["neurons"].scale, [0.5, 0.5])
    np.testing.assert_allclose(viewer.layers["NeuN"].scale, [0.5, 0.5])
    viewer.layers.clear()
    viewer.open(str(skin_out / "skin_a"), plugin="napari-histo-fms")
    pts = viewer.layers["crossings"]
    np.testing.assert_allclose(pts.data[:, 1], [20, 60, 100, 140, 180])  # µm
    dej = viewer.layers["DEJ"]
    assert dej.shape_type == ["path"]
    np.testing.assert_allclose(dej.data[0], [[30.0, 0.0], [30.0, 199.5]])
    np.testing.assert_allclose(viewer.layers["fibres"].scale, [0.5, 0.5])


def test_sample_data():
    from napari_histo_fms import make_drg_sample

    layers = make_drg_sample()
    assert [kw["name"] for _, kw, _ in layers] == ["NeuN", "GS", "IgG", "DAPI"]
    assert all(kw["scale"] == (0.5, 0.5) for _, kw, _ in layers)


def test_skin_sample_and_real_skin_results(make_napari_viewer, tmp_path):
    from histo_fms.batch import run_pipeline
    from histo_fms.config import load_config
    from histo_fms.io import write_ome_tiff
    from histo_fms.synthetic.skin import make_skin_section

    from napari_histo_fms import make_skin_sample

    layers = make_skin_sample()
    assert [kw["name"] for _, kw, _ in layers] == ["PGP9.5", "ColIV", "DAPI"]
    ph = make_skin_section((300, 800), 0.5, density_per_mm=15, seed=2)
    p = write_ome_tiff(ph.image, tmp_path / "skin_x.ome.tif", channel_names=ph.channel_names,
                       pixel_size_um=0.5)
    cfg = load_config(None, pipeline="skin", overrides={
        "channels": {"fibre": "PGP9.5", "membrane": "ColIV", "nuclei": "DAPI"},
        "parallel": {"scheduler": "synchronous"}})
    run_pipeline(cfg, [p], tmp_path / "out")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "out"), plugin="napari-histo-fms")
    names = [layer.name for layer in viewer.layers]
    assert {"PGP9.5", "epidermis", "fibres", "crossings", "DEJ", "surface"} <= set(names)
    import pandas as pd

    cr = pd.read_csv(tmp_path / "out" / "skin_x" / "crossings.csv")
    np.testing.assert_allclose(viewer.layers["crossings"].data, cr[["y_um", "x_um"]], atol=1e-4)
    # the image and the lines overlay in world (µm) coordinates
    extent = viewer.layers["PGP9.5"].extent.world
    assert extent[1][1] == pytest.approx(799 * 0.5, abs=0.5)
    assert viewer.layers["DEJ"].data[0][:, 1].max() <= extent[1][1] + 1


def test_brightfield_rgb_scan_opens_as_one_rgb_layer(tmp_path):
    import tifffile
    from histo_fms.synthetic.brightfield import make_brightfield_skin_section

    ph = make_brightfield_skin_section((200, 500), 0.5, seed=1)
    p = tmp_path / "scan.svs"
    tifffile.imwrite(p, ph.rgb, photometric="rgb", tile=(128, 128),
                     description="Aperio Image Library |MPP = 0.5")
    layers = get_image_reader(str(p))(str(p))
    assert len(layers) == 1
    data, kw, kind = layers[0]
    assert kind == "image" and kw["rgb"] is True and kw["scale"] == (0.5, 0.5)
    np.testing.assert_array_equal(np.asarray(data), ph.rgb)
