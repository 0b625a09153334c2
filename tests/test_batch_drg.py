"""End-to-end DRG batch runs through the CLI: outputs, calibration, bad files, resume."""

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from histo_fms.cli import main
from histo_fms.io import read_labels_zarr, write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section

CONFIG = """
pipeline: drg
channels: {neuron: NeuN, sgc: GS, igg: IgG, nuclei: DAPI}
parallel: {scheduler: synchronous}
"""


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    d = tmp_path_factory.mktemp("drg")
    imgs = d / "images"
    rows = []
    for i, (seed, control) in enumerate([(501, False), (502, False), (503, True), (504, True)]):
        ph = make_drg_section((320, 320), 0.5, seed=seed, control=control,
                              positive_fraction=0.5)
        name = f"sec{i}.ome.tif"
        write_ome_tiff(ph.image, imgs / name, channel_names=ph.channel_names, pixel_size_um=0.5)
        rows.append({"image": name, "subject": f"S{i}", "animal": f"m{i}",
                     "group": "ctrl" if control else "FMS", "control": control})
    # bad inputs, each must fail alone with a one-line error naming the file
    (imgs / "corrupt.ome.tif").write_bytes(b"II*\x00garbage" * 10)
    write_ome_tiff(ph.image, imgs / "wrongnames.ome.tif",
                   channel_names=["a", "b", "c", "d"], pixel_size_um=0.5)
    tifffile.imwrite(imgs / "nopixelsize.tif", ph.image, photometric="minisblack")
    tifffile.imwrite(imgs / "gray2d.ome.tif", ph.image[0], ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    # all-zero image: 0 neurons, not an error
    write_ome_tiff(np.zeros_like(ph.image), imgs / "blank.ome.tif",
                   channel_names=ph.channel_names, pixel_size_um=0.5)
    sheet = d / "samples.csv"
    pd.DataFrame(rows).to_csv(sheet, index=False)
    cfg = d / "drg.yaml"
    cfg.write_text(CONFIG)
    out = d / "out"
    rc = main(["run", str(cfg), str(imgs), "--out", str(out), "--samples", str(sheet), "-q"])
    return d, imgs, out, rc, cfg, sheet


def test_outputs_follow_the_contract(batch):
    d, imgs, out, rc, *_ = batch
    assert rc == 1  # some files failed, batch finished
    for i in range(4):
        t = pd.read_csv(out / f"sec{i}" / "neurons.csv")
        for col in ["neuron_id", "y_um", "x_um", "area_um2", "diameter_um", "size_class",
                    "touches_border", "ring_igg", "igg_positive"]:
            assert col in t.columns
        assert len(t) > 5
        assert set(t["size_class"]) <= {"small", "medium", "large"}
        lab = read_labels_zarr(out / f"sec{i}" / "labels.zarr")
        assert set(np.unique(lab["neurons"])) - {0} == set(t["neuron_id"])
    s = pd.read_csv(out / "drg_summary.csv")
    assert list(s["image"]) == ["blank.ome.tif"] + [f"sec{i}.ome.tif" for i in range(4)]
    for col in ["n_neurons", "pct_igg_positive", "pct_ci_low", "pct_ci_high", "subject",
                "animal", "group", "control"]:
        assert col in s.columns
    blank = s[s["image"] == "blank.ome.tif"].iloc[0]
    assert blank["n_neurons"] == 0


def test_bad_files_listed_with_one_line_errors(batch):
    _, _, out, *_ = batch
    run = json.loads((out / "run.json").read_text())
    status = {f["image"]: f for f in run["files"]}
    expect = {
        "corrupt.ome.tif": "TIFF",
        "wrongnames.ome.tif": "no channel named 'NeuN'",
        "nopixelsize.tif": "no pixel size",
        "gray2d.ome.tif": "no channel named 'NeuN'",
    }
    for name, text in expect.items():
        assert status[name]["status"] == "failed"
        err = status[name]["error"]
        assert err.startswith(name + ":") and text in err and "\n" not in err
    assert len(run["failed"]) == 4
    assert status["blank.ome.tif"]["status"] == "ok"


def test_threshold_calibrated_on_controls_and_recorded(batch):
    _, _, out, *_ = batch
    run = json.loads((out / "run.json").read_text())
    thr = run["threshold"]["ring_igg"]
    assert "control sections" in run["threshold"]["source"]
    ctrl = pd.concat([pd.read_csv(out / f"sec{i}" / "neurons.csv") for i in (2, 3)])
    ctrl = ctrl[~ctrl["touches_border"]]
    from histo_fms.drg import calibrate

    cal = calibrate(ctrl["ring_igg"], n_bootstrap=0)
    assert thr == pytest.approx(cal.threshold, rel=1e-4)
    assert run["threshold"]["calibration"][""]["method"] == "robust"
    assert run["threshold"]["calibration"][""]["n_control_sections"] == 2
    t = pd.read_csv(out / "sec0" / "neurons.csv")
    assert (t["igg_positive"] == (t["ring_igg"] > thr)).all()
    # provenance
    assert run["config"]["drg"]["ring_width_um"] == 4.0
    assert "numpy" in run["versions"]
    assert all(len(f["sha256"] or "") == 64 for f in run["files"])


def test_resume_skips_finished_files_and_is_byte_identical(batch):
    d, imgs, out, rc, cfg, sheet = batch
    before = {p: p.read_bytes() for p in out.glob("sec*/neurons.csv")}
    before["sum"] = (out / "drg_summary.csv").read_bytes()
    main(["run", str(cfg), str(imgs), "--out", str(out), "--samples", str(sheet), "-q"])
    run = json.loads((out / "run.json").read_text())
    st = {f["image"]: f["status"] for f in run["files"]}
    assert all(st[f"sec{i}.ome.tif"] == "resumed" for i in range(4))
    after = {p: p.read_bytes() for p in out.glob("sec*/neurons.csv")}
    after["sum"] = (out / "drg_summary.csv").read_bytes()
    assert before == after
    # a fresh recomputation is byte-identical too
    out2 = d / "out2"
    main(["run", str(cfg), str(imgs / "sec0.ome.tif"), str(imgs / "sec2.ome.tif"),
          "--out", str(out2), "--samples", str(sheet), "-q", "--threshold", "1.5"])
    main(["run", str(cfg), str(imgs / "sec0.ome.tif"), str(imgs / "sec2.ome.tif"),
          "--out", str(out2), "--samples", str(sheet), "-q", "--threshold", "1.5",
          "--no-resume"])
    run2 = json.loads((out2 / "run.json").read_text())
    assert {f["status"] for f in run2["files"]} == {"ok"}
    assert run2["threshold"]["ring_igg"] == 1.5
    assert run2["threshold"]["source"] == "explicit (calibration.threshold)"
    a = pd.read_csv(out / "sec0" / "neurons.csv").drop(columns="igg_positive")
    b = pd.read_csv(out2 / "sec0" / "neurons.csv").drop(columns="igg_positive")
    pd.testing.assert_frame_equal(a, b)


def test_config_change_refused_then_recomputes_with_overwrite(batch, tmp_path, capsys):
    d, imgs, out, rc, cfg, sheet = batch
    cfg2 = tmp_path / "wide.yaml"
    cfg2.write_text(CONFIG + "drg: {ring_width_um: 3.0}\n")
    o = tmp_path / "o"
    assert main(["run", str(cfg), str(imgs / "sec1.ome.tif"), "--out", str(o), "-q"]) == 0
    before = (o / "run.json").read_bytes()
    capsys.readouterr()
    # another measurement config into the same folder: refused, saying what differs
    assert main(["run", str(cfg2), str(imgs / "sec1.ome.tif"), "--out", str(o), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "drg.ring_width_um: 4.0 -> 3.0" in err and "--overwrite" in err
    assert (o / "run.json").read_bytes() == before
    assert main(["run", str(cfg2), str(imgs / "sec1.ome.tif"), "--out", str(o), "-q",
                 "--overwrite"]) == 0
    run = json.loads((o / "run.json").read_text())
    assert run["files"][0]["status"] == "ok"
    assert run["config"]["drg"]["ring_width_um"] == 3.0


def test_cli_errors_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("pipeline: drg\ndrg: {ring_widht_um: 3}\n")
    rc = main(["run", str(cfg), str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "bad.yaml" in err and "ring_widht_um" in err and "\n" not in err
    cfg.write_text("pipeline: drg\nchannels: {neuron: 0, igg: 2}\n")
    rc = main(["run", str(cfg), str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "missing: no such file" in capsys.readouterr().err


def test_section_without_igg_gives_neurons_and_no_igg_numbers(tmp_path):
    # a section stained for neurons and SGCs only (as for validating the segmentation):
    # its neurons are found and measured; IgG columns and % IgG+ stay empty even with a
    # threshold given (a blank is never read as 0 % positive), with a warning naming it
    ph = make_drg_section((320, 320), 0.5, seed=505, positive_fraction=0.5)
    keep = [ph.channel_names.index(n) for n in ("NeuN", "GS")]
    imgs = tmp_path / "images"
    write_ome_tiff(ph.image[keep], imgs / "noigg.ome.tif", channel_names=["NeuN", "GS"],
                   pixel_size_um=0.5)
    write_ome_tiff(ph.image, imgs / "full.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    cfg = tmp_path / "drg.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    rc = main(["run", str(cfg), str(imgs), "--out", str(out), "-q", "--threshold", "1.5"])
    assert rc == 0
    t = pd.read_csv(out / "noigg" / "neurons.csv")
    full = pd.read_csv(out / "full" / "neurons.csv")
    truth = ph.labels
    # the same neurons as with IgG (which only adds to the lipofuscin evidence), each
    # centred on a different true neuron, most of them found
    assert abs(len(t) - len(full)) <= 1
    hit = [truth[int(round(y / 0.5)), int(round(x / 0.5))]
           for y, x in zip(t.y_um, t.x_um, strict=True)]
    assert all(hit) and len(set(hit)) == len(hit)
    assert len(hit) >= 0.75 * (len(np.unique(truth)) - 1)
    assert t["area_um2"].gt(0).all() and t["ring_area_um2"].notna().all()
    # the sheath is measured without IgG too (its background bands: all non-neuron tissue)
    assert abs(t["sgc_coverage"].median() - full["sgc_coverage"].median()) < 0.1
    assert t["sgc_coverage"].median() > 0.5
    for col in ("ring_igg", "ring_mean", "background", "ring_igg_coverage", "igg_positive"):
        assert t[col].isna().all(), col
    assert full["ring_igg"].notna().any() and full["igg_positive"].notna().all()
    s = pd.read_csv(out / "drg_summary.csv").set_index("image")
    assert np.isnan(s.loc["noigg.ome.tif", "pct_igg_positive"])
    assert np.isnan(s.loc["noigg.ome.tif", "n_igg_positive"])
    assert s.loc["noigg.ome.tif", "n_neurons"] > 0
    assert np.isfinite(s.loc["full.ome.tif", "pct_igg_positive"])
    assert s.loc["noigg.ome.tif", "roles_used"] == "neuron+sgc"
    run = json.loads((out / "run.json").read_text())
    lines = [w for w in run["warnings"] if w.startswith("noigg.ome.tif:")]
    assert len(lines) == 1 and "igg=IgG" in lines[0] and "ring IgG is not" in lines[0]
    assert not [w for w in run["warnings"] if w.startswith("full.ome.tif:")]
    # tiled, the same neurons and blanks
    tcfg = tmp_path / "tiled.yaml"
    tcfg.write_text(CONFIG.replace("scheduler: synchronous", "scheduler: synchronous, "
                                   "tile_size_um: 64"))
    assert main(["run", str(tcfg), str(imgs / "noigg.ome.tif"), "--out",
                 str(tmp_path / "tiled"), "-q"]) == 0
    st = json.loads((tmp_path / "tiled" / "noigg" / "status.json").read_text())
    assert st["summary"]["tiled"] is True
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "tiled" / "noigg" / "neurons.csv"), t)


def test_a_pixel_size_override_unlike_the_files_own_is_a_warning(tmp_path):
    ph = make_drg_section((160, 160), 0.5, seed=506)
    write_ome_tiff(ph.image, tmp_path / "in" / "a.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    cfg = tmp_path / "drg.yaml"
    cfg.write_text(CONFIG)

    def warned(px):
        out = tmp_path / f"out{px}"
        assert main(["run", str(cfg), str(tmp_path / "in"), "--out", str(out), "-q",
                     "--pixel-size", str(px)]) == 0
        run = json.loads((out / "run.json").read_text())
        st = json.loads((out / "a" / "status.json").read_text())
        assert st["pixel_size_um"] == px  # the override is what is used
        return [w for w in run["warnings"] if "pixel size override" in w]

    (line,) = warned(0.65)
    assert line.startswith("a.ome.tif:") and "0.65 µm" in line and "0.5 µm" in line
    assert "1.69x" in line
    assert warned(0.5) == [] and warned(0.502) == []  # equal within 1 %


def test_a_file_with_several_sections_says_which_one_was_measured(tmp_path):
    ph = make_drg_section((160, 160), 0.5, seed=507)
    meta = {"axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
            "Channel": {"Name": list(ph.channel_names)}}
    d = tmp_path / "in"
    d.mkdir()
    with tifffile.TiffWriter(d / "two.ome.tif", ome=True) as tw:
        tw.write(ph.image, metadata=meta)
        tw.write(ph.image[:, ::-1], metadata=meta)  # a second section of the same size
    with tifffile.TiffWriter(d / "thumb.ome.tif", ome=True) as tw:
        tw.write(ph.image, metadata=meta)
        tw.write(ph.image[:, ::8, ::8], metadata=meta)  # a thumbnail: not a section
    cfg = tmp_path / "drg.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["run", str(cfg), str(d), "--out", str(out), "-q"]) == 0
    run = json.loads((out / "run.json").read_text())
    lines = [w for w in run["warnings"] if "series" in w]
    assert len(lines) == 1 and lines[0].startswith("two.ome.tif: holds 2 images")
    assert "only series 0 was measured, not 1" in lines[0]


def test_a_blank_igg_channel_is_no_zero_percent(tmp_path):
    # a dead laser or the wrong channel for igg: the camera offset only. No ring IgG can
    # be measured, so the section's % IgG+ is empty with a warning, not 0 %
    ph = make_drg_section((256, 256), 0.5, seed=508)
    img = ph.image.copy()
    img[ph.channel_names.index("IgG")] = 100
    write_ome_tiff(img, tmp_path / "in" / "dead.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    write_ome_tiff(ph.image, tmp_path / "in" / "live.ome.tif", channel_names=ph.channel_names,
                   pixel_size_um=0.5)
    cfg = tmp_path / "drg.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["run", str(cfg), str(tmp_path / "in"), "--out", str(out), "-q",
                 "--threshold", "1.5"]) == 0
    s = pd.read_csv(out / "drg_summary.csv").set_index("image")
    assert s.loc["dead.ome.tif", "n_neurons"] > 0
    for col in ("pct_igg_positive", "n_igg_positive", "pct_ci_low", "pct_ci_high"):
        assert np.isnan(s.loc["dead.ome.tif", col]), col
    assert np.isfinite(s.loc["live.ome.tif", "pct_igg_positive"])
    run = json.loads((out / "run.json").read_text())
    lines = [w for w in run["warnings"] if w.startswith("dead.ome.tif:")]
    assert len(lines) == 2
    assert any("could not be measured on any" in w for w in lines)
    assert any("role(s) igg hold one value everywhere" in w for w in lines)
    assert not [w for w in run["warnings"] if w.startswith("live.ome.tif:")]


def test_frames_beyond_the_first_are_named_in_a_warning(tmp_path):
    ph = make_drg_section((160, 160), 0.5, seed=509)
    tcyx = np.stack([ph.image, ph.image[:, ::-1]])  # two time points
    d = tmp_path / "in"
    d.mkdir()
    tifffile.imwrite(d / "frames.tif", tcyx, imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "TCYX", "unit": "micron"})
    idx = {n: ph.channel_names.index(n) for n in ("NeuN", "IgG", "GS", "DAPI")}
    cfg = tmp_path / "drg.yaml"
    cfg.write_text("pipeline: drg\nparallel: {scheduler: synchronous}\nchannels: "
                   f"{{neuron: {idx['NeuN']}, igg: {idx['IgG']}, sgc: {idx['GS']}, "
                   f"nuclei: {idx['DAPI']}}}\n")
    out = tmp_path / "out"
    assert main(["run", str(cfg), str(d), "--out", str(out), "-q"]) == 0
    run = json.loads((out / "run.json").read_text())
    (line,) = [w for w in run["warnings"] if w.startswith("frames.tif:")]
    assert "axis T of size 2: first index used" in line


def test_a_control_without_igg_is_not_counted_as_a_calibrating_section(tmp_path):
    rows = []
    for i, (seed, ctrl, igg) in enumerate([(801, True, True), (802, True, False),
                                           (803, False, True)]):
        ph = make_drg_section((256, 256), 0.5, seed=seed, control=ctrl)
        keep = [k for k, n in enumerate(ph.channel_names) if igg or n != "IgG"]
        write_ome_tiff(ph.image[keep], tmp_path / "in" / f"s{i}.ome.tif",
                       channel_names=[ph.channel_names[k] for k in keep], pixel_size_um=0.5)
        rows.append({"image": f"s{i}.ome.tif", "animal": f"m{i}", "group": "g",
                     "control": ctrl})
    pd.DataFrame(rows).to_csv(tmp_path / "samples.csv", index=False)
    cfg = tmp_path / "drg.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    main(["run", str(cfg), str(tmp_path / "in"), "--out", str(out), "--samples",
          str(tmp_path / "samples.csv"), "-q"])
    thr = json.loads((out / "run.json").read_text())["threshold"]
    assert thr["source"].startswith("control sections (1: s0;")
    assert thr["calibration"][""]["control_sections"] == ["s0"]
    assert thr["calibration"][""]["n_control_sections"] == 1
