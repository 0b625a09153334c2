"""Pixel-classifier widget: annotation layer, train, preview, save; a run uses the model."""

import numpy as np
import pytest
from histo_fms.segment._pixel_classifier import annotations_from_labels, load_pixel_classifier
from histo_fms.synthetic.drg import make_drg_section
from histo_fms.validation import score_image

from napari_histo_fms._pixels_widget import ANNOTATIONS, PREVIEW, PixelClassifierWidget

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
