"""Pixel-classifier widget: annotation layer, train, preview, save; a run uses the model."""

import numpy as np
import pytest
import tifffile
from histo_fms.segment._pixel_classifier import (
    CLASS_NAMES,
    annotations_from_labels,
    load_pixel_classifier,
)
from histo_fms.synthetic.drg import make_drg_section
from histo_fms.validation import score_image

from napari_histo_fms._pixels_widget import ANNOTATIONS, OUTLINES, PREVIEW, PixelClassifierWidget

PX = 0.5


@pytest.fixture
def section():
    return make_drg_section((256, 256), PX, seed=31)


def _add_channels(viewer, ph):
    for i, name in enumerate(ph.channel_names):
        viewer.add_image(ph.image[i], name=name, scale=(PX, PX),
                         metadata={"histo_fms": {"channel": name, "pixel_size_um": PX}})


def test_paint_train_preview_save(make_napari_viewer, section, tmp_path):
    viewer = make_napari_viewer()
    _add_channels(viewer, section)
    w = PixelClassifierWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.refresh_layers()
    # roles guessed from the layer names
    assert w.role_combos["neuron"].currentText() == "NeuN"
    assert w.role_combos["sgc"].currentText() == "GS"
    assert w.role_combos["nuclei"].currentText() == "DAPI"

    w.new_btn.click()
    layer = viewer.layers[ANNOTATIONS]
    assert layer.data.shape == section.labels.shape and layer.data.dtype == np.uint8
    assert tuple(layer.scale) == (PX, PX)
    assert layer.selected_label == 2  # neuron class preselected
    w.class_combo.setCurrentIndex(2)
    assert layer.selected_label == 3
    for k in (1, 2, 3):  # the four classes have their own colours (0 transparent)
        assert layer.colormap.color_dict[k][3] == 1.0
    assert layer.colormap.color_dict[0][3] == 0.0

    # "paint": scribbles from the truth, as a user would stroke them
    layer.data = annotations_from_labels(section.labels, pixel_size_um=PX, fraction=0.4)
    model = w.train(block=True)
    assert model.roles == ["neuron", "sgc", "nuclei"]
    assert "out-of-bag accuracy" in w.status_label.text()

    labels = w.preview()
    assert PREVIEW in viewer.layers
    sy, sx = w.view_slices()
    truth = section.labels[sy, sx]
    assert labels.shape == truth.shape
    assert score_image(labels, truth, pixel_size_um=PX).row["f1"] > 0.8

    w.model_edit.setText(str(tmp_path / "models" / "drg"))
    (tmp_path / "models").mkdir()
    p = w.save()
    assert p == tmp_path / "models" / "drg.npz"
    assert str(p) in w.status_label.text() and "pixel_classifier" in w.status_label.text()
    assert (tmp_path / "models" / "drg_annotations.tif").exists()
    loaded = load_pixel_classifier(p)
    assert loaded.roles == model.roles


def test_train_without_annotation_layer_says_so(make_napari_viewer, section):
    viewer = make_napari_viewer()
    _add_channels(viewer, section)
    w = PixelClassifierWidget(viewer)
    with pytest.raises(ValueError, match="annotation layer"):
        w.train(block=True)
    with pytest.raises(ValueError, match="train"):
        w.preview()


def test_train_from_outlines_preview_save(make_napari_viewer, section, tmp_path):
    from histo_fms.segment._pixel_annotations import annotations_from_outlines

    viewer = make_napari_viewer()
    _add_channels(viewer, section)
    w = PixelClassifierWidget(viewer)
    w.set_mode("outlines")
    assert w.new_btn.text() == "New outline layer"
    w.new_btn.click()
    layer = viewer.layers[OUTLINES]
    assert layer.data.shape == section.labels.shape
    assert np.issubdtype(layer.data.dtype, np.integer) and layer.data.dtype.itemsize >= 2
    assert w.layer_combo.currentText() == OUTLINES
    # "paint and fill" every neuron as its own label
    layer.data = section.labels.astype(layer.data.dtype)
    model = w.train(block=True)
    assert model.info["annotations"] == "outlines"
    assert "from outlines" in w.status_label.text()
    # the classes are those of train-pixels --outlines (sheath: the image has an sgc role)
    want = annotations_from_outlines(section.labels, pixel_size_um=PX, sheath=True)
    for k, name in CLASS_NAMES.items():
        assert model.info["pixel_counts"][name] == int(np.sum(want == k))

    labels = w.preview()
    sy, sx = w.view_slices()
    assert score_image(labels, section.labels[sy, sx], pixel_size_um=PX).row["f1"] > 0.8

    p = w.save(tmp_path / "outl.npz")
    back = tifffile.imread(tmp_path / "outl_outlines.tif")
    np.testing.assert_array_equal(back, section.labels)
    assert not (tmp_path / "outl_annotations.tif").exists()
    assert load_pixel_classifier(p).info["annotations"] == "outlines"


def test_outline_mode_refuses_class_strokes(make_napari_viewer, section):
    viewer = make_napari_viewer()
    _add_channels(viewer, section)
    w = PixelClassifierWidget(viewer)
    w.new_btn.click()  # class-stroke layer
    viewer.layers[ANNOTATIONS].data = annotations_from_labels(section.labels,
                                                              pixel_size_um=PX, fraction=0.4)
    w.set_mode("outlines")
    assert w.annotation_layer().name == ANNOTATIONS  # still the chosen layer
    with pytest.raises(ValueError, match="looks like class strokes.*class strokes"):
        w.train(block=True)
    assert w.model is None
    # the button shows the refusal instead of raising
    w.train_btn.click()
    assert "looks like class strokes" in w.status_label.text()
    # and class mode refuses outlines (values above 3)
    w.set_mode("classes")
    viewer.layers[ANNOTATIONS].data = section.labels.astype(np.uint8)
    with pytest.raises(ValueError, match="neuron outlines"):
        w.train(block=True)
