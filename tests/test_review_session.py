"""Review model (no Qt): edits, autosave, audit, reopen, recompute."""

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from histo_fms.io import (
    read_labels_zarr,
    write_json,
    write_labels_zarr,
    write_polylines,
    write_table,
)
from histo_fms.review import ReviewError, ReviewSession, polyline_length_um


def make_drg_results(root, seeds=(3,), threshold=1.5):
    from histo_fms.batch import run_pipeline
    from histo_fms.config import load_config
    from histo_fms.io import write_ome_tiff
    from histo_fms.synthetic.drg import make_drg_section

    inp = root / "in"
    inp.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in seeds:
        ph = make_drg_section((256, 256), 0.5, seed=s)
        paths.append(write_ome_tiff(ph.image, inp / f"drg_s{s}.ome.tif",
                                    channel_names=ph.channel_names, pixel_size_um=0.5))
    cfg = load_config(None, pipeline="drg", overrides={
        "channels": {"neuron": "NeuN", "igg": "IgG", "sgc": "GS", "nuclei": "DAPI"},
        "parallel": {"scheduler": "synchronous"}, "calibration": {"threshold": threshold}})
    out = root / "out"
    run_pipeline(cfg, paths, out)
    return out


def make_skin_results(root, stems=("skin_a",)):
    """A skin results folder in the output-contract layout (written by hand)."""
    out = root / "out"
    files = []
    rows = []
    for k, stem in enumerate(stems):
        d = out / stem
        epi = np.zeros((100, 400), np.uint8)
        epi[20:60] = 1
        fib = np.zeros((100, 400), np.int32)
        for i, x in enumerate(range(40, 400, 80), start=1):
            fib[30:80, x] = i
        write_labels_zarr({"epidermis": epi, "fibres": fib}, d / "labels.zarr", pixel_size_um=0.5)
        write_polylines({"dej": np.array([[30.0, 0.0], [30.0, 199.5]]),
                         "surface": np.array([[10.0, 0.0], [10.0, 199.5]])},
                        d / "polylines.json")
        cr = pd.DataFrame({"y_um": [30.0] * 5, "x_um": [20.0, 60.0, 100.0, 140.0, 180.0],
                           "fibre_id": [1, 2, 3, 4, 5]})
        write_table(cr, d / "crossings.csv")
        files.append({"image": f"{stem}.ome.tif", "path": str(root / f"{stem}.ome.tif"),
                      "sha256": "0", "status": "ok", "pixel_size_um": 0.5})
        rows.append({"image": f"{stem}.ome.tif", "n_crossings": 5,
                     "epidermis_length_mm": 0.1995, "dej_length_mm": 0.1995,
                     "ienfd_per_mm": 5 / 0.1995, "pixel_size_um": 0.5,
                     "subject": f"S{k}", "animal": "", "group": "FMS" if k % 2 else "HC"})
    write_table(pd.DataFrame(rows), out / "skin_summary.csv")
    write_json({"config": {"pipeline": "skin", "channels": {"fibre": "PGP9.5"}},
                "threshold": None, "files": files}, out / "run.json")
    return out


@pytest.fixture(scope="module")
def drg_master(tmp_path_factory):
    return make_drg_results(tmp_path_factory.mktemp("drg"))


@pytest.fixture
def drg_out(drg_master, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(drg_master, out)
    return out


def _snapshot(d):
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and "reviewed" not in p.parts}


def _interior(session):
    t = session.table
    return [int(i) for i in t.loc[~t["touches_border"], "neuron_id"]]


def test_drg_edits_autosave_reopen_recompute(drg_out):
    stem = "drg_s3"
    before = _snapshot(drg_out / stem)
    s = ReviewSession.open(drg_out, stem, "AB")
    assert s.kind == "drg" and s.pixel_size_um == 0.5
    ids = _interior(s)
    assert len(ids) >= 4
    a, b, c = ids[0], ids[1], ids[2]
    call_b = s.call(b)
    s.delete_neuron(a)
    s.flip_call(b)
    s.set_excluded(c)
    assert s.needs_recompute

    # reopening restores everything exactly
    s2 = ReviewSession.open(drg_out, stem, "AB")
    assert np.array_equal(s2.neurons, s.neurons)
    assert a not in s2.neuron_ids()
    assert s2.call(b) is (not call_b)
    assert s2.excluded == {c}
    assert s2.n_edits == 3

    summary = s2.recompute()
    rev = pd.read_csv(drg_out / stem / "reviewed" / "neurons.csv")
    auto = pd.read_csv(drg_out / stem / "neurons.csv")
    assert set(auto["neuron_id"]) - set(rev["neuron_id"]) == {a}
    rb = rev.set_index("neuron_id")
    assert bool(rb.loc[b, "igg_positive"]) is (not call_b)
    assert rb.loc[b, "call_source"] == "reviewer"
    assert bool(rb.loc[c, "excluded"])
    assert bool(rb.loc[b, "igg_positive_auto"]) is call_b
    # untouched neurons keep their shape; those far from the deleted one measure as before
    at = auto.set_index("neuron_id")
    others = [i for i in auto["neuron_id"] if i not in (a, b, c)]
    np.testing.assert_allclose(rb.loc[others, "area_um2"], at.loc[others, "area_um2"])
    far = [i for i in others if np.hypot(at.loc[i, "y_um"] - at.loc[a, "y_um"],
                                         at.loc[i, "x_um"] - at.loc[a, "x_um"]) > 60]
    assert far
    np.testing.assert_allclose(rb.loc[far, "ring_igg"], at.loc[far, "ring_igg"], rtol=1e-2)
    # summary: 2 fewer counted neurons (one deleted, one excluded)
    assert summary["n_reviewed"] == summary["n_auto"] - 2
    assert summary["delta"] == -2
    df = pd.read_csv(drg_out / "drg_summary_reviewed.csv")
    row = df.iloc[0]
    assert row["n_auto"] == summary["n_auto"] and row["n_reviewed"] == summary["n_reviewed"]
    assert row["delta"] == -2 and bool(row["reviewed"]) and row["reviewer"] == "AB"
    # automatic outputs are never touched
    assert _snapshot(drg_out / stem) == before
    # audit: one record per edit, in order, with who/when/before/after
    log = s2.history()
    kinds = [e["kind"] for e in log]
    assert kinds == ["delete", "flip", "exclude", "recompute"]
    assert all(e["reviewer"] == "AB" and e["time"].endswith("+00:00") for e in log)
    assert log[0]["params"] == {"neuron_id": a} and log[0]["before"]["neuron_id"] == a
    assert log[1]["before"]["igg_positive"] is call_b
    assert log[1]["after"]["igg_positive"] is (not call_b)


def test_merge_split_paint(drg_out):
    s = ReviewSession.open(drg_out, "drg_s3", "CD")
    ids = _interior(s)
    a, b = ids[0], ids[1]
    area = s._area(a) + s._area(b)
    rec = s.merge_neurons([a, b])
    assert rec["after"]["neuron_id"] == min(a, b)
    keep = min(a, b)
    assert s._area(keep) == pytest.approx(area)
    # split the merged neuron back at the two original centroids
    t = s.auto_table.set_index("neuron_id")
    seeds = [(t.loc[a, "y_um"], t.loc[a, "x_um"]), (t.loc[b, "y_um"], t.loc[b, "x_um"])]
    rec = s.split_neuron(keep, seeds)
    new = rec["after"]["ids"]
    assert len(new) == 2 and keep in new
    assert sum(rec["after"]["areas_um2"]) == pytest.approx(area)
    # paint a new neuron and erase it again
    mask = np.zeros(s.neurons.shape, bool)
    mask[5:15, 120:130] = True
    mask &= s.neurons == 0
    rec = s.paint(mask)
    nid = rec["after"]["neuron_id"]
    assert (s.neurons[mask] == nid).all()
    s.erase(mask)
    assert nid not in s.neuron_ids()
    with pytest.raises(ReviewError):
        s.delete_neuron(99999)
    with pytest.raises(ReviewError):
        s.add_crossing(1, 2)
    s2 = ReviewSession.open(drg_out, "drg_s3", "CD")
    assert np.array_equal(s2.neurons, s.neurons)
    lab = read_labels_zarr(drg_out / "drg_s3" / "reviewed" / "labels.zarr")
    assert set(lab) == {"neurons", "rings"}
    assert [e["kind"] for e in s2.history()] == ["merge", "split", "paint", "erase"]


def test_split_by_line_and_set_labels(drg_out):
    s = ReviewSession.open(drg_out, "drg_s3", "EF")
    nid = _interior(s)[0]
    ys, xs = np.nonzero(s.neurons == nid)
    yc = ys.mean() * 0.5
    line = [(yc, (xs.min() - 3) * 0.5), (yc, (xs.max() + 3) * 0.5)]
    rec = s.split_neuron(nid, line_um=line)
    assert len(rec["after"]["ids"]) == 2
    lab = s.neurons.copy()
    lab[lab == rec["after"]["ids"][1]] = nid
    rec = s.set_labels(lab)
    assert rec["kind"] == "paint_layer"
    assert s.set_labels(lab) is None  # nothing changed: no edit recorded
    assert len(s.history()) == 2


def test_no_threshold_flip_needs_call(tmp_path):
    out = make_drg_results(tmp_path, threshold=1.5)
    run = json.loads((out / "run.json").read_text())
    run["threshold"] = {"ring_igg": None, "source": None}
    (out / "run.json").write_text(json.dumps(run))
    t = pd.read_csv(out / "drg_s3" / "neurons.csv")
    t["igg_positive"] = pd.NA
    t.to_csv(out / "drg_s3" / "neurons.csv", index=False)
    s = ReviewSession.open(out, "drg_s3", "AB")
    nid = _interior(s)[0]
    with pytest.raises(ReviewError, match="no call"):
        s.flip_call(nid)
    s.set_call(nid, True)
    summ = s.recompute()
    rev = pd.read_csv(out / "drg_s3" / "reviewed" / "neurons.csv").set_index("neuron_id")
    assert bool(rev.loc[nid, "igg_positive"])
    assert summ["n_reviewed"] == summ["n_auto"]


def test_skin_edits_and_recompute(tmp_path):
    out = make_skin_results(tmp_path)
    before = _snapshot(out / "skin_a")
    s = ReviewSession.open(out, "skin_a", "AB")
    assert s.kind == "skin" and len(s.crossings) == 5
    s.add_crossing(31.0, 195.0)
    s.delete_crossing(near_um=(30.0, 61.0))
    new_dej = np.array([[30.0, 0.0], [25.0, 100.0], [30.0, 199.5]])
    s.set_polyline("dej", new_dej)
    s.set_polyline("surface", np.array([[10.0, 0.0], [10.0, 150.0]]))
    # exclude the region x in [90, 110] µm: one automatic crossing (x=100) and 20 µm of surface
    s.exclude_region(np.array([[0.0, 90.0], [0.0, 110.0], [100.0, 110.0], [100.0, 90.0]]))

    s2 = ReviewSession.open(out, "skin_a", "AB")
    pd.testing.assert_frame_equal(s2.crossings, s.crossings)
    np.testing.assert_allclose(s2.polylines["dej"], new_dej)
    assert len(s2.excluded_regions) == 1
    summ = s2.recompute()
    assert summ["n_auto"] == 5
    assert summ["n_reviewed"] == 5 - 1 + 1 - 1
    assert summ["epidermis_length_mm_reviewed"] == pytest.approx(0.130, abs=1e-3)
    assert summ["dej_length_mm_reviewed"] == pytest.approx(
        (polyline_length_um(new_dej) - 20.0) / 1000, abs=2e-3)
    assert summ["ienfd_per_mm_reviewed"] == pytest.approx(4 / 0.130, rel=1e-2)
    # the lines were redrawn: automatic crossings recounted against them (skin library),
    # the reviewer's deletion re-applied, the reviewer's addition kept
    assert summ["recount_from_dej"].startswith("recounted")
    rev = pd.read_csv(out / "skin_a" / "reviewed" / "crossings.csv")
    assert len(rev) == 5 and int(rev["excluded"].sum()) == 1
    auto_rows = rev.loc[rev["source"] == "auto"]
    assert sorted(auto_rows["x_um"].round(1)) == [20.0, 100.0, 140.0, 180.0]
    assert (auto_rows["y_um"] < 30.0).all()  # now on the redrawn DEJ
    assert (rev["source"] == "reviewer").sum() == 1
    df = pd.read_csv(out / "skin_summary_reviewed.csv")
    assert df.loc[0, "n_reviewed"] == 4 and df.loc[0, "delta"] == -1
    assert _snapshot(out / "skin_a") == before
    kinds = [e["kind"] for e in s2.history()]
    assert kinds == ["add_crossing", "delete_crossing", "redraw_dej", "redraw_surface",
                     "exclude_region", "recompute"]
    dej_rec = s2.history()[2]
    np.testing.assert_allclose(dej_rec["after"]["vertices_um"], new_dej)
    assert dej_rec["before"]["length_um"] == pytest.approx(199.5)


def test_review_model_imports_no_qt():
    import subprocess

    code = ("import sys, histo_fms.review; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('napari', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'qtpy')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_audit_survives_torn_line(drg_out):
    s = ReviewSession.open(drg_out, "drg_s3", "AB")
    s.set_excluded(_interior(s)[0])
    with open(s.audit.path, "a") as fh:
        fh.write('{"seq": 2, "kind": "del')  # crash mid-write
    assert [e["kind"] for e in s.history()] == ["exclude"]


def test_real_skin_pipeline_review(tmp_path):
    from histo_fms.batch import run_pipeline
    from histo_fms.config import load_config
    from histo_fms.io import write_ome_tiff
    from histo_fms.skin import recount_skin
    from histo_fms.synthetic.skin import make_skin_section

    ph = make_skin_section((300, 800), 0.5, density_per_mm=15, seed=2)
    p = write_ome_tiff(ph.image, tmp_path / "skin_x.ome.tif", channel_names=ph.channel_names,
                       pixel_size_um=0.5)
    cfg = load_config(None, pipeline="skin", overrides={
        "channels": {"fibre": "PGP9.5", "membrane": "ColIV", "nuclei": "DAPI"},
        "parallel": {"scheduler": "synchronous"}})
    out = tmp_path / "out"
    run_pipeline(cfg, [p], out)
    auto = pd.read_csv(out / "skin_summary.csv").iloc[0]
    s = ReviewSession.open(out, "skin_x", "AB")
    summ = s.recompute()  # no edits: reviewed == automatic
    assert summ["n_reviewed"] == summ["n_auto"] == auto["n_crossings"]
    assert summ["ienfd_per_mm_reviewed"] == pytest.approx(auto["ienfd_per_mm"], rel=1e-3)
    assert summ["epidermis_length_mm_reviewed"] == pytest.approx(auto["epidermis_length_mm"],
                                                                 rel=1e-4)
    # redraw the DEJ 5 µm deeper: recounted by the skin library against the new line
    dej = s.polylines["dej"] + np.array([5.0, 0.0])
    s.set_polyline("dej", dej)
    summ = s.recompute()
    want = recount_skin(read_labels_zarr(out / "skin_x" / "labels.zarr")["fibres"],
                        pixel_size_um=0.5, dej_um=dej, surface_um=s.polylines["surface"],
                        params=cfg.params())
    assert summ["n_reviewed"] == want.n_crossings
    rev = pd.read_csv(out / "skin_x" / "reviewed" / "crossings.csv")
    np.testing.assert_allclose(np.sort(rev["x_um"]), np.sort(want.crossings["x_um"]),
                               atol=1e-3)
    assert set(read_labels_zarr(out / "skin_x" / "reviewed" / "labels.zarr")) == {
        "epidermis", "fibres"}


def test_second_window_cannot_overwrite_edits(drg_out):
    s1 = ReviewSession.open(drg_out, "drg_s3", "AB")
    s2 = ReviewSession.open(drg_out, "drg_s3", "CD")
    ids = _interior(s1)
    s1.set_excluded(ids[0])
    with pytest.raises(ReviewError, match="changed elsewhere"):
        s2.set_excluded(ids[1])
    s3 = ReviewSession.open(drg_out, "drg_s3", "CD")
    assert s3.excluded == {ids[0]}
    s3.set_excluded(ids[1])
    assert ReviewSession.open(drg_out, "drg_s3", "AB").excluded == {ids[0], ids[1]}


def test_recompute_without_edits_reproduces_automatic(drg_out):
    s = ReviewSession.open(drg_out, "drg_s3", "AB")
    summ = s.recompute()
    auto = pd.read_csv(drg_out / "drg_s3" / "neurons.csv")
    rev = pd.read_csv(drg_out / "drg_s3" / "reviewed" / "neurons.csv")
    for col in ("neuron_id", "area_um2", "ring_igg", "igg_positive", "touches_border"):
        np.testing.assert_allclose(rev[col].astype(float), auto[col].astype(float), rtol=1e-5)
    assert summ["delta"] == 0 and summ["delta_pct_igg_positive"] == 0
    assert (rev["call_source"] == "threshold").all() and not rev["excluded"].any()


def test_audit_tail_equals_the_end_of_the_log(tmp_path):
    from histo_fms.review._audit import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl")
    assert log.tail(5) == []
    for i in range(3000):  # a long review: the tail spans several read blocks
        log.append({"seq": i, "kind": "flip", "params": {"note": "é" * (i % 7)}})
    full = log.read()
    for n in (1, 30, 2999, 3000, 4000):
        assert log.tail(n) == full[-n:]
    with open(log.path, "a") as fh:
        fh.write('{"seq": 3000, "kind": "del')  # crash mid-write
    assert log.tail(2) == full[-2:]
