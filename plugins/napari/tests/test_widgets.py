"""Review and run widgets: edits through the widgets, saved, reopened, recomputed."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_histo_fms import ReviewWidget, RunWidget

STEM = "drgimg_m1_fms"


def _interior(table):
    return [int(i) for i in table.loc[~table["touches_border"].astype(bool), "neuron_id"]]


def test_drg_review_widget_edits_roundtrip(make_napari_viewer, drg_out):
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.results_edit.setText(str(drg_out))
    w._fill_images()
    assert w.image_combo.currentText() == STEM
    w.reviewer_edit.setText("AB")
    w._open_clicked()
    assert w.session is not None and "neurons" in viewer.layers
    auto = pd.read_csv(drg_out / STEM / "neurons.csv")
    ids = _interior(auto)
    gone, flipped = ids[0], ids[1]
    was = bool(auto.set_index("neuron_id").loc[flipped, "igg_positive"])

    # select in the labels layer (as the picker does), then press the buttons
    lab = viewer.layers["neurons"]
    lab.selected_label = gone
    assert w.neuron_spin.value() == gone
    assert f"neuron {gone}" in w.info_label.text()
    w.delete_btn.click()
    assert not (viewer.layers["neurons"].data == gone).any()
    lab.selected_label = flipped
    w.flip_btn.click()
    want = "positive" if not was else "negative"
    from napari_histo_fms._layers import COLOURS

    np.testing.assert_allclose(viewer.layers["neurons"].colormap.color_dict[flipped],
                               COLOURS[want])
    assert w.error_label.text() == ""

    # hand painting in the layer is saved as one edit
    data = viewer.layers["neurons"].data
    data[0:4, 100:104] = 777
    viewer.layers["neurons"].data = data
    w.apply_painting()

    # reopen in a fresh widget: everything restored, then recompute
    w2 = ReviewWidget(viewer)
    w2.open_session(drg_out, STEM, "AB")
    assert not (w2.session.neurons == gone).any()
    assert (w2.session.neurons[0:4, 100:104] == 777).all()
    assert w2.session.call(flipped) is (not was)
    summary = w2.recompute()
    assert "automatic:" in w2.result_label.text() and "reviewed:" in w2.result_label.text()
    rev = pd.read_csv(drg_out / STEM / "reviewed" / "neurons.csv").set_index("neuron_id")
    assert set(auto["neuron_id"]) - set(rev.index) == {gone}
    assert 777 in rev.index
    assert bool(rev.loc[flipped, "igg_positive"]) is (not was)
    assert rev.loc[flipped, "call_source"] == "reviewer"
    changed = (rev.loc[auto["neuron_id"].drop(auto.index[auto["neuron_id"] == gone]),
                       "call_source"] == "reviewer")
    assert changed.sum() == 1
    assert summary["delta"] == summary["n_reviewed"] - summary["n_auto"]
    summ = pd.read_csv(drg_out / "drg_summary_reviewed.csv")
    assert summ.loc[0, "n_reviewed"] == summary["n_reviewed"]
    log = [json.loads(x) for x in
           (drg_out / STEM / "reviewed" / "audit.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in log] == ["delete", "flip", "paint_layer", "recompute"]
    assert log[0]["params"] == {"neuron_id": gone}
    assert log[1]["before"]["igg_positive"] is was and log[1]["after"]["igg_positive"] is (
        not was)
    assert all(e["reviewer"] == "AB" for e in log)
    # the automatic table is untouched
    pd.testing.assert_frame_equal(pd.read_csv(drg_out / STEM / "neurons.csv"), auto)


def test_drg_painting_is_autosaved(make_napari_viewer, drg_out, qtbot):
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    w.open_session(drg_out, STEM, "AB")
    lab = viewer.layers["neurons"]
    lab.brush_size = 5
    lab.paint((3, 200), 888)  # one brush stroke, as the paint tool does
    qtbot.waitUntil(lambda: (w.session.neurons == 888).any(), timeout=5000)
    rec = w.session.history()[-1]
    assert rec["kind"] == "paint_layer" and rec["after"]["pixels_by_id"] == {
        "888": int((w.session.neurons == 888).sum())}
    w2 = ReviewWidget(viewer)
    assert (w2.open_session(drg_out, STEM, "AB").neurons == 888).any()


def test_drg_merge_split_and_errors(make_napari_viewer, drg_out):
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    w.open_session(drg_out, STEM, "AB")
    ids = _interior(w.session.table)
    w.merge_edit.setText(f"{ids[0]}, {ids[1]}")
    w.merge_btn.click()
    assert not (w.session.neurons == max(ids[0], ids[1])).any()
    t = w.session.auto_table.set_index("neuron_id")
    layer = w._seeds_layer()
    layer.data = np.array([[t.loc[i, "y_um"], t.loc[i, "x_um"]] for i in ids[:2]])
    w.split_btn.click()
    assert len(np.unique(w.session.neurons)) == len(np.unique(
        w.session.auto_labels["neurons"]))
    w.neuron_spin.setValue(0)
    w.delete_btn.click()  # nothing selected: an error in the widget, no exception
    assert "select a neuron" in w.error_label.text()


def test_skin_review_widget(make_napari_viewer, skin_out):
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    w.open_session(skin_out, "skin_a", "CD")
    assert w.skin_box.isVisibleTo(w) and not w.drg_box.isVisibleTo(w)
    w.autosave_paint.setChecked(False)
    # add a crossing by clicking in the points layer, delete another, then save
    pts = viewer.layers["crossings"]
    pts.add(np.array([[32.0, 150.0]]))
    pts.selected_data = {0}
    pts.remove_selected()
    recs = w.sync_crossings()
    assert [r["kind"] for r in recs] == ["delete_crossing", "add_crossing"]
    # redraw the DEJ: draw a path in the DEJ layer, press the button
    new = np.array([[30.0, 0.0], [25.0, 100.0], [30.0, 199.5]])
    viewer.layers["DEJ"].add_paths([new])
    w.dej_btn.click()
    assert w.error_label.text() == ""
    np.testing.assert_allclose(w.session.polylines["dej"], new)
    assert len(viewer.layers["DEJ"].data) == 1
    w.add_crossing(31.0, 190.0)
    w.recompute()
    # reopen: the edits are all there
    w2 = ReviewWidget(viewer)
    w2.open_session(skin_out, "skin_a", "CD")
    np.testing.assert_allclose(w2.session.polylines["dej"], new)
    rev = pd.read_csv(skin_out / "skin_a" / "reviewed" / "crossings.csv")
    assert len(rev) == 5 - 1 + 1 + 1
    assert sorted(rev.loc[rev["source"] == "reviewer", "x_um"]) == [150.0, 190.0]
    assert 20.0 not in set(rev["x_um"])
    assert w.last_summary["n_reviewed"] == 6 and w.last_summary["delta"] == 1
    kinds = [e["kind"] for e in w2.session.history()]
    assert kinds == ["delete_crossing", "add_crossing", "redraw_dej", "add_crossing",
                     "recompute"]
    assert "IENFD" in w.result_label.text()


def test_skin_autosave_from_layers(make_napari_viewer, skin_out, qtbot):
    """Edits made directly in the layers are saved without pressing anything."""
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    w.open_session(skin_out, "skin_a", "CD")
    assert w.autosave_paint.isChecked()
    s = w.session
    viewer.layers["crossings"].add(np.array([[33.0, 120.0]]))
    qtbot.waitUntil(lambda: len(s.crossings) == 6, timeout=5000)
    pts = viewer.layers["crossings"]
    pts.selected_data = {1}
    pts.remove_selected()
    qtbot.waitUntil(lambda: len(s.crossings) == 5, timeout=5000)
    assert 60.0 not in set(s.crossings["x_um"])
    new = np.array([[28.0, 0.0], [28.0, 199.5]])
    viewer.layers["DEJ"].add_paths([new])
    qtbot.waitUntil(lambda: np.allclose(s.polylines["dej"], new), timeout=5000)
    assert len(viewer.layers["DEJ"].data) == 1
    region = np.array([[0.0, 90.0], [0.0, 130.0], [100.0, 130.0], [100.0, 90.0]])
    viewer.layers["excluded regions"].add_polygons([region])
    qtbot.waitUntil(lambda: len(s.excluded_regions) == 1, timeout=5000)
    qtbot.waitUntil(lambda: s.crossings["excluded"].sum() == 2, timeout=5000)  # x=100, 120
    kinds = [e["kind"] for e in ReviewWidget(viewer).open_session(
        skin_out, "skin_a", "CD").history()]
    assert kinds == ["add_crossing", "delete_crossing", "redraw_dej", "exclude_region"]
    summ = w.recompute()
    assert summ["n_reviewed"] == 5 - 1 + 1 - 2


@pytest.mark.parametrize("cancel", [False, True])
def test_run_widget(make_napari_viewer, tmp_path, cancel):
    from plugin_testdata import write_drg_inputs

    from napari_histo_fms import get_image_reader

    (path,) = write_drg_inputs(tmp_path, ["drgimg_m2_hc"])
    viewer = make_napari_viewer()
    for data, kw, kind in get_image_reader(str(path))(str(path)):
        getattr(viewer, f"add_{kind}")(data, **kw)
    w = RunWidget(viewer)
    assert w.image_edit.text() == str(path)
    assert w.roles() == {"neuron": "NeuN", "igg": "IgG", "sgc": "GS", "nuclei": "DAPI"}
    w.out_edit.setText(str(tmp_path / "res"))
    if cancel:
        w._cancel = True
        gen_report = w.run(block=True)  # run() resets the flag; cancel mid-run instead
        assert gen_report is not None
        w2 = RunWidget(viewer)
        w2.out_edit.setText(str(tmp_path / "res2"))
        w2.image_edit.setText(str(path))
        w2.load_channels()
        from napari_histo_fms._run_widget import run_files

        gen = run_files(w2.config(), [path, path], tmp_path / "res2",
                        cancelled=lambda: True)
        with pytest.raises(StopIteration) as stop:
            next(gen)
        assert stop.value.value is None
        return
    report = w.run(block=True)
    assert report is not None and not report.failed
    assert (tmp_path / "res" / "drgimg_m2_hc" / "neurons.csv").is_file()
    assert "neurons" in viewer.layers
    assert w.progress.value() == 1
    assert "done" in w.status_label.text()


def test_run_widget_worker(make_napari_viewer, tmp_path, qtbot):
    from plugin_testdata import write_drg_inputs

    (path,) = write_drg_inputs(tmp_path, ["drgimg_m3_fms"])
    viewer = make_napari_viewer()
    w = RunWidget(viewer)
    w.image_edit.setText(str(path))
    w.load_channels()
    w.out_edit.setText(str(tmp_path / "res"))
    worker = w.run()
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    assert w.report is not None
    assert "neurons" in viewer.layers
