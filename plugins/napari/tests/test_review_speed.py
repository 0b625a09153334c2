"""Whole-section speed-ups stay exact: colour table, background saves, stopping the overview."""

import time

import numpy as np
import zarr
from plugin_testdata import interior_ids

from napari_histo_fms import ReviewWidget

STEM = "drgimg_m1_fms"


def test_colour_table_built_with_numpy_is_napari_s_own():
    from napari.utils.colormaps import DirectLabelColormap
    from napari.utils.colormaps.colormap import _texture_dtype

    from napari_histo_fms._layers import COLOURS, direct_colormap

    rng = np.random.default_rng(0)
    names = list(COLOURS)
    cols = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0)}
    for i in rng.choice(np.arange(1, 65536), 3000, replace=False):
        cols[int(i)] = COLOURS[names[int(i) % len(names)]]
    cols[70000] = COLOURS["positive"]  # beyond 16 bits: not in the table
    cm = direct_colormap(cols)
    u16 = np.dtype(np.uint16)
    key = (u16, np.dtype(_texture_dtype(cm._num_unique_colors, u16)))
    assert key in cm._cache_mapping  # filled before napari asks
    ref = DirectLabelColormap(color_dict=dict(cols))
    assert cm._num_unique_colors == ref._num_unique_colors
    expected = ref._map_without_cache(np.arange(65536, dtype=np.uint16))
    np.testing.assert_array_equal(cm._cache_mapping[key], expected)
    probe = np.array([[0, 5, 65535], [int(next(iter(set(cols) - {None, 0, 70000}))), 1, 2]],
                     np.uint16)
    np.testing.assert_array_equal(cm.map(probe), ref.map(probe))


def test_widget_edits_are_saved_in_the_background_exactly(opened, qtbot):
    from histo_fms.review import ReviewSession

    viewer, w, out = opened
    s = w.session
    assert s._saver is not None  # background saves on
    ids = interior_ids(s.table)
    w.delete_neuron(ids[0])
    w.merge([ids[1], ids[2]])
    w.undo()
    w.redo()
    expected = s.neurons.copy()
    assert s.flush(timeout=60)
    disk = zarr.open_group(str(s.dir / "labels.zarr"), mode="r")["labels/neurons/0"][...]
    assert np.array_equal(np.asarray(disk), expected)
    assert not (s.dir / "labels_journal.bin").stat().st_size  # emptied once written
    assert np.array_equal(ReviewSession.open(out, STEM, "AB").neurons, expected)


def test_closing_napari_while_the_overview_is_computed_stops_it(make_napari_viewer, drg_out,
                                                                monkeypatch, qtbot):
    import napari_histo_fms._layers as layers_mod

    monkeypatch.setattr(layers_mod, "PYRAMID_PIXELS", 0)  # the small test image: "large"
    monkeypatch.setattr(layers_mod, "PYRAMID_TOP", 64)
    monkeypatch.setattr(layers_mod, "OVERVIEW_SIDE", 128)
    real = layers_mod.overview_steps
    steps = []

    def slow_steps(levels):  # a long overview: many bands
        for _ in range(300):
            steps.append(1)
            time.sleep(0.01)
            yield
        return (yield from real(levels))

    monkeypatch.setattr(layers_mod, "overview_steps", slow_steps)
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.open_session(drg_out, STEM, "AB")
    assert w.image_pending
    worker = w._overview_worker
    s = w.session
    w.delete_neuron(interior_ids(s.table)[0])
    expected = s.neurons.copy()
    qtbot.waitUntil(lambda: len(steps) > 3, timeout=20000)
    viewer.close()
    qtbot.waitUntil(lambda: w.session is None, timeout=20000)  # the widget shut down
    qtbot.waitUntil(lambda: not worker.is_running, timeout=20000)
    assert len(steps) < 300  # stopped between bands, not run to the end
    assert not w.image_pending
    # the review was saved on closing (background saves flushed)
    disk = zarr.open_group(str(s.dir / "labels.zarr"), mode="r")["labels/neurons/0"][...]
    assert np.array_equal(np.asarray(disk), expected)


def test_layer_features_follow_every_edit_kind_without_a_rebuild(opened):
    """After delete, merge, split (new ids) and undo the neurons layer's features (what
    napari's status bar shows) equal a fresh build from the model, row for row."""
    from napari_histo_fms._layers import neuron_features

    viewer, w, _ = opened
    s = w.session
    lab = viewer.layers["neurons"]
    ids = interior_ids(s.table)
    w.delete_neuron(ids[0])
    w.merge([ids[1], ids[2]])
    row = s.table.set_index("neuron_id").loc[ids[3]]
    w.split(ids[3], [(row["y_um"] - 3.0, row["x_um"]), (row["y_um"] + 3.0, row["x_um"])])
    new_ids = s.history()[-1]["after"]["ids"]
    assert any(i not in set(s.auto_table["neuron_id"]) for i in new_ids)
    w.toggle_excluded(ids[4])
    w.undo()
    fresh = neuron_features(s, w.table.model.df).set_index("index")
    shown = lab.features.set_index("index")
    for nid in [*new_ids, ids[1], ids[4], ids[5]]:
        k = lab._label_index[int(nid)]  # napari's hover reads this row
        assert int(lab.features["index"].iat[k]) == int(nid)
        a, b = shown.loc[int(nid)], fresh.loc[int(nid)]
        assert list(a.index) == list(b.index)
        for c in a.index:
            assert a[c] == b[c] or (a[c] != a[c] and b[c] != b[c]), (nid, c, a[c], b[c])
