"""Undo through Ctrl+Z, the object table, triage, cut-line split and one-line errors."""

import shutil

import numpy as np
import pandas as pd
from app_model.types import KeyBinding
from plugin_testdata import interior_ids

from napari_histo_fms import ReviewWidget, RunWidget

STEM = "drgimg_m1_fms"


def _press(layer, key):
    """Run a layer's key binding as napari does on a key press."""
    fn = layer.keymap[KeyBinding.from_str(key)]
    return fn(layer)


def test_ctrl_z_in_the_neurons_layer_undoes_in_the_model(opened):
    from histo_fms.review import ReviewSession

    viewer, w, out = opened
    lab = viewer.layers["neurons"]
    assert viewer.layers.selection.active is lab  # active after opening: shortcuts work
    ids = interior_ids(w.session.table)
    a = ids[0]
    w.go_to(a)
    _press(lab, "Delete")
    assert not (lab.data == a).any() and not (w.session.neurons == a).any()
    assert w.table.model.value(w.table.model.row_of[a], "status") == "deleted"
    assert len(viewer.layers["deleted"].data) == 1
    # paint in the layer (autosaved as one edit), then Ctrl+Z twice
    data = lab.data
    data[0:3, 0:5] = 555
    lab.data = data
    w.apply_painting()
    _press(lab, "Control-Z")
    assert not (lab.data == 555).any()
    _press(lab, "Control-Z")
    # screen and disk agree after undo
    disk = ReviewSession.open(out, STEM, "AB").neurons
    assert np.array_equal(np.asarray(lab.data), w.session.neurons)
    assert np.array_equal(disk, w.session.neurons)
    assert np.array_equal(disk, w.session.auto_labels["neurons"])
    _press(lab, "Control-Shift-Z")
    assert not (lab.data == a).any()
    kinds = [e["kind"] for e in w.session.history()]
    assert kinds == ["delete", "paint_layer", "undo", "undo", "redo"]


def test_flip_shortcut_changes_only_that_neurons_colour(opened):
    viewer, w, _ = opened
    lab = viewer.layers["neurons"]
    ids = interior_ids(w.session.table)
    a = ids[0]
    before = {k: tuple(v) for k, v in lab.colormap.color_dict.items() if k}
    w.go_to(a)
    _press(lab, "C")
    after = {k: tuple(v) for k, v in lab.colormap.color_dict.items() if k}
    changed = {k for k in before if not np.allclose(before[k], after.get(k, (9,) * 4))}
    assert changed == {a}
    assert w.table.model.value(w.table.model.row_of[a], "call_source") == "reviewer"


def test_object_table_click_select_filter_and_triage(opened):
    viewer, w, _ = opened
    s = w.session
    t = w.table
    assert t.model.rowCount() == len(s.neuron_ids())
    # click a row: the neuron is selected and the view centred on it
    nid = t.click_row(2)
    assert w.neuron_spin.value() == nid
    row = s.table.set_index("neuron_id").loc[nid]
    np.testing.assert_allclose(viewer.camera.center[-2:], (row["y_um"], row["x_um"]))
    # select on the canvas: its row is highlighted
    other = [i for i in s.neuron_ids() if i != nid][0]
    viewer.layers["neurons"].selected_label = int(other)
    assert t.selected_id() == int(other)
    # filters
    t.filter_combos["call"].setCurrentText("IgG+")
    shown = {int(t.model.value(t.proxy.mapToSource(t.proxy.index(r, 0)).row(), "neuron_id"))
             for r in range(t.proxy.rowCount())}
    want = {int(i) for i in s.neuron_ids() if s.call(int(i))}
    assert shown == want
    t.filter_combos["call"].setCurrentText("all")
    # triage: nearest to the threshold first (log scale), each marked reviewed on leaving
    thr = float(s.run["threshold"]["ring_igg"])
    tab = s.table.set_index("neuron_id")
    order = np.abs(np.log(tab["ring_igg"]) - np.log(thr)).sort_values().index.tolist()
    w.neuron_spin.setValue(0)
    seen = [w.next_neuron("threshold") for _ in range(3)]
    assert seen == order[:3]
    assert t.progress_label.text() == f"reviewed 2 of {len(s.neuron_ids())}"
    assert w.previous_neuron() == seen[1]
    first_unrev = w.next_neuron("unreviewed")
    assert first_unrev not in seen[:2]


def test_split_along_line_and_merge_box_errors(opened):
    viewer, w, _ = opened
    s = w.session
    nid = interior_ids(s.table)[0]
    ys, xs = np.nonzero(s.neurons == nid)
    yc = ys.mean() * 0.5
    layer = w._cut_layer()
    layer.add_paths([np.array([[yc, (xs.min() - 3) * 0.5], [yc, (xs.max() + 3) * 0.5]])])
    w.split_line_btn.click()
    assert w.error_label.text() == ""
    rec = s.history()[-1]
    assert rec["kind"] == "split" and len(rec["after"]["ids"]) == 2
    assert len(viewer.layers["split line"].data) == 0
    w.merge_edit.setText("4, abc")
    w.merge_btn.click()
    msg = w.error_label.text()
    assert "'abc' is not a neuron id" in msg and "\n" not in msg


def test_missing_labels_is_one_line(make_napari_viewer, drg_out):
    shutil.rmtree(drg_out / STEM / "labels.zarr")
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    w.results_edit.setText(str(drg_out))
    w._fill_images()
    w.reviewer_edit.setText("AB")
    w._open_clicked()
    msg = w.error_label.text()
    assert "labels.zarr is missing" in msg and "\n" not in msg
    assert w.session is None


def test_run_widget_says_nothing_was_called_and_refuses_missing_roles(
        make_napari_viewer, tmp_path):
    from plugin_testdata import write_drg_inputs

    (path,) = write_drg_inputs(tmp_path, ["drgimg_m2_hc"])
    viewer = make_napari_viewer()
    w = RunWidget(viewer)
    w.image_edit.setText(str(path))
    w.load_channels()
    # a skin run on a DRG image: 'fibre' is never silently mapped to another channel
    w.pipeline_combo.setCurrentText("skin")
    assert "fibre" not in w.roles()
    w.out_edit.setText(str(tmp_path / "skin"))
    w.run_btn.click()
    msg = w.status_label.text()
    assert "required role 'fibre'" in msg and "\n" not in msg
    assert not (tmp_path / "skin").exists()
    # DRG with no control section and no threshold: the widget says nothing was called
    w.pipeline_combo.setCurrentText("drg")
    w.out_edit.setText(str(tmp_path / "drg"))
    report = w.run(block=True)
    assert report.threshold is None
    assert "no IgG calls" in w.status_label.text()
    t = pd.read_csv(tmp_path / "drg" / "drgimg_m2_hc" / "neurons.csv")
    assert t["igg_positive"].isna().all()


def test_painting_a_shared_layer_is_saved_exactly_and_undone(make_napari_viewer, drg_out,
                                                             monkeypatch, qtbot):
    """Whole sections share the labels array with the model: strokes come from events."""
    from histo_fms.review import ReviewSession

    import napari_histo_fms._layers as layers_mod
    import napari_histo_fms._review_widget as widget_mod

    monkeypatch.setattr(layers_mod, "SHARE_PIXELS", 0)
    monkeypatch.setattr(widget_mod, "SHARE_PIXELS", 0)
    monkeypatch.setattr(layers_mod, "DISPLAY_MAX_ID", 0)  # ids beyond 16 bits: shared
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.open_session(drg_out, STEM, "AB")
    s = w.session
    lab = viewer.layers["neurons"]
    assert lab.data is s.neurons  # no copy
    auto = s.neurons.copy()
    a = interior_ids(s.table)[0]
    row = s.table.set_index("neuron_id").loc[a]
    yc, xc = row["y_um"] / s.pixel_size_um, row["x_um"] / s.pixel_size_um
    lab.brush_size = 6
    lab._begin_stroke()
    for dy in range(0, 20, 4):
        lab.paint((yc + dy, xc), 999)
    lab._commit_stroke()
    qtbot.waitUntil(lambda: bool(s.history()) and s.history()[-1]["kind"] == "paint_layer",
                    timeout=5000)
    painted = s.neurons == 999
    assert painted.any()
    rec = s.history()[-1]
    assert rec["params"]["n_pixels"] == int(painted.sum())
    assert rec["before"]["pixels_by_id"] == {
        str(k): int(v) for k, v in zip(*np.unique(auto[painted], return_counts=True),
                                       strict=True)}
    disk = ReviewSession.open(drg_out, STEM, "AB").neurons
    assert np.array_equal(disk, s.neurons)
    w.undo()
    assert np.array_equal(s.neurons, auto) and lab.data is s.neurons
    assert np.array_equal(ReviewSession.open(drg_out, STEM, "AB").neurons, auto)


def test_local_recompute_updates_only_the_remeasured_neurons(opened, monkeypatch):
    """After a local Recompute the table, colours and rings on screen match the model."""
    from histo_fms.review import _remeasure

    monkeypatch.setattr(_remeasure, "MAX_LOCAL_FRACTION", 10.0)  # a small image: allow it
    viewer, w, out = opened
    s = w.session
    ids = interior_ids(s.table)
    w.delete_neuron(ids[0])
    w.flip_call(ids[1])
    viewer.layers["rings"].visible = True
    w.recompute(block=True)
    assert s.last_recompute_local is not None
    redo, boxes = s.last_recompute_local
    assert ids[0] in redo and boxes
    # the rings drawn are the re-measured ones
    rl = viewer.layers["rings"]
    np.testing.assert_array_equal(np.asarray(rl._slice.image.raw),
                                  np.asarray(s.labels["rings"][...]))
    # the table shows the re-measured values
    rows = w.table.model.df.set_index("neuron_id")
    t = s.table.set_index("neuron_id")
    live = [i for i in redo if i in t.index]
    assert live
    np.testing.assert_allclose(rows.loc[live, "ring_igg"].astype(float),
                               t.loc[live, "ring_igg"].astype(float), equal_nan=True)
    assert rows.loc[ids[0], "status"] == "deleted"
    # a second recompute rewrites the boxes of the same (reviewed) rings
    w.delete_neuron(ids[3])
    w.recompute(block=True)
    np.testing.assert_array_equal(np.asarray(rl._slice.image.raw),
                                  np.asarray(s.labels["rings"][...]))
    # hidden rings get the re-measured data, read when shown
    w.delete_neuron(ids[2])
    viewer.layers["rings"].visible = False
    w.recompute(block=True)
    viewer.layers["rings"].visible = True
    np.testing.assert_array_equal(np.asarray(viewer.layers["rings"]._slice.image.raw),
                                  np.asarray(s.labels["rings"][...]))
