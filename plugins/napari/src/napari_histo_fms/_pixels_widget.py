"""Pixel-classifier widget: paint classes, train, preview on the current view, save.

The same library functions as ``histo-fms train-pixels`` and ``histo-fms run``:
:func:`histo_fms.pixel_training.section_levels` (the section's normalisation, as a run
computes it), :func:`histo_fms.segment._pixel_classifier.train_pixel_classifier`,
:func:`histo_fms.segment._pixel_classifier.segment_pixel_classifier` and
:meth:`PixelClassifier.save`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ._roles import NONE, fill_role_combo

if TYPE_CHECKING:
    import napari

ANNOTATIONS = "pixel annotations"
PREVIEW = "pixel classifier preview"
#: annotation classes: value -> (name, RGBA)
CLASSES = {
    1: ("background", (0.55, 0.55, 0.55, 1.0)),
    2: ("neuron", (0.0, 0.85, 0.3, 1.0)),
    3: ("SGC sheath", (0.9, 0.2, 0.9, 1.0)),
}


def _colormap():
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[Any, tuple] = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0)}
    colors.update({k: v[1] for k, v in CLASSES.items()})
    return DirectLabelColormap(color_dict=colors)


class PixelClassifierWidget(QWidget):
    """Train the ``pixel_classifier`` segmentation backend on the open image.

    Paint background (1), neuron (2) and optionally SGC sheath (3) strokes in the
    "pixel annotations" labels layer, train, preview the neurons on the current view
    and save the model for a config's ``segmentation_options: {model: PATH}``.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.worker = None
        lay = QVBoxLayout(self)
        form = QFormLayout()
        lay.addLayout(form)
        self.role_combos: dict[str, QComboBox] = {}
        for role in ("neuron", "sgc", "nuclei"):
            cb = QComboBox()
            self.role_combos[role] = cb
            form.addRow(role + (" *" if role == "neuron" else ""), cb)
        refresh = QPushButton("refresh layers")
        refresh.clicked.connect(self.refresh_layers)
        form.addRow("", refresh)

        row = QHBoxLayout()
        self.new_btn = QPushButton("New annotation layer")
        self.new_btn.clicked.connect(lambda: self.annotation_layer(create=True))
        row.addWidget(self.new_btn)
        self.class_combo = QComboBox()
        for k, (name, _) in CLASSES.items():
            self.class_combo.addItem(f"{k} {name}", k)
        self.class_combo.setCurrentIndex(1)
        self.class_combo.currentIndexChanged.connect(self._class_changed)
        row.addWidget(self.class_combo)
        lay.addLayout(row)

        row = QHBoxLayout()
        self.train_btn = QPushButton("Train")
        self.train_btn.clicked.connect(lambda: self.train())
        self.preview_btn = QPushButton("Preview view")
        self.preview_btn.setToolTip("segment the part of the image on screen")
        self.preview_btn.clicked.connect(lambda: self.preview())
        row.addWidget(self.train_btn)
        row.addWidget(self.preview_btn)
        lay.addLayout(row)

        row = QHBoxLayout()
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("model file (.npz)")
        b = QPushButton("…")
        b.clicked.connect(self._browse_model)
        self.save_btn = QPushButton("Save model")
        self.save_btn.clicked.connect(lambda: self.save())
        row.addWidget(self.model_edit)
        row.addWidget(b)
        row.addWidget(self.save_btn)
        lay.addLayout(row)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.status_label)
        lay.addStretch(1)
        self.refresh_layers()

    # ----------------------------------------------------------------- layers
    def _image_layers(self) -> list:
        return [la for la in self.viewer.layers if la.__class__.__name__ == "Image"
                and np.ndim(la.data) == 2]

    def refresh_layers(self) -> None:
        """Offer the viewer's 2-D image layers for the channel roles (guessing by name)."""
        names = [la.name for la in self._image_layers()]
        for role, cb in self.role_combos.items():
            fill_role_combo(cb, role, names, required=role == "neuron", placeholder=False)

    def channels(self) -> dict[str, Any]:
        """Return role -> image layer for the chosen roles."""
        out = {}
        for role, cb in self.role_combos.items():
            name = cb.currentText()
            if name and name != NONE and name in self.viewer.layers:
                out[role] = self.viewer.layers[name]
        if "neuron" not in out:
            raise ValueError("choose the neuron channel (an image layer)")
        return out

    def pixel_size_um(self) -> float:
        """Return the neuron layer's pixel size in µm (its metadata, else its scale)."""
        layer = self.channels()["neuron"]
        meta = (getattr(layer, "metadata", None) or {}).get("histo_fms", {})
        px = meta.get("pixel_size_um") or float(layer.scale[-1])
        if not px > 0:
            raise ValueError("the neuron layer has no pixel size")
        return float(px)

    def annotation_layer(self, create: bool = False):
        """Return the annotation labels layer (created, of the neuron layer's grid).

        Parameters
        ----------
        create : bool
            Create it when missing (else None when missing).

        Returns
        -------
        napari.layers.Labels or None
            The layer (classes 1 background, 2 neuron, 3 SGC sheath).
        """
        if ANNOTATIONS in self.viewer.layers:
            return self.viewer.layers[ANNOTATIONS]
        if not create:
            return None
        ref = self.channels()["neuron"]
        shape = tuple(int(s) for s in np.shape(ref.data))
        layer = self.viewer.add_labels(np.zeros(shape, np.uint8), name=ANNOTATIONS,
                                       scale=ref.scale, translate=ref.translate,
                                       colormap=_colormap(), opacity=0.7)
        layer.mode = "paint"
        layer.brush_size = max(3, int(round(2.0 / self.pixel_size_um())))
        layer.selected_label = int(self.class_combo.currentData())
        self.status_label.setText("paint 1 background, 2 neuron, 3 SGC sheath (optional) "
                                  "strokes, then Train")
        return layer

    def _class_changed(self) -> None:
        layer = self.annotation_layer()
        if layer is not None:
            layer.selected_label = int(self.class_combo.currentData())

    def _browse_model(self) -> None:
        f, _ = QFileDialog.getSaveFileName(self, "Save model", "", "Model (*.npz)")
        if f:
            self.model_edit.setText(f)

    def _arrays(self) -> tuple[dict[str, np.ndarray], float]:
        chans = {r: np.asarray(la.data) for r, la in self.channels().items()}
        return chans, self.pixel_size_um()

    # ------------------------------------------------------------------ train
    def _train(self, chans, ann, px):
        from histo_fms.pixel_training import section_levels
        from histo_fms.segment._pixel_classifier import train_pixel_classifier

        levels = section_levels(chans, px)
        return train_pixel_classifier([chans], [ann], pixel_size_um=px, levels=[levels])

    def train(self, block: bool = False):
        """Train on the painted annotations.

        Parameters
        ----------
        block : bool
            Train in this thread and return the model (tests, scripts).

        Returns
        -------
        PixelClassifier or worker
            The model when ``block``, else the started worker.
        """
        layer = self.annotation_layer()
        if layer is None:
            raise ValueError("create the annotation layer and paint some strokes first")
        chans, px = self._arrays()
        ann = np.asarray(layer.data)
        if block:
            self._trained(self._train(chans, ann, px))
            return self.model
        from napari.qt.threading import create_worker

        worker = create_worker(self._train, chans, ann, px)
        worker.returned.connect(self._trained)
        worker.errored.connect(lambda e: self.status_label.setText(f"training failed: {e}"))
        worker.finished.connect(lambda: self.train_btn.setEnabled(True))
        self.train_btn.setEnabled(False)
        self.status_label.setText("training…")
        self.worker = worker
        worker.start()
        return worker

    def _trained(self, model) -> None:
        self.model = model
        counts = ", ".join(f"{k} {v}" for k, v in model.info["pixel_counts"].items())
        self.status_label.setText(f"trained on {', '.join(model.roles)}: {counts}; "
                                  f"out-of-bag accuracy {model.info['oob_accuracy']:.3f}")

    # ---------------------------------------------------------------- preview
    def view_slices(self) -> tuple[slice, slice]:
        """Return the part of the neuron layer on screen (the whole image if unknown)."""
        layer = self.channels()["neuron"]
        shape = np.shape(layer.data)
        try:
            c = np.asarray(layer.corner_pixels)[:, -2:]
            y0, x0 = (int(max(0, v)) for v in c[0])
            y1, x1 = (int(min(s, v + 1)) for v, s in zip(c[1], shape, strict=True))
            if y1 - y0 >= 8 and x1 - x0 >= 8:
                return slice(y0, y1), slice(x0, x1)
        except (AttributeError, ValueError, IndexError):
            pass
        return slice(0, shape[0]), slice(0, shape[1])

    def preview(self):
        """Segment the visible part of the image and show it as a labels layer.

        The crop is padded by the model's feature reach, so the neurons shown are
        those a run would find there.

        Returns
        -------
        ndarray
            The preview labels (of the visible region).
        """
        from histo_fms.segment._pixel_classifier import segment_pixel_classifier

        if self.model is None:
            raise ValueError("train (or save and reload) a model first")
        chans, px = self._arrays()
        levels = _levels(chans, px)
        sy, sx = self.view_slices()
        pad = int(np.ceil(self.model.features.radius_um() / px)) + 2
        shape = chans["neuron"].shape
        py = slice(max(0, sy.start - pad), min(shape[0], sy.stop + pad))
        pxs = slice(max(0, sx.start - pad), min(shape[1], sx.stop + pad))
        crop = {r: a[py, pxs] for r, a in chans.items()}
        labels = segment_pixel_classifier(crop["neuron"], pixel_size_um=px, model=self.model,
                                          channels=crop, levels=levels)
        inner = labels[sy.start - py.start:sy.stop - py.start,
                       sx.start - pxs.start:sx.stop - pxs.start]
        ref = self.channels()["neuron"]
        offset = np.asarray(ref.translate)[-2:] + np.array([sy.start, sx.start]) * np.asarray(
            ref.scale)[-2:]
        if PREVIEW in self.viewer.layers:
            self.viewer.layers.remove(PREVIEW)
        self.viewer.add_labels(inner, name=PREVIEW, scale=ref.scale, translate=offset,
                               opacity=0.5)
        self.status_label.setText(f"preview: {int(len(np.unique(inner)) - 1)} neuron(s) in "
                                  "view")
        return inner

    # ------------------------------------------------------------------- save
    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Save the model (and the annotations beside it, ``MODEL_annotations.tif``).

        Parameters
        ----------
        path : str or path-like, optional
            Model file (default: the path typed in the widget).

        Returns
        -------
        Path
            The model file.
        """
        if self.model is None:
            raise ValueError("train a model first")
        path = path or self.model_edit.text()
        if not path:
            raise ValueError("choose where to save the model")
        p = self.model.save(path)
        layer = self.annotation_layer()
        if layer is not None:
            _write_tiff(np.asarray(layer.data, np.uint8),
                        p.with_name(p.name[: -len(".npz")] + "_annotations.tif"))
        self.model_edit.setText(str(p))
        self.status_label.setText(f"saved {p}\nin a DRG config: segmentation_backend: "
                                  f"pixel_classifier, segmentation_options: {{model: {p}}}")
        return p


def _levels(chans: dict[str, np.ndarray], px: float) -> dict:
    from histo_fms.pixel_training import section_levels

    return section_levels(chans, px)


def _write_tiff(a: np.ndarray, path: Path) -> None:
    import tifffile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tif", dir=path.parent)
    os.close(fd)
    try:
        tifffile.imwrite(tmp, a)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
