"""Bright-field IHC: colour deconvolution, RGB readers, and the skin pipeline on DAB."""

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage import data

from histo_fms.cli import main
from histo_fms.config import ConfigError, load_config
from histo_fms.io import read_image
from histo_fms.stain import (
    NAMED_STAINS,
    deconvolve,
    estimate_stain_vectors,
    estimate_white_level,
    optical_density,
    stain_matrix,
    vector_angle_deg,
)
from histo_fms.synthetic.brightfield import make_brightfield_skin_section
from histo_fms.synthetic.skin import evaluate_skin

BF_CONFIG = "pipelines/skin_ienfd_brightfield.yaml"


@pytest.mark.parametrize(("seed", "eosin", "px"), [(0, 0.0, 0.5), (1, 0.0, 0.25),
                                                   (2, 0.12, 0.5), (3, 0.12, 0.25),
                                                   (4, 0.25, 0.5), (5, 0.25, 0.35)])
def test_estimated_stain_vectors_match_the_rendered_ones(seed, eosin, px):
    # each section has its own rendered vectors (up to 6° off the named ones) and white
    ph = make_brightfield_skin_section((int(150 / px), int(450 / px)), px, seed=seed,
                                       eosin_od=eosin, vector_jitter_deg=6.0)
    white, note = estimate_white_level(ph.rgb)
    assert note is None
    np.testing.assert_allclose(white, ph.white, atol=4.0)
    od = optical_density(ph.rgb, white)
    m = estimate_stain_vectors(od, pixel_size_um=px)
    assert vector_angle_deg(m[0], ph.stain_vectors[0]) < 5.0  # haematoxylin
    assert vector_angle_deg(m[1], ph.stain_vectors[1]) < 5.0  # DAB
    # the named matrix is off by the rendered jitter: estimation does better
    named = NAMED_STAINS["hed"][0][2]
    assert vector_angle_deg(m[1], ph.stain_vectors[1]) < vector_angle_deg(
        named, ph.stain_vectors[1]) + 1.0
    if eosin >= 0.12:  # Macenko's plane alone mixes the eosin into both estimates
        plain = estimate_stain_vectors(od)
        assert vector_angle_deg(plain[1], ph.stain_vectors[1]) > vector_angle_deg(
            m[1], ph.stain_vectors[1])


def test_real_ihc_deconvolves_into_dab_where_brown():
    ihc = data.immunohistochemistry()  # real DAB + haematoxylin, bundled with scikit-image
    r, g, b = (ihc[..., i].astype(float) for i in range(3))
    brown = (r - b > 40) & (r < 200)
    blue = (b - r > 10)
    assert brown.mean() > 0.05 and blue.mean() > 0.02
    for stains in ("estimate", "hdab"):
        sep = deconvolve(ihc, stains=stains)
        dab, hae = sep.plane("dab"), sep.plane("haematoxylin")
        assert dab[brown].mean() > 5 * dab[blue].mean()
        assert hae[blue].mean() > 1.3 * hae[brown].mean()  # brown cells hold nuclei too
        assert (sep.concentrations >= 0).all()


def test_given_vectors_round_trip_a_rendered_image():
    rng = np.random.default_rng(3)
    m = stain_matrix(NAMED_STAINS["hdab"][0][:2])
    conc = np.stack([rng.uniform(0, 1, (40, 40)), rng.uniform(0, 1, (40, 40)),
                     np.zeros((40, 40))], -1)
    rgb = 250.0 * np.exp(-(conc @ m))
    sep = deconvolve(rgb.astype(np.float32), stains=NAMED_STAINS["hdab"][0][:2].tolist(),
                     white=[250, 250, 250])
    np.testing.assert_allclose(sep.concentrations[..., :2], conc[..., :2], atol=1e-3)


def test_stain_matrix_refuses_parallel_or_negative_vectors():
    with pytest.raises(ValueError, match="parallel"):
        stain_matrix([[0.6, 0.7, 0.3], [0.6, 0.7, 0.3], [0.6, 0.7, 0.30001]])
    with pytest.raises(ValueError, match="non-negative"):
        stain_matrix([[0.6, -0.7, 0.3], [0.2, 0.5, 0.8]])


def _write_ome_rgb(path, rgb, px):
    tifffile.imwrite(path, rgb, photometric="rgb", ome=True,
                     metadata={"axes": "YXS", "PhysicalSizeX": px, "PhysicalSizeY": px})


def test_svs_like_tiled_rgb_tiff_gives_its_mpp_pixel_size(tmp_path):
    rgb = np.full((300, 400, 3), 230, np.uint8)
    p = tmp_path / "scan.svs"
    tifffile.imwrite(p, rgb, photometric="rgb", tile=(256, 256), compression="jpeg",
                     description="Aperio Image Library v12 |AppMag = 40|MPP = 0.2520")
    img = read_image(p)
    from histo_fms.io import image_stem

    assert image_stem(p) == "scan"  # the output folder is named without .svs
    assert img.pixel_size_um == pytest.approx(0.252)
    assert img.metadata["rgb"] and img.channel_names == ["R", "G", "B"]
    assert img.data.shape == (3, 300, 400)


def test_brightfield_batch_counts_crossings_and_records_the_stains(tmp_path):
    ph = make_brightfield_skin_section((400, 1400), 0.5, seed=11, density_per_mm=15.0)
    d = tmp_path / "in"
    d.mkdir()
    _write_ome_rgb(d / "bf1.ome.tif", ph.rgb, 0.5)
    out = tmp_path / "out"
    assert main(["run", BF_CONFIG, str(d), "--out", str(out),
                 "--scheduler", "synchronous"]) == 0
    summ = pd.read_csv(out / "skin_summary.csv")
    assert summ.loc[0, "modality"] == "brightfield"
    assert summ.loc[0, "stain_source"] == "estimated"
    vec = json.loads(summ.loc[0, "stain_vectors"])
    # with the eosin-like tissue stain of the phantom (refined by local contrast)
    assert vector_angle_deg(vec["dab"], ph.stain_vectors[1]) < 5.0
    assert vector_angle_deg(vec["haematoxylin"], ph.stain_vectors[0]) < 5.0
    e = evaluate_skin(ph.skin, pd.read_csv(out / "bf1" / "crossings.csv"))
    assert ph.skin.n_crossings >= 10
    assert abs(e["count_error"]) <= 2
    assert e["precision"] >= 0.85 and e["recall"] >= 0.85
    status = json.loads((out / "bf1" / "status.json").read_text())
    assert "dab" in status["reader"]["brightfield"]["stain_vectors"]


def test_modality_mismatch_is_a_one_line_error(tmp_path, capsys):
    ph = make_brightfield_skin_section((200, 600), 0.5, seed=2)
    d = tmp_path / "in"
    d.mkdir()
    _write_ome_rgb(d / "rgb.ome.tif", ph.rgb, 0.5)
    fluo = np.stack([ph.skin.channel("PGP9.5"), ph.skin.channel("DAPI")])
    tifffile.imwrite(d / "fluo.ome.tif", fluo, ome=True,
                     metadata={"axes": "CYX", "Channel": {"Name": ["PGP9.5", "DAPI"]},
                               "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    assert main(["run", BF_CONFIG, str(d / "fluo.ome.tif"), "--out", str(tmp_path / "o1"),
                 "--scheduler", "synchronous"]) == 1
    err = capsys.readouterr()
    assert "fluo.ome.tif: not an RGB bright-field image" in err.out + err.err
    assert main(["run", "pipelines/skin_ienfd.yaml", str(d / "rgb.ome.tif"), "--out",
                 str(tmp_path / "o2"), "--scheduler", "synchronous"]) == 1
    err = capsys.readouterr()
    assert "rgb.ome.tif: an RGB bright-field image" in err.out + err.err


def test_photograph_needs_a_pixel_size(tmp_path, capsys):
    import imageio.v3 as iio

    ph = make_brightfield_skin_section((300, 900), 0.5, seed=4, density_per_mm=10.0,
                                       jpeg_quality=None)
    p = tmp_path / "photo.jpg"
    iio.imwrite(p, ph.rgb, quality=92)
    assert main(["run", BF_CONFIG, str(p), "--out", str(tmp_path / "o1"),
                 "--scheduler", "synchronous"]) == 1
    err = capsys.readouterr()
    assert "photo.jpg: no pixel size" in err.out + err.err
    assert main(["run", BF_CONFIG, str(p), "--out", str(tmp_path / "o2"),
                 "--pixel-size", "0.5", "--scheduler", "synchronous"]) == 0
    summ = pd.read_csv(tmp_path / "o2" / "skin_summary.csv")
    assert abs(int(summ.loc[0, "n_crossings"]) - ph.skin.n_crossings) <= 2


def test_brightfield_config_is_for_the_skin_pipeline(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pipeline: drg\nbrightfield: {stains: hdab}\n")
    with pytest.raises(ConfigError, match="skin pipeline only"):
        load_config(cfg)
    cfg.write_text("pipeline: skin\nbrightfield: {white_level: [250, 0, 240]}\n")
    with pytest.raises(ConfigError, match="white_level"):
        load_config(cfg)
