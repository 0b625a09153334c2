"""Images without a pixel size are shown in pixels, never in an assumed µm scale."""

import numpy as np
import pytest
import tifffile
from histo_fms.io import InputError, write_ome_tiff

from napari_histo_fms._layers import image_layer_data


def test_no_pixel_size_means_pixel_units(tmp_path):
    p = tmp_path / "plain.tif"
    tifffile.imwrite(p, np.zeros((16, 16), np.uint16))
    layers = image_layer_data(p)
    assert len(layers) == 1
    for _, kw, kind in layers:
        assert kind == "image"
        assert kw["units"] == ("pixel", "pixel") and kw["scale"] == (1.0, 1.0)
        assert kw["metadata"]["histo_fms"]["pixel_size_um"] is None
    # with a pixel size (from the file or given) the layers are in µm
    _, kw, _ = image_layer_data(p, pixel_size_um=0.25)[0]
    assert kw["units"] == ("um", "um") and kw["scale"] == (0.25, 0.25)


def test_implausible_pixel_size_refused(tmp_path):
    p = write_ome_tiff(np.zeros((1, 16, 16), np.uint16), tmp_path / "a.ome.tif",
                       channel_names=["x"], pixel_size_um=0.5)
    with pytest.raises(InputError, match="plausible"):
        image_layer_data(p, pixel_size_um=500.0)


def test_pyramid_levels_of_the_file_are_shown_as_multiscale(tmp_path):
    from histo_fms.io import write_omezarr

    img = np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64)
    p = write_omezarr(img, tmp_path / "p.ome.zarr", channel_names=["NeuN", "IgG"],
                      pixel_size_um=0.5, levels=2, chunk=32)
    layers = image_layer_data(p)
    assert len(layers) == 2
    for (data, kw, _), ch in zip(layers, img, strict=True):
        assert isinstance(data, list) and [d.shape for d in data] == [(64, 64), (32, 32)]
        np.testing.assert_array_equal(np.asarray(data[0]), ch)  # level 0 untouched
        assert kw["scale"] == (0.5, 0.5)
    single = write_ome_tiff(img[:1], tmp_path / "s.ome.tif", channel_names=["x"],
                            pixel_size_um=0.5)
    assert not isinstance(image_layer_data(single)[0][0], list)  # small: one level
