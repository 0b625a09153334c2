"""Blinded queue widget: nothing identifying reaches the screen before unblinding."""

import shutil

import numpy as np
import pandas as pd
from plugin_testdata import DRG_IMAGES
from qtpy.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QTextEdit,
    QWidget,
)

from napari_histo_fms import QueueWidget

#: Everything that would unblind: file names, stems, subjects, groups, animals.
SECRETS = ([f"{s}.ome.tif" for s in DRG_IMAGES] + list(DRG_IMAGES)
           + [v[1] for v in DRG_IMAGES.values()] + [v[2] for v in DRG_IMAGES.values()]
           + ["drgimg", "FMS", "HC-"])


def _texts(widget: QWidget) -> list[str]:
    out = [widget.windowTitle(), widget.toolTip()]
    for w in [widget, *widget.findChildren(QWidget)]:
        out += [w.toolTip(), w.windowTitle(), w.statusTip(), w.accessibleName()]
        if isinstance(w, QLabel | QLineEdit | QAbstractButton):
            out.append(w.text())
        if isinstance(w, QLineEdit):
            out.append(w.placeholderText())
        if isinstance(w, QComboBox):
            out += [w.itemText(i) for i in range(w.count())]
        if isinstance(w, QPlainTextEdit | QTextEdit):
            out.append(w.toPlainText())
        if isinstance(w, QProgressBar):
            out.append(w.text())
        if isinstance(w, QGroupBox):
            out.append(w.title())
    return [t for t in out if t]


def _screen_texts(viewer, widget) -> list[str]:
    qt_window: QMainWindow = viewer.window._qt_window
    out = [viewer.title, qt_window.windowTitle()]
    out += [layer.name for layer in viewer.layers]
    out += [str(layer.source.path or "") for layer in viewer.layers]
    out += _texts(widget)
    out += _texts(qt_window)  # dock titles, layer list, status bar
    return out


def _assert_blind(viewer, widget, results_dir):
    for text in _screen_texts(viewer, widget):
        t = text.replace(str(results_dir), "<results>")
        for s in SECRETS:
            assert s not in t, f"{s!r} visible in {text!r}"


def test_blinded_queue_hides_names_until_unblinded(make_napari_viewer, batch_master, tmp_path):
    results = tmp_path / "blindtest"
    shutil.copytree(batch_master, results)
    viewer = make_napari_viewer()
    w = QueueWidget(viewer)
    viewer.window.add_dock_widget(w, name="Blinded review queue")
    w.start(results, "AB", seed=5)
    assert w.case_label.text() == "case 1 of 3"
    assert viewer.title == "histo-fms review: case 1 of 3"
    assert "neurons" in viewer.layers and "NeuN" in viewer.layers
    assert not w.unblind_btn.isEnabled()
    _assert_blind(viewer, w, results)

    # review the first case: flip a call, recompute, complete
    s = w.review.session
    nid = int(s.table.loc[~s.table["touches_border"], "neuron_id"].iloc[0])
    viewer.layers["neurons"].selected_label = nid
    w.review.flip_btn.click()
    w.review.recompute()
    _assert_blind(viewer, w, results)
    first = s.stem
    w.next_btn.click()
    assert w.case_label.text() == "case 2 of 3"
    assert w.review.session.stem != first
    n_layers = len(viewer.layers)
    _assert_blind(viewer, w, results)

    # resume in a new widget (as after a restart): same case
    w2 = QueueWidget(viewer)
    w2.start(results, "AB", seed=5, clear_layers=True)  # the user's consent (asked in the GUI)
    assert w2.case_label.text() == "case 2 of 3"
    assert len(viewer.layers) <= n_layers * 2
    w2.next_btn.click()
    _assert_blind(viewer, w2, results)
    w2.next_btn.click()
    assert "finished" in w2.case_label.text()
    assert w2.unblind_btn.isEnabled()
    _assert_blind(viewer, w2, results)

    # unblinding is explicit and recorded; then names appear
    w2.unblind_btn.click()
    kv = w2.key_view
    key = " ".join(kv.item(i, j).text() for i in range(kv.rowCount())
                   for j in range(kv.columnCount()))
    # the key is a table with automatic vs reviewed numbers per case
    kt = w2.key_table.set_index("stem")
    assert {"n_auto", "n_reviewed", "pct_igg_positive_auto",
            "pct_igg_positive_reviewed"} <= set(kt.columns)
    for stem in DRG_IMAGES:
        assert stem in key
    assert "FMS-IgG" in key and "HC-IgG" in key
    events = [e["event"] for e in w2.queue.log]
    assert events[-1] == "unblinded" and events.count("completed") == 3
    # the reviewed summary carries the first case's flip
    summ = pd.read_csv(results / "drg_summary_reviewed.csv").set_index("image")
    row = summ.loc[f"{first}.ome.tif"]
    assert bool(row["reviewed"]) and row["reviewer"] == "AB"
    assert row["n_igg_positive"] == row["n_igg_positive_auto"] + (
        -1 if s.auto_call(nid) else 1)
    assert np.isfinite(row["pct_igg_positive"])


def test_blindness_check_catches_a_leak(make_napari_viewer, batch_master):
    """Negative control: the unblinded review widget names the image, and the check sees it."""
    from napari_histo_fms import ReviewWidget

    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.open_session(batch_master, "drgimg_m2_hc", "AB")
    texts = _screen_texts(viewer, w)
    assert any("drgimg_m2_hc" in t for t in texts)


def _pick(viewer, w, nid):
    """Pick a neuron as napari's picker does (sets the layer's selected label)."""
    viewer.layers["neurons"].selected_label = nid
    return w.review.neuron_spin.value()


def test_queue_selection_does_not_carry_over_and_neuron_1_is_pickable(
        make_napari_viewer, batch_master, tmp_path):
    results = tmp_path / "carry"
    shutil.copytree(batch_master, results)
    viewer = make_napari_viewer()
    w = QueueWidget(viewer)
    w.start(results, "AB", seed=5)
    s1 = w.review.session
    ids = sorted(int(i) for i in s1.neuron_ids())
    nid = max(ids)
    assert _pick(viewer, w, nid) == nid
    w.next_btn.click()
    # case 2: nothing is selected; the first case's neuron and text are gone
    assert w.review.neuron_spin.value() == 0
    assert w.review.info_label.text() == ""
    assert viewer.layers["neurons"].selected_label == 0
    # picking neuron 1 selects neuron 1 (napari's default selected label was 1: no event)
    assert _pick(viewer, w, 1) == 1
    s2 = w.review.session
    assert (s2.neurons == 1).any()
    w.review.delete_btn.click()
    assert w.review.error_label.text() == ""
    log = [e for e in s2.history() if e["kind"] == "delete"]
    assert [e["params"]["neuron_id"] for e in log] == [1]


def test_closing_a_case_recomputes_and_later_edits_mark_the_summary_stale(
        make_napari_viewer, batch_master, tmp_path):
    results = tmp_path / "stale"
    shutil.copytree(batch_master, results)
    viewer = make_napari_viewer()
    w = QueueWidget(viewer)
    w.start(results, "AB", seed=5)
    s = w.review.session
    nid = int(s.table.loc[~s.table["touches_border"], "neuron_id"].iloc[0])
    _pick(viewer, w, nid)
    w.review.flip_btn.click()
    w.next_btn.click()  # no explicit Recompute: closing the case recomputes it
    summ = pd.read_csv(results / "drg_summary_reviewed.csv").set_index("image")
    row = summ.loc[f"{s.stem}.ome.tif"]
    assert bool(row["reviewed"]) and not bool(row["stale"])
    assert row["n_igg_positive"] == row["n_igg_positive_auto"] + (
        -1 if s.auto_call(nid) else 1)
    # an edit after the recompute marks that image's reviewed row stale on disk
    s.flip_call(nid)
    summ = pd.read_csv(results / "drg_summary_reviewed.csv").set_index("image")
    assert bool(summ.loc[f"{s.stem}.ome.tif", "stale"])
    assert not summ.drop(index=f"{s.stem}.ome.tif")["stale"].astype(bool).any()


def test_figures_refuse_a_stale_review(batch_master, tmp_path):
    from histo_fms.cli import main
    from histo_fms.review import ReviewSession

    results = tmp_path / "figs"
    shutil.copytree(batch_master, results)
    stem = sorted(DRG_IMAGES)[0]
    s = ReviewSession.open(results, stem, "AB")
    nid = int(s.table.loc[~s.table["touches_border"], "neuron_id"].iloc[0])
    s.flip_call(nid)
    s.recompute()
    assert main(["figures", str(results), "--format", "png", "--no-mixed-model"]) == 0
    s.flip_call(nid)  # edited after the recompute: the reviewed numbers are stale
    assert main(["figures", str(results), "--format", "png", "--no-mixed-model"]) == 2
    assert main(["figures", str(results), "--format", "png", "--no-mixed-model",
                 "--allow-stale"]) == 0
    # export of reviewed results would pair today's labels with the old tables: refused
    assert main(["export", str(results), "--to", "qupath"]) == 2
    assert main(["export", str(results), "--to", "qupath", "--automatic"]) == 0
    assert main(["export", str(results), "--to", "qupath", "--allow-stale"]) == 0


def test_queue_previous_case_and_user_layers_kept_without_consent(
        make_napari_viewer, batch_master, tmp_path):
    results = tmp_path / "prev"
    shutil.copytree(batch_master, results)
    viewer = make_napari_viewer()
    mine = viewer.add_points(np.zeros((1, 2)), name="my annotations")
    w = QueueWidget(viewer)
    w._guard(w.start, results, "AB", seed=5, clear_layers=False)
    assert "my annotations" in viewer.layers and w.queue is None
    assert "empty viewer" in w.error_label.text()
    viewer.layers.remove(mine)
    w.start(results, "AB", seed=5)
    assert not w.prev_btn.isEnabled()  # first case
    first = w.review.session.stem
    w.next_btn.click()
    assert w.prev_btn.isEnabled()
    w.prev_btn.click()
    assert w.review.session.stem == first
    assert w.case_label.text() == "case 1 of 3 (revisited)"
    assert w.queue.progress[0] == 0  # reopened: it must be completed again
    _assert_blind(viewer, w, results)
    assert [e["event"] for e in w.queue.log].count("reopened") == 1
