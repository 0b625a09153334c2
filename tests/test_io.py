import pickle

import numpy as np
import pandas as pd
import pytest
import tifffile

from histo_fms.io import (
    InputError,
    atomic_path,
    image_stem,
    match_sample,
    read_image,
    read_labels_scale,
    read_labels_zarr,
    read_polylines,
    read_sample_sheet,
    require_pixel_size,
    resolve_channels,
    write_labels_zarr,
    write_ome_tiff,
    write_polylines,
    write_table,
)

NAMES = ["NeuN", "GS", "IgG", "DAPI"]


@pytest.fixture
def cyx():
    rng = np.random.default_rng(0)
    return rng.integers(0, 4000, size=(4, 200, 300), dtype=np.uint16)


def test_ome_tiff_round_trip_lazy(tmp_path, cyx):
    p = write_ome_tiff(cyx, tmp_path / "a.ome.tif", channel_names=NAMES, pixel_size_um=0.42,
                       tile=64)
    img = read_image(p)
    assert img.channel_names == NAMES
    assert img.pixel_size_um == pytest.approx(0.42)
    assert img.data.shape == (4, 200, 300)
    assert type(img.data).__module__.startswith("dask")
    np.testing.assert_array_equal(img.data.compute(), cyx)
    # picklable for dask.distributed workers
    again = pickle.loads(pickle.dumps(img.data))
    np.testing.assert_array_equal(again[2].compute(), cyx[2])


def test_pyramid_level_and_override(tmp_path, cyx):
    p = write_ome_tiff(cyx, tmp_path / "p.ome.tif", channel_names=NAMES, pixel_size_um=0.5,
                       tile=64, pyramid_levels=2)
    img = read_image(p, level=1)
    assert img.data.shape == (4, 100, 150)
    np.testing.assert_array_equal(img.data.compute(), cyx[:, ::2, ::2])
    img = read_image(p, pixel_size_um=0.7)
    assert img.pixel_size_um == 0.7
    assert img.metadata["file_pixel_size_um"] == pytest.approx(0.5)


def test_ome_pixel_size_in_nm(tmp_path, cyx):
    p = tmp_path / "nm.ome.tif"
    tifffile.imwrite(p, cyx, ome=True, metadata={
        "axes": "CYX", "PhysicalSizeX": 325.0, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 325.0, "PhysicalSizeYUnit": "nm"})
    assert read_image(p).pixel_size_um == pytest.approx(0.325)


def test_non_square_pixels_are_refused_never_read_as_square(tmp_path, cyx):
    # an image with 0.5 x 0.7 µm pixels must not be measured as 0.5 µm square pixels:
    # every area and diameter would be off by the aspect ratio
    p = tmp_path / "aniso.ome.tif"
    tifffile.imwrite(p, cyx, ome=True, metadata={
        "axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.7})
    with pytest.raises(InputError, match=r"aniso\.ome\.tif: pixels are not square "
                                         r"\(0\.5 µm in X, 0\.7 µm in Y\)"):
        read_image(p)
    ij = tmp_path / "aniso_ij.tif"
    tifffile.imwrite(ij, cyx, imagej=True, resolution=(1 / 0.25, 1 / 0.3),
                     metadata={"axes": "CYX", "unit": "micron"})
    with pytest.raises(InputError, match=r"aniso_ij\.tif: pixels are not square"):
        read_image(ij)
    # writers' rounding is not anisotropy; the Greek-mu spelling of µm is µm
    q = tmp_path / "round.ome.tif"
    tifffile.imwrite(q, cyx, ome=True, metadata={
        "axes": "CYX", "PhysicalSizeX": 0.3225, "PhysicalSizeY": 0.32250001,
        "PhysicalSizeXUnit": "\u03bcm", "PhysicalSizeYUnit": "\u03bcm"})
    assert read_image(q).pixel_size_um == pytest.approx(0.3225)


def test_imagej_calibration_and_z_handling(tmp_path):
    rng = np.random.default_rng(1)
    zcyx = rng.integers(0, 1000, size=(3, 2, 40, 50), dtype=np.uint16)
    p = tmp_path / "ij.tif"
    tifffile.imwrite(p, zcyx, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "ZCYX", "unit": "micron"})
    img = read_image(p)
    assert img.pixel_size_um == pytest.approx(0.25)
    np.testing.assert_array_equal(img.data.compute(), zcyx.max(axis=0))
    img1 = read_image(p, z=1)
    np.testing.assert_array_equal(img1.data.compute(), zcyx[1])
    with pytest.raises(InputError, match="ij.tif: z plane 5"):
        read_image(p, z=5)


@pytest.mark.parametrize("unit", ["micron", "\\u00B5m", "um", "nm"])
def test_imagej_units_spelled_as_imagej_writes_them(tmp_path, unit):
    # ImageJ stores µm as the escaped text "\\u00B5m"; units are compared lower-cased
    p = tmp_path / "ij.tif"
    size = 250.0 if unit == "nm" else 0.25
    tifffile.imwrite(p, np.zeros((2, 8, 8), np.uint16), imagej=True,
                     resolution=(1 / size, 1 / size), metadata={"axes": "CYX", "unit": unit})
    assert read_image(p).pixel_size_um == pytest.approx(0.25)


def test_missing_pixel_size_is_an_error_never_a_default(tmp_path):
    p = tmp_path / "plain.tif"
    tifffile.imwrite(p, np.zeros((2, 30, 30), np.uint16))
    img = read_image(p)
    assert img.pixel_size_um is None
    with pytest.raises(InputError, match=r"plain\.tif: no pixel size.*--pixel-size"):
        require_pixel_size(img)
    assert require_pixel_size(read_image(p, pixel_size_um=0.5)) == 0.5


@pytest.mark.parametrize("content", [b"", b"not a tiff at all", b"II*\x00\x08\x00\x00\x00\xff"])
def test_corrupt_tiff_one_line_error(tmp_path, content):
    p = tmp_path / "broken.ome.tif"
    p.write_bytes(content)
    with pytest.raises(InputError) as ei:
        read_image(p).data.compute()
    msg = str(ei.value)
    assert msg.startswith("broken.ome.tif: ")
    assert "\n" not in msg


def test_truncated_tiff(tmp_path, cyx):
    p = write_ome_tiff(cyx, tmp_path / "t.ome.tif", channel_names=NAMES, pixel_size_um=0.5,
                       tile=64)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="t.ome.tif"):
        read_image(p).data.compute()


def test_single_channel_2d(tmp_path):
    p = tmp_path / "gray.tif"
    tifffile.imwrite(p, np.ones((20, 30), np.uint16))
    img = read_image(p)
    assert img.data.shape == (1, 20, 30)
    with pytest.raises(InputError, match=r"gray\.tif: no channel named 'IgG'.*0:C0"):
        resolve_channels(img.channel_names, {"neuron": 0, "igg": "IgG"},
                         required=["neuron", "igg"], path=p)
    with pytest.raises(InputError, match="out of range"):
        resolve_channels(img.channel_names, {"neuron": 0, "igg": 2},
                         required=["neuron", "igg"], path=p)


def test_resolve_channels_by_name_and_index():
    got = resolve_channels(NAMES, {"neuron": "neun", "igg": 2, "sgc": "3"},
                           required=["neuron", "igg"], optional=["sgc", "nuclei"])
    assert got == {"neuron": 0, "igg": 2, "sgc": 3}
    with pytest.raises(InputError, match=r"not mapped.*0:NeuN"):
        resolve_channels(NAMES, {"neuron": "NeuN"}, required=["neuron", "igg"])
    with pytest.raises(InputError, match="unknown channel role"):
        resolve_channels(NAMES, {"neuron": 0, "igg": 1, "dye": 2}, required=["neuron", "igg"])


def test_a_channel_name_shared_by_two_channels_is_an_error_not_a_guess(tmp_path):
    names = ["NeuN", "GS", "igg", "IgG"]  # e.g. two exports of one dye, case differing
    with pytest.raises(InputError, match=r"x\.tif: channel name 'IgG' \(role igg\) matches "
                                         r"channels 2 and 3 .*by index"):
        resolve_channels(names, {"neuron": "NeuN", "igg": "IgG"}, required=["neuron", "igg"],
                         path=tmp_path / "x.tif")
    # by index it is unambiguous; other roles' unique names still resolve
    got = resolve_channels(names, {"neuron": "neun", "igg": 3, "sgc": "GS"},
                           required=["neuron"], optional=["igg", "sgc"])
    assert got == {"neuron": 0, "igg": 3, "sgc": 1}


def test_image_stem():
    assert image_stem("/x/a.ome.tif") == "a"
    assert image_stem("b.tiff") == "b"
    assert image_stem("c.OME.TIFF") == "c"


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    p = tmp_path / "t.csv"
    write_table(pd.DataFrame({"a": [1, 2]}), p)
    before = p.read_text()
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half a tab")
            raise RuntimeError("killed")
    assert p.read_text() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["t.csv"]


def test_labels_zarr_round_trip_and_replace(tmp_path):
    lab = np.zeros((50, 60), np.int32)
    lab[10:20, 10:20] = 7
    mask = lab > 0
    p = write_labels_zarr({"neurons": lab, "mask": mask}, tmp_path / "labels.zarr",
                          pixel_size_um=0.5)
    got = read_labels_zarr(p)
    np.testing.assert_array_equal(got["neurons"], lab)
    np.testing.assert_array_equal(got["mask"].astype(bool), mask)
    assert read_labels_scale(p) == 0.5
    write_labels_zarr({"neurons": lab * 2}, p, pixel_size_um=0.5)
    got = read_labels_zarr(p)
    assert list(got) == ["neurons"] and got["neurons"].max() == 14
    assert sorted(x.name for x in tmp_path.iterdir()) == ["labels.zarr"]


def test_polylines_round_trip(tmp_path):
    dej = np.array([[1.0, 2.0], [3.5, 4.25]])
    p = write_polylines({"dej": dej, "surface": None}, tmp_path / "lines.json")
    got = read_polylines(p)
    np.testing.assert_allclose(got["dej"], dej)
    assert got["surface"].shape == (0, 2)


def test_sample_sheet(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("image,subject,group,control\na.ome.tif,S1,FMS,no\nb.ome.tif,S2,ctrl,TRUE\n")
    s = read_sample_sheet(p)
    assert s["control"].tolist() == [False, True]
    assert match_sample(s, tmp_path / "b.ome.tif", "b")["group"] == "ctrl"
    assert match_sample(s, tmp_path / "zzz.tif", "zzz") is None
    p.write_text("image,control\na.tif,maybe\n")
    with pytest.raises(InputError, match="control"):
        read_sample_sheet(p)
    p.write_text("file,group\na.tif,x\n")
    with pytest.raises(InputError, match="'image' column"):
        read_sample_sheet(p)


def test_omezarr_round_trip_with_levels(tmp_path, cyx):
    from histo_fms.io import read_omezarr, write_omezarr

    p = write_omezarr(cyx, tmp_path / "img.ome.zarr", channel_names=NAMES, pixel_size_um=0.65,
                      levels=2, chunk=64, labels={"neurons": (cyx[0] > 3000).astype("int32")})
    img = read_image(p)
    assert img.channel_names == NAMES and img.pixel_size_um == pytest.approx(0.65)
    np.testing.assert_array_equal(img.data.compute(), cyx)
    low = read_omezarr(p, level=1)
    assert low.data.shape == (4, 100, 150) and low.pixel_size_um == pytest.approx(1.3)
    import zarr

    root = zarr.open_group(str(p), mode="r")
    assert root.attrs["multiscales"][0]["axes"][1]["unit"] == "micrometer"
    assert root["labels/neurons/0"].shape == (200, 300)
