"""Detector clipping is reported, never silently measured as real intensity."""

import json

import numpy as np

from histo_fms.cli import main
from histo_fms.io import write_ome_tiff
from histo_fms.io._clipping import (
    NO_PIXELS,
    add_clip_blocks,
    clip_block,
    clipped_fraction,
    clipped_from_blocks,
    clipping_warning,
    constant_from_blocks,
)
from histo_fms.synthetic.drg import make_drg_section


def test_clipped_fraction_finds_the_detector_ceiling():
    a = np.zeros((100, 100), np.uint16)
    a[:2] = 4095  # 12-bit camera in a uint16 file: 2 % of the pixels clipped
    assert clipped_fraction(a) == (4095, 0.02)
    a[:2] = 4000  # brightest pixels below any ceiling: nothing clipped
    assert clipped_fraction(a) == (None, 0.0)
    assert clipped_fraction(a.astype(np.float32)) == (None, 0.0)
    line = clipping_warning("s.ome.tif", {"igg": [4095, 0.02], "neuron": [None, 0.0]})
    assert line.startswith("s.ome.tif: pixels at the detector's maximum (igg 2.00 % at 4095)")
    assert clipping_warning("s.ome.tif", {"igg": [65535, 0.0001]}) is None


def _blocks(a, ny, nx):
    """``a`` cut into ny x nx blocks of unequal sizes (raster order)."""
    return [b for rows in np.array_split(a, ny, axis=0)
            for b in np.array_split(rows, nx, axis=1)]


def test_blocks_give_the_whole_channels_clipping():
    rng = np.random.default_rng(3)
    for dtype, top in ((np.uint8, 255), (np.uint16, 4095), (np.uint16, 65535),
                       (np.int32, 16383), (np.uint16, 4000)):
        a = rng.integers(0, top, (97, 61), dtype=dtype)  # below the ceiling
        a[rng.random(a.shape) < 0.01] = top  # 1 % at it
        a[:40] = np.minimum(a[:40], top - 1)  # the top blocks have no pixel at it
        blocks = _blocks(a, 4, 3)
        assert not (blocks[0] == top).any() and (blocks[-1] == top).any()
        whole = clipped_fraction(a)
        assert whole[0] == (top if top != 4000 else None)
        assert clipped_from_blocks(map(clip_block, blocks), a.dtype) == whole
        # merged in any order and grouping (a tree sum)
        parts = [clip_block(b) for b in blocks[::-1]]
        left = add_clip_blocks(add_clip_blocks(parts[0], parts[1]), parts[2])
        right = add_clip_blocks(parts[0], add_clip_blocks(parts[1], parts[2]))
        assert left == right
        assert clipped_from_blocks([left, *parts[3:]], a.dtype) == whole
    # a block holding only pixels below another block's maximum contributes no count
    assert add_clip_blocks((4095, 3, 10), (4000, 7, 10)) == (4095, 3, 20)
    assert add_clip_blocks((4095, 3, 10), (4095, 7, 10)) == (4095, 10, 20)
    assert add_clip_blocks(NO_PIXELS, (255, 1, 4)) == (255, 1, 4)
    f = rng.random((20, 30)).astype(np.float32) * 65535
    f[0, 0] = 65535
    assert clipped_fraction(f) == (None, 0.0)
    assert clipped_from_blocks(map(clip_block, _blocks(f, 2, 2)), f.dtype) == (None, 0.0)
    assert clipped_from_blocks([], np.uint16) == (None, 0.0)


CONFIG = ("pipeline: drg\nchannels: {neuron: NeuN, sgc: GS, igg: IgG, nuclei: DAPI}\n"
          "calibration: {threshold: 1.0}\n")


def _clipped_section(tmp_path):
    ph = make_drg_section((256, 256), 0.5, seed=5)
    img = ph.image.copy()
    igg = ph.channel_names.index("IgG")
    img[igg][img[igg] >= np.quantile(img[igg], 0.99)] = 65535  # the brightest 1 % clipped
    write_ome_tiff(img, tmp_path / "clip.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    return tmp_path / "clip.ome.tif", clipped_fraction(img[igg])


def _run(tmp_path, path, name, parallel):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(CONFIG + f"parallel: {parallel}\n")
    out = tmp_path / name
    assert main(["run", str(cfg), str(path), "--out", str(out), "-q"]) == 0
    run = json.loads((out / "run.json").read_text())
    status = json.loads((out / "clip" / "status.json").read_text())
    return [w for w in run["warnings"] if "detector's maximum" in w], status["summary"]


def test_a_run_on_a_clipped_section_warns_and_records_it(tmp_path):
    path, igg = _clipped_section(tmp_path)
    [line], summary = _run(tmp_path, path, "out", "{scheduler: synchronous}")
    assert line.startswith("clip.ome.tif: pixels at the detector's maximum (igg 1.")
    assert summary["clipped"]["igg"] == [65535, igg[1]]


def test_a_tiled_run_checks_clipping_as_a_whole_image_run(tmp_path):
    path, igg = _clipped_section(tmp_path)
    whole_lines, whole = _run(tmp_path, path, "whole", "{scheduler: synchronous}")
    tiled_lines, tiled = _run(tmp_path, path, "tiled",
                              "{scheduler: synchronous, tile_size_um: 32}")
    assert whole["tiled"] is False and tiled["tiled"] is True
    assert tiled["clipped"] == whole["clipped"]
    assert set(tiled["clipped"]) == {"neuron", "sgc", "igg", "nuclei"}
    assert tiled["clipped"]["igg"] == [65535, igg[1]] and igg[1] > 0.005
    assert tiled_lines == whole_lines and len(tiled_lines) == 1


def test_a_blank_channel_is_found_whole_and_tiled(tmp_path):
    ph = make_drg_section((256, 256), 0.5, seed=5)
    img = ph.image.copy()
    img[ph.channel_names.index("IgG")] = 100  # the camera offset only
    write_ome_tiff(img, tmp_path / "clip.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    path = tmp_path / "clip.ome.tif"
    summaries = {}
    for name, par in (("whole", "{scheduler: synchronous}"),
                      ("tiled", "{scheduler: synchronous, tile_size_um: 32}")):
        _run(tmp_path, path, name, par)
        run = json.loads((tmp_path / name / "run.json").read_text())
        assert [w for w in run["warnings"] if "hold one value everywhere" in w] == [
            "clip.ome.tif: channel role(s) igg hold one value everywhere (a blank channel: "
            "wrong channel, or no signal recorded); nothing measured on them is a finding"]
        summaries[name] = json.loads((tmp_path / name / "clip" / "status.json").read_text())
    assert summaries["tiled"]["summary"]["tiled"] is True
    assert summaries["whole"]["summary"]["constant"] == ["igg"]
    assert summaries["tiled"]["summary"]["constant"] == ["igg"]
    assert constant_from_blocks(map(clip_block, _blocks(img[1] * 0 + 7, 2, 3)))
    assert not constant_from_blocks(map(clip_block, _blocks(ph.image[0], 2, 3)))
    assert not constant_from_blocks([clip_block(np.zeros((3, 3), np.float32))])
