"""Vendor formats through bioio: CZI written here with pylibCZIrw; ND2/LIF have no writer."""

import numpy as np
import pytest

from histo_fms.io import InputError, read_image, write_ome_tiff

pytest.importorskip("bioio", reason="bioio not installed (pip install 'histo-fms[formats]')")


def test_czi_channels_pixel_size_and_data(tmp_path):
    czi = pytest.importorskip("pylibCZIrw.czi", reason="bioio-czi's writer not installed")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4000, (3, 2, 60, 80), dtype=np.uint16)  # Z, C, Y, X
    p = tmp_path / "section.czi"
    with czi.create_czi(str(p), exist_ok=True) as w:
        for zi in range(3):
            for c in range(2):
                w.write(a[zi, c][..., None], plane={"C": c, "Z": zi})
        w.write_metadata(document_name="t", channel_names={0: "NeuN", 1: "IgG"},
                         scale_x=0.45e-6, scale_y=0.45e-6, scale_z=1e-6)
    img = read_image(p)
    assert img.channel_names == ["NeuN", "IgG"]
    assert img.pixel_size_um == pytest.approx(0.45)
    np.testing.assert_array_equal(img.data.compute(), a.max(axis=0))
    np.testing.assert_array_equal(read_image(p, z=2).data.compute(), a[2])


def test_bioio_forced_on_ome_tiff(tmp_path):
    pytest.importorskip("bioio_ome_tiff")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4000, (2, 40, 50), dtype=np.uint16)
    p = write_ome_tiff(a, tmp_path / "x.ome.tif", channel_names=["GS", "IgG"], pixel_size_um=0.3)
    img = read_image(p, reader="bioio")
    assert img.metadata["reader"] == "bioio"
    assert img.channel_names == ["GS", "IgG"] and img.pixel_size_um == pytest.approx(0.3)
    np.testing.assert_array_equal(img.data.compute(), a)


def test_unreadable_vendor_file_is_one_line_error(tmp_path):
    p = tmp_path / "broken.nd2"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError) as ei:
        read_image(p)
    assert str(ei.value).startswith("broken.nd2: ") and "\n" not in str(ei.value)
