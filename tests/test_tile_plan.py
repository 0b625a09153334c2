"""Whole image or tiles: the memory-budget decision and its record in run.json."""

import json

import numpy as np
import pytest

from histo_fms.cli import main
from histo_fms.config import ConfigError, load_config
from histo_fms.io import write_ome_tiff
from histo_fms.parallel._plan import BUDGET_FRACTION, parse_memory, plan_drg
from histo_fms.synthetic.drg import make_drg_section

GIB = 2**30


def test_whole_when_it_fits_tiled_above():
    whole = plan_drg((4096, 4096), memory_bytes=8 * GIB, margin_px=1280, align_px=16,
                     min_tile_px=1920, bytes_per_pixel=64)
    assert not whole.tiled and whole.tile_px is None and "whole image" in whole.reason
    big = plan_drg((16384, 16384), memory_bytes=8 * GIB, margin_px=1280, align_px=16,
                   min_tile_px=1920, bytes_per_pixel=64)
    assert big.tiled and big.tile_px % 16 == 0 and "tiled" in big.reason
    # the outer region of a tile (core + 2 margins) fits the budget; cores split evenly
    assert 64 * (big.tile_px + 2 * 1280) ** 2 <= BUDGET_FRACTION * 8 * GIB * 1.01
    n = -(-16384 // big.tile_px)
    assert n * big.tile_px - 16384 < n * 16
    # a small budget never shrinks cores below the default tile (less evening out)
    small = plan_drg((16384, 16384), memory_bytes=GIB, margin_px=1280, align_px=16,
                     min_tile_px=1920, bytes_per_pixel=64)
    assert small.tiled and small.tile_px >= 0.9 * 1920


def test_explicit_tile_size_always_tiles_larger_images():
    p = plan_drg((500, 500), memory_bytes=64 * GIB, margin_px=100, align_px=16, tile_px=384)
    assert p.tiled and p.tile_px == 384 and "tile_size_um" in p.reason
    assert not plan_drg((300, 300), memory_bytes=GIB, margin_px=100, align_px=16,
                        tile_px=384).tiled


def test_memory_limit_parsing():
    assert parse_memory("2GiB", 4) == 2 * GIB
    assert parse_memory(1234567, 4) == 1234567
    assert parse_memory("auto", 2) == parse_memory(None, 2) > 0
    with pytest.raises(ConfigError, match="memory_limit"):
        load_config("pipelines/drg_sgc_igg.yaml",
                    overrides={"parallel": {"memory_limit": "lots"}})


def test_default_config_runs_a_section_whole_and_records_why(tmp_path):
    ph = make_drg_section((256, 256), 0.5, seed=3)
    img = tmp_path / "s.ome.tif"
    write_ome_tiff(ph.image, img, channel_names=list(ph.channel_names), pixel_size_um=0.5)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pipeline: drg\nchannels: {neuron: NeuN, igg: IgG, sgc: GS, nuclei: DAPI}\n"
                   "calibration: {threshold: 1.5}\nparallel: {scheduler: synchronous}\n")
    assert main(["run", str(cfg), str(img), "--out", str(tmp_path / "o"), "-q"]) == 0
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    (rec,) = run["files"]
    assert rec["tiled"] is False and rec["tiling"].startswith("whole image")


def test_margin_shortfall_says_how_much_a_tile_lacks():
    from histo_fms.parallel._drg_tiled import _margin_shortfall
    from histo_fms.parallel._tiles import Tile

    shape = (400, 400)
    tile = Tile(0, (100, 200, 100, 200), (0, 300, 0, 300))
    labels = np.zeros((300, 300), np.int32)
    labels[140:160, 140:160] = 1
    assert _margin_shortfall(None, labels, tile, shape, seg_r=20, region_r=30) == 0
    fg = labels > 0
    fg[150:155, 150:295] = True  # a cluster reaching x = 300 (grown), the zone ends at 280
    assert _margin_shortfall(fg, labels, tile, shape, seg_r=20, region_r=30) == 20
    # the core's neighbourhood (x < 290) itself reaches 10 px past the zone
    assert _margin_shortfall(None, labels, tile, shape, seg_r=20, region_r=90) == 10


def test_over_budget_section_is_tiled_and_equals_whole(tmp_path):
    import pandas as pd

    from histo_fms.io import read_labels_zarr

    ph = make_drg_section((576, 576), 2.0, seed=4)  # default cores at 2 µm/px: 512 px
    img = tmp_path / "s.ome.tif"
    write_ome_tiff(ph.image, img, channel_names=list(ph.channel_names), pixel_size_um=2.0)
    base = ("pipeline: drg\nchannels: {neuron: NeuN, igg: IgG, sgc: GS, nuclei: DAPI}\n"
            "calibration: {threshold: 1.5}\n")
    small = tmp_path / "small.yaml"  # 4 MiB budget: ~30 MiB needed, tiled
    small.write_text(base + "parallel: {scheduler: synchronous, memory_limit: 8MiB}\n")
    big = tmp_path / "big.yaml"
    big.write_text(base + "parallel: {scheduler: synchronous}\n")
    assert main(["run", str(small), str(img), "--out", str(tmp_path / "t"), "-q"]) == 0
    assert main(["run", str(big), str(img), "--out", str(tmp_path / "w"), "-q"]) == 0
    (t,) = json.loads((tmp_path / "t" / "run.json").read_text())["files"]
    (w,) = json.loads((tmp_path / "w" / "run.json").read_text())["files"]
    assert t["tiled"] is True and "budget" in t["tiling"]
    assert w["tiled"] is False
    a = pd.read_csv(tmp_path / "t" / "s" / "neurons.csv")
    b = pd.read_csv(tmp_path / "w" / "s" / "neurons.csv")
    assert len(b) > 5
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(read_labels_zarr(tmp_path / "t" / "s" / "labels.zarr")["neurons"],
                                  read_labels_zarr(tmp_path / "w" / "s" / "labels.zarr")["neurons"])


def test_per_worker_memory_target_bounds_tiles_on_a_large_machine():
    from histo_fms.parallel._plan import TILE_BYTES_PER_PIXEL

    # a 16k section on a 24 GiB machine, 2 workers: half a worker's share is 6 GiB; an
    # explicit 2 GiB target gives smaller tiles whose outer regions fit it at the
    # measured bytes per pixel
    target = 2 * GIB
    kw = dict(memory_bytes=12 * GIB, margin_px=1344, align_px=16, min_tile_px=1920)
    p = plan_drg((16384, 16384), target_bytes=target, **kw)
    assert p.tiled and "target" in p.reason
    assert TILE_BYTES_PER_PIXEL * (p.tile_px + 2 * 1344) ** 2 <= target
    # without a target (the default) the budget alone: larger cores
    q = plan_drg((16384, 16384), **kw)
    assert q.tiled and q.tile_px > 2 * p.tile_px and "target" not in q.reason
    # a section that fits the target stays whole
    assert not plan_drg((4096, 4096), target_bytes=target, **kw).tiled


def test_memory_limit_bounds_the_tiles():
    from histo_fms.batch import drg_plan
    from histo_fms.parallel._plan import TILE_BYTES_PER_PIXEL

    auto = load_config("pipelines/drg_sgc_igg.yaml")
    small = load_config("pipelines/drg_sgc_igg.yaml",
                        overrides={"parallel": {"memory_limit": "4GiB"}})
    a = drg_plan((16384, 16384), auto, 0.5, memory_bytes=16 * GIB)
    b = drg_plan((16384, 16384), small, 0.5)
    assert a.tiled and b.tiled and b.tile_px < a.tile_px
    from histo_fms.batch import drg_margin_px
    from histo_fms.drg._context import exact_tile_margins_px

    # exact tiles: the larger of the two passes' margins (segmentation, measurement)
    margin = drg_margin_px(small, 0.5)
    assert margin == max(exact_tile_margins_px(small.params(), 0.5))
    assert TILE_BYTES_PER_PIXEL * (b.tile_px + 2 * margin) ** 2 <= 2 * GIB * 1.05
    # a 6144² section fits half of a 12 GiB worker: processed whole, not tiled
    assert not drg_plan((6144, 6144), auto, 0.5, memory_bytes=12 * GIB).tiled
