"""A channel quantised to a few grey levels is refused, never measured as a finding."""

import json

import numpy as np
import pytest

from histo_fms.cli import main
from histo_fms.io import write_ome_tiff
from histo_fms.io._levels import (
    MIN_GREY_LEVELS,
    NO_LEVELS,
    add_level_blocks,
    coarse_levels_error,
    grey_levels,
    level_block,
)
from histo_fms.synthetic.drg import make_drg_section
from histo_fms.synthetic.skin import make_skin_section


def _blocks(a, ny, nx):
    return [b for rows in np.array_split(a, ny, axis=0)
            for b in np.array_split(rows, nx, axis=1)]


def test_levels_count_the_values_of_the_central_pixels():
    rng = np.random.default_rng(0)
    photons = rng.poisson(60, (200, 300)).astype(np.uint16) + 100
    n, _ = grey_levels([level_block(photons)])
    assert n >= 40  # shot noise alone spreads a real channel over many levels
    coarse = photons // 64  # 160 +- 8 counts -> 2 or 3 values
    coarse[3, 4] = 1000  # hot pixels and debris do not make it measurable
    coarse[5:8, 9] = np.arange(3) * 300
    n, values = grey_levels([level_block(coarse)])
    assert n <= 3 and set(values) <= {1.0, 2.0, 3.0}
    # a gappy export (8-bit data stored x 256 in 16 bits) keeps its levels
    n, _ = grey_levels([level_block((photons % 256).astype(np.uint16) * 256)])
    assert n >= 40
    # signed and 32-bit integers, floats: the same count
    assert grey_levels([level_block(coarse.astype(np.int16) - 5)])[0] == \
        grey_levels([level_block(coarse)])[0]
    assert grey_levels([level_block(coarse.astype(np.int32))])[0] == \
        grey_levels([level_block(coarse)])[0]
    assert grey_levels([level_block(np.array([[0.0, 1.0], [1.0, 1.0]]))]) == (2, [0.0, 1.0])
    assert grey_levels([level_block(photons.astype(np.float32))]) is None  # many values
    assert grey_levels([NO_LEVELS]) is None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_blocks_give_the_whole_channels_levels(dtype):
    rng = np.random.default_rng(1)
    for scale in (1, 8, 20):  # many levels, a handful, a few
        a = (rng.poisson(40, (97, 61)) // scale).astype(dtype)
        a[rng.random(a.shape) < 0.003] = 200  # a few outliers, all in some blocks
        blocks = _blocks(a, 4, 3)
        whole = grey_levels([level_block(a)])
        assert grey_levels(map(level_block, blocks)) == whole
        parts = [level_block(b) for b in blocks[::-1]]  # a tree sum in any grouping
        left = add_level_blocks(add_level_blocks(parts[0], parts[1]), parts[2])
        right = add_level_blocks(parts[0], add_level_blocks(parts[1], parts[2]))
        assert grey_levels([left, *parts[3:]]) == grey_levels([right, *parts[3:]]) == whole


def test_the_problem_names_each_coarse_role_and_spares_blank_ones():
    levels = {"fibre": (2, [0.0, 1.0]), "nuclei": (40, [1.0]), "membrane": None,
              "igg": (1, [100.0])}
    line = coarse_levels_error(levels, constant=["igg"])
    assert "fibre: 2 levels (0, 1)" in line and "nuclei" not in line and "igg" not in line
    assert f"at least {MIN_GREY_LEVELS} needed" in line and "\n" not in line
    assert coarse_levels_error({"fibre": (MIN_GREY_LEVELS, [0.0])}) is None


SKIN = "pipeline: skin\nchannels: {fibre: PGP9.5, membrane: ColIV, nuclei: DAPI}\n"


def test_a_skin_export_divided_by_256_fails_with_one_line_and_the_batch_goes_on(tmp_path):
    """It used to run 'ok' and report 0 crossings, IENFD 0, with no flag."""
    ph = make_skin_section((300, 900), 0.5, seed=2)
    inputs = tmp_path / "in"
    inputs.mkdir()
    coarse = ph.image.copy()
    fib = ph.channel_names.index("PGP9.5")
    coarse[fib] = coarse[fib] // 256
    for name, img in (("coarse", coarse), ("good", ph.image)):
        write_ome_tiff(img, inputs / f"{name}.ome.tif", channel_names=ph.channel_names,
                       pixel_size_um=0.5)
    cfg = tmp_path / "skin.yaml"
    cfg.write_text(SKIN)
    out = tmp_path / "out"
    rc = main(["run", str(cfg), str(inputs), "--out", str(out), "-q"])
    assert rc != 0  # a failed file makes the batch's exit status non-zero
    run = json.loads((out / "run.json").read_text())
    [failed] = run["failed"]  # one line, naming the file, the role and the problem
    assert failed.startswith("coarse.ome.tif: channel role(s) quantised to a few grey levels")
    assert "fibre: " in failed and "membrane" not in failed and "\n" not in failed
    summary = (out / "skin_summary.csv").read_text()
    assert "good" in summary and "coarse" not in summary


DRG = ("pipeline: drg\nchannels: {neuron: NeuN, sgc: GS, igg: IgG, nuclei: DAPI}\n"
       "calibration: {threshold: 1.0}\n")


def test_a_tiled_drg_run_refuses_a_coarse_channel_as_a_whole_image_run(tmp_path):
    ph = make_drg_section((256, 256), 0.5, seed=5)
    img = ph.image.copy()
    sgc = ph.channel_names.index("GS")
    img[sgc] = img[sgc] // 256
    write_ome_tiff(img, tmp_path / "s.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    errors = {}
    for name, par in (("whole", "{scheduler: synchronous}"),
                      ("tiled", "{scheduler: synchronous, tile_size_um: 32}")):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(DRG + f"parallel: {par}\n")
        main(["run", str(cfg), str(tmp_path / "s.ome.tif"), "--out", str(tmp_path / name),
              "-q"])
        run = json.loads((tmp_path / name / "run.json").read_text())
        [errors[name]] = run["failed"]
    assert errors["tiled"] == errors["whole"]
    assert errors["whole"].startswith("s.ome.tif: channel role(s) quantised")
    assert "sgc: " in errors["whole"] and "neuron" not in errors["whole"]
