"""The neurons layer at whole-section speed: 16-bit display copy, colour table, regions."""

import numpy as np
import pytest
from plugin_testdata import interior_ids

from napari_histo_fms import ReviewWidget

STEM = "drgimg_m1_fms"


def _same(lab, s):
    return np.array_equal(np.asarray(lab.data).astype(np.int64), s.neurons.astype(np.int64))


def test_layer_is_a_16bit_copy_with_exact_ids_through_edits_and_undo(opened, qtbot):
    from histo_fms.review import ReviewSession

    viewer, w, out = opened
    s = w.session
    lab = viewer.layers["neurons"]
    assert lab.data.dtype == np.uint16 and lab.data is not s.neurons
    assert s.neurons.dtype == np.int32 and _same(lab, s)
    ids = interior_ids(s.table)
    w.delete_neuron(ids[0])
    w.merge([ids[1], ids[2]])
    row = s.table.set_index("neuron_id").loc[ids[3]]
    y, x = row["y_um"], row["x_um"]
    w.split(ids[3], [(y - 3.0, x), (y + 3.0, x)])
    assert _same(lab, s)
    # a stroke painted by napari into the copy is saved exactly (from its paint event)
    yc, xc = row["y_um"] / s.pixel_size_um, row["x_um"] / s.pixel_size_um
    lab.brush_size = 5
    lab.paint((yc, xc + 10), 777)
    qtbot.waitUntil(lambda: s.history()[-1]["kind"] == "paint_layer", timeout=5000)
    assert (s.neurons == 777).any() and _same(lab, s)
    assert np.array_equal(ReviewSession.open(out, STEM, "AB").neurons, s.neurons)
    for _ in range(4):
        w.undo()
        assert _same(lab, s)
    assert np.array_equal(s.neurons, s.auto_labels["neurons"][...])
    for _ in range(4):
        w.redo()
        assert _same(lab, s)


def test_an_edit_redraws_only_its_region(opened):
    viewer, w, _ = opened
    s = w.session
    lab = viewer.layers["neurons"]
    seen = []
    lab.events.labels_update.connect(lambda e: seen.append((tuple(e.offset), e.data.shape)))
    a = interior_ids(s.table)[0]
    box = s._obj(a)[0]
    w.delete_neuron(a)
    assert seen, "no regional refresh"
    (oy, ox), (h, wd) = seen[-1][0][-2:], seen[-1][1][-2:]
    assert h * wd < lab.data.size / 4  # a region, not the whole image
    assert oy <= box[0].start and ox <= box[1].start
    assert oy + h >= box[0].stop and ox + wd >= box[1].stop
    view = np.asarray(lab._slice.image.view)
    assert not (view[box] == a).any()


def test_flip_changes_the_colour_table_entry_only(opened):
    viewer, w, _ = opened
    s = w.session
    lab = viewer.layers["neurons"]
    ids = interior_ids(s.table)
    probe = np.asarray(ids[:6], np.uint16)
    before = lab.colormap.map(probe).copy()  # (builds napari's 16-bit colour table)
    visual = w._visual(lab)
    tex = visual.node.shared_program["texture2D_values"] if visual is not None else None
    w.flip_call(ids[0])
    after = lab.colormap.map(probe)
    if tex is not None:  # the drawn table was updated in place, not rebuilt
        assert visual.node.shared_program["texture2D_values"] is tex
    assert not np.allclose(before[0], after[0])
    np.testing.assert_allclose(before[1:], after[1:])
    np.testing.assert_allclose(after[0], lab.colormap.color_dict[ids[0]])
    # the table the layer draws with is the map's (a fresh map gives the same colours)
    from napari_histo_fms._layers import direct_colormap

    fresh = direct_colormap(dict(lab.colormap.color_dict))
    np.testing.assert_allclose(fresh.map(probe), after)


def test_ids_beyond_16_bits_switch_the_layer_to_the_models_dtype(opened, monkeypatch):
    import napari_histo_fms._layers as layers_mod

    viewer, w, _ = opened
    s = w.session
    lab = viewer.layers["neurons"]
    top = int(s.neurons.max())
    monkeypatch.setattr(layers_mod, "DISPLAY_MAX_ID", top)  # the next new id does not fit
    a = interior_ids(s.table)[0]
    row = s.table.set_index("neuron_id").loc[a]
    y, x = row["y_um"], row["x_um"]
    w.split(a, [(y - 3.0, x), (y + 3.0, x)])
    assert int(s.neurons.max()) > top
    assert lab.data.dtype == s.neurons.dtype and _same(lab, s)
    w.undo()
    assert _same(lab, s)


def test_refused_painting_in_the_copy_is_taken_back(opened, monkeypatch):
    from histo_fms.review import ReviewError

    viewer, w, _ = opened
    s = w.session
    lab = viewer.layers["neurons"]
    auto = s.neurons.copy()

    def refuse(*a, **k):
        raise ReviewError("refused")

    monkeypatch.setattr(type(s), "set_labels_region", refuse)
    w.autosave_paint.setChecked(False)
    lab.brush_size = 5
    lab.paint((20, 20), 555)
    assert (np.asarray(lab.data) == 555).any()
    with pytest.raises(ReviewError):
        w.apply_painting()
    assert _same(lab, s) and np.array_equal(s.neurons, auto)


def test_an_image_without_pyramid_is_added_when_its_overview_is_ready(make_napari_viewer,
                                                                      drg_out, monkeypatch,
                                                                      qtbot):
    import dask.array as da

    import napari_histo_fms._layers as layers_mod

    monkeypatch.setattr(layers_mod, "PYRAMID_PIXELS", 0)  # the small test image: "large"
    monkeypatch.setattr(layers_mod, "PYRAMID_TOP", 64)
    monkeypatch.setattr(layers_mod, "OVERVIEW_SIDE", 128)
    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    w.open_session(drg_out, STEM, "AB")
    lab = viewer.layers["neurons"]
    qtbot.waitUntil(lambda: not w.image_pending, timeout=20000)
    images = [ly for ly in viewer.layers if ly._type_string == "image"]
    assert images and all(ly.multiscale for ly in images)
    names = [ly.name for ly in viewer.layers]
    assert max(names.index(ly.name) for ly in images) < names.index("neurons")  # below
    assert viewer.layers.selection.active is lab
    for ly in images:
        levels = ly.data
        assert isinstance(levels[0], da.Array)  # full resolution: read when shown
        small = [k for k, lv in enumerate(levels) if max(lv.shape) <= 128]
        assert small and all(isinstance(levels[k], np.ndarray) for k in small)
        # the same values as the lazily computed 2x block means
        lazy = [levels[0]]
        for _ in range(1, len(levels)):
            lazy.append(da.coarsen(np.mean, lazy[-1], {0: 2, 1: 2}, trim_excess=True)
                        .astype(levels[0].dtype))
        for k in small:
            np.testing.assert_array_equal(levels[k], np.asarray(lazy[k]))


def test_an_overview_of_a_closed_image_is_dropped(make_napari_viewer, drg_out, monkeypatch,
                                                  qtbot):
    import napari_histo_fms._layers as layers_mod

    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    w.open_session(drg_out, STEM, "AB")
    names = [ly.name for ly in viewer.layers]
    layers = [(np.zeros((4, 4), np.uint16), {"name": "stale channel"}, "image")]
    token = object()
    w._overview_token = token
    w.open_session(drg_out, STEM, "AB")  # another image (the same one) opened meanwhile
    w._add_overviews(layers, token)
    assert "stale channel" not in viewer.layers
    assert [ly.name for ly in viewer.layers] == names
    # a single level (nothing computed) comes back as it is
    one = [np.ones((8, 8), np.uint16)]
    assert layers_mod.overview_levels(one)[0] is one[0]
