"""Typed validation of the drg:/skin: sections, duplicate YAML keys, plausible pixel sizes."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_review_session import make_skin_results

from histo_fms.config import ConfigError, load_config
from histo_fms.io import InputError, read_image, require_pixel_size, write_ome_tiff


def _cfg(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_quoted_boolean_is_an_error_naming_key_and_file(tmp_path):
    p = _cfg(tmp_path, 'pipeline: drg\ndrg:\n  restrict_ring_to_sgc: "false"\n')
    with pytest.raises(ConfigError, match=r"cfg\.yaml: drg\.restrict_ring_to_sgc: .*boolean"):
        load_config(p)
    # a YAML boolean is fine and keeps its value
    cfg = load_config(_cfg(tmp_path, "pipeline: drg\ndrg:\n  restrict_ring_to_sgc: false\n"))
    assert cfg.params().restrict_ring_to_sgc is False


@pytest.mark.parametrize("text, key", [
    ("pipeline: drg\ndrg:\n  ring_width_um: '4'\n", "drg.ring_width_um"),
    ("pipeline: drg\ndrg:\n  ring_width_um: .inf\n", "drg.ring_width_um"),
    ("pipeline: drg\ndrg:\n  ring_guard_um: -1\n", "drg.ring_guard_um"),
    ("pipeline: drg\ndrg:\n  background_percentile: 150\n", "drg.background_percentile"),
    ("pipeline: drg\ndrg:\n  size_class_bounds_um: [25, x]\n", "drg.size_class_bounds_um"),
    ("pipeline: drg\ndrg:\n  reject_lipofuscin: 1\n", "drg.reject_lipofuscin"),
    ("pipeline: skin\nskin:\n  fibre_low_snr: yes\n", "skin.fibre_low_snr"),
    ("pipeline: skin\nskin:\n  fibre_sigmas_um: [0.5, '1']\n", "skin.fibre_sigmas_um"),
    ("pipeline: drg\nsummary:\n  exclude_border: 'no'\n", "summary.exclude_border"),
    ("pipeline: drg\ndrg:\n  ring_widht_um: 4\n", "ring_widht_um"),
    # the classical backend's own options, checked before any file is read
    ("pipeline: drg\ndrg:\n  segmentation_options: {sheath_rays: abc}\n",
     "segmentation_options.sheath_rays: expected a number"),
    ("pipeline: drg\ndrg:\n  segmentation_options: {sheath_ray: 0.3}\n",
     "unknown option(s) ['sheath_ray'] of the classical backend"),
    ("pipeline: drg\ndrg:\n  segmentation_options: {nucleus_fill: 1}\n",
     "segmentation_options.nucleus_fill: expected true or false"),
    ("pipeline: drg\ndrg:\n  segmentation_options: {smooth_um: -1}\n",
     "segmentation_options.smooth_um"),
    ("pipeline: drg\ndrg:\n  segmentation_options: {threshold: .nan}\n",
     "segmentation_options.threshold"),
])
def test_bad_values_name_the_key_and_the_file(tmp_path, text, key):
    with pytest.raises(ConfigError) as exc:
        load_config(_cfg(tmp_path, text))
    msg = str(exc.value)
    assert msg.startswith("cfg.yaml: ") and key in msg and "\n" not in msg


def test_numbers_and_lists_still_accepted(tmp_path):
    cfg = load_config(_cfg(tmp_path, "pipeline: drg\ndrg:\n  ring_width_um: 5\n"
                                     "  size_class_bounds_um: [20, 30.5]\n"))
    p = cfg.params()
    assert p.ring_width_um == 5.0 and p.size_class_bounds_um == (20.0, 30.5)
    opts = {"threshold": 1, "open_um": None, "ridge_valley": -0.1, "nucleus_fill": False}
    cfg = load_config(_cfg(tmp_path, f"pipeline: drg\ndrg:\n  segmentation_options: {opts}\n"
                           .replace("None", "null").replace("False", "false")))
    assert cfg.params().segmentation_options == opts
    for f in ("pipelines/drg_sgc_igg.yaml", "pipelines/skin_ienfd.yaml"):
        load_config(f).params()


def test_duplicate_keys_refused(tmp_path):
    p = _cfg(tmp_path, "pipeline: drg\ndrg:\n  ring_width_um: 3\ndrg:\n  ring_width_um: 5\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml: duplicate key 'drg' \(lines 2 and 4\)"):
        load_config(p)
    p = _cfg(tmp_path, "pipeline: drg\ndrg:\n  ring_width_um: 3\n  ring_width_um: 5\n")
    with pytest.raises(ConfigError, match="duplicate key 'ring_width_um'"):
        load_config(p)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 325.0, 1e-9, 0.0, -1.0])
def test_pixel_size_bounded_in_config(value):
    with pytest.raises(ConfigError, match="pixel_size_um"):
        load_config(None, pipeline="drg", overrides={"pixel_size_um": value})
    assert load_config(None, pipeline="drg",
                       overrides={"pixel_size_um": 0.05}).pixel_size_um == 0.05


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_cli_threshold_and_pixel_size_refused(tmp_path, value, capsys):
    from histo_fms.cli import main

    args = ["run", "pipelines/drg_sgc_igg.yaml", "sample_data/drg/drg_m1_fms.ome.tif",
            "--out", str(tmp_path / "o")]
    for opt in ("--threshold", "--pixel-size"):
        try:  # in process (one CLI process start per case below, not four)
            rc = main([*args, f"{opt}={value}"])
        except SystemExit as e:  # argparse refusals exit
            rc = e.code
        err = capsys.readouterr().err
        assert rc == 2, err
        assert "finite" in err or "plausible" in err
    # the real process: exit status 2, one message, no traceback
    opt = "--threshold" if value == "inf" else "--pixel-size"
    r = subprocess.run([sys.executable, "-m", "histo_fms.cli", *args, f"{opt}={value}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "finite" in r.stderr or "plausible" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_pixel_size_from_file_metadata_bounded(tmp_path):
    img = np.zeros((2, 32, 32), np.uint16)
    p = write_ome_tiff(img, tmp_path / "big.ome.tif", channel_names=["a", "b"],
                       pixel_size_um=100.0)
    with pytest.raises(InputError, match=r"big\.ome\.tif: .*100.*plausible"):
        require_pixel_size(read_image(p))
    # an override inside the range is the way out
    assert require_pixel_size(read_image(p, pixel_size_um=0.5)) == 0.5
    with pytest.raises(InputError, match="plausible"):
        read_image(p, pixel_size_um=float("inf"))


def test_review_never_assumes_one_micron(tmp_path):
    from histo_fms.review import ReviewError, ReviewSession

    out = make_skin_results(tmp_path)
    shutil.rmtree(out / "skin_a" / "labels.zarr")
    run = json.loads((out / "run.json").read_text())
    assert ReviewSession.open(out, "skin_a", "AB").pixel_size_um == 0.5  # from run.json
    del run["files"][0]["pixel_size_um"]
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(ReviewError, match="no pixel size"):
        ReviewSession.open(out, "skin_a", "AB")
