"""Pixel-classifier widget: paint classes or outline neurons, train, preview, save.

The same library functions as ``histo-fms train-pixels`` and ``histo-fms run``:
:func:`histo_fms.pixel_training.section_levels` (the section's normalisation, as a run
computes it), :func:`histo_fms.pixel_training.outline_classes` (``--outlines``: neuron
outlines -> classes, refusing class strokes),
:func:`histo_fms.segment._pixel_classifier.train_pixel_classifier`,
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
OUTLINES = "neuron outlines"
PREVIEW = "pixel classifier preview"
#: training modes: combo text -> mode
MODES = {"class strokes": "classes", "neuron outlines": "outlines"}
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

    Two ways to annotate, as ``histo-fms train-pixels`` has them. *Class strokes*: paint
    background (1), neuron (2) and optionally SGC sheath (3) strokes in the "pixel
    annotations" labels layer. *Neuron outlines* (``train-pixels --outlines``): a labels
    layer with **every** neuron of the image painted or filled as its own label (or a
    binary mask, one neuron per connected region); it is turned into classes by
    :func:`histo_fms.pixel_training.outline_classes`. Then train, preview the neurons on
    the current view and save the model for a config's ``segmentation_options: {model:
    PATH}``.

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

        self.mode_combo = QComboBox()
        for text in MODES:
            self.mode_combo.addItem(text, MODES[text])
        self.mode_combo.setToolTip("class strokes: paint 1 background, 2 neuron, 3 SGC sheath; "
                                   "neuron outlines: every neuron of the image painted or "
                                   "filled as its own label (train-pixels --outlines)")
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        form.addRow("annotate", self.mode_combo)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("the labels layer to train from")
        form.addRow("annotations", self.layer_combo)

        row = QHBoxLayout()
        self.new_btn = QPushButton("New annotation layer")
        self.new_btn.clicked.connect(lambda: self._shown(self.annotation_layer, create=True))
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
        self.train_btn.clicked.connect(lambda: self._shown(self.train))
        self.preview_btn = QPushButton("Preview view")
        self.preview_btn.setToolTip("segment the part of the image on screen")
        self.preview_btn.clicked.connect(lambda: self._shown(self.preview))
        row.addWidget(self.train_btn)
        row.addWidget(self.preview_btn)
        lay.addLayout(row)

        row = QHBoxLayout()
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("model file (.npz)")
        b = QPushButton("…")
        b.clicked.connect(self._browse_model)
        self.save_btn = QPushButton("Save model")
        self.save_btn.clicked.connect(lambda: self._shown(self.save))
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
        self.viewer.layers.events.inserted.connect(self._refresh_labels)
        self.viewer.layers.events.removed.connect(self._refresh_labels)

    @property
    def mode(self) -> str:
        """``"classes"`` (class strokes) or ``"outlines"`` (neuron outlines)."""
        return str(self.mode_combo.currentData())

    def set_mode(self, mode: str) -> None:
        """Choose ``"classes"`` or ``"outlines"``."""
        i = self.mode_combo.findData(mode)
        if i < 0:
            raise ValueError(f"mode must be one of {sorted(MODES.values())}, got {mode!r}")
        self.mode_combo.setCurrentIndex(i)

    def _shown(self, fn, *args, **kwargs):
        """Run a button's action; a refusal goes to the status line, not a traceback."""
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            self.status_label.setText(str(exc))
            from napari.utils.notifications import show_warning

            show_warning(str(exc))
            return None

    # ----------------------------------------------------------------- layers
    def _image_layers(self) -> list:
        return [la for la in self.viewer.layers if la.__class__.__name__ == "Image"
                and np.ndim(la.data) == 2]

    def refresh_layers(self) -> None:
        """Offer the viewer's 2-D image layers for the channel roles (guessing by name)."""
        names = [la.name for la in self._image_layers()]
        for role, cb in self.role_combos.items():
            fill_role_combo(cb, role, names, required=role == "neuron", placeholder=False)
        self._refresh_labels()

    def _labels_layers(self) -> list:
        return [la for la in self.viewer.layers if la.__class__.__name__ == "Labels"
                and la.name != PREVIEW and np.ndim(la.data) == 2]

    def _refresh_labels(self, event=None, select: str | None = None) -> None:
        """Offer the 2-D labels layers (not the preview) to train from."""
        names = [la.name for la in self._labels_layers()]
        current = select or self.layer_combo.currentText()
        default = OUTLINES if self.mode == "outlines" else ANNOTATIONS
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        for want in (current, default):
            if want in names:
                self.layer_combo.setCurrentIndex(names.index(want))
                break
        self.layer_combo.blockSignals(False)

    def _mode_changed(self) -> None:
        default = OUTLINES if self.mode == "outlines" else ANNOTATIONS
        if default in self.viewer.layers:
            self._refresh_labels(select=default)
        self.new_btn.setText("New outline layer" if self.mode == "outlines"
                             else "New annotation layer")
        self.class_combo.setEnabled(self.mode == "classes")

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
        """Return the labels layer to train from (created for the mode when asked).

        The layer chosen under "annotations"; else the mode's own layer ("pixel
        annotations" for class strokes, "neuron outlines" for outlines).

        Parameters
        ----------
        create : bool
            Create the mode's layer, on the neuron layer's grid, when it is missing
            (else None when there is no layer).

        Returns
        -------
        napari.layers.Labels or None
            The layer: classes 1 background, 2 neuron, 3 SGC sheath, or one label per
            neuron.
        """
        outlines = self.mode == "outlines"
        name = OUTLINES if outlines else ANNOTATIONS
        if not create:
            chosen = self.layer_combo.currentText()
            if chosen and chosen in self.viewer.layers:
                return self.viewer.layers[chosen]
        if name in self.viewer.layers:
            self._refresh_labels(select=name)
            return self.viewer.layers[name]
        if not create:
            return None
        ref = self.channels()["neuron"]
        shape = tuple(int(s) for s in np.shape(ref.data))
        px = self.pixel_size_um()
        if outlines:
            layer = self.viewer.add_labels(np.zeros(shape, np.uint32), name=OUTLINES,
                                           scale=ref.scale, translate=ref.translate,
                                           opacity=0.5)
            layer.brush_size = max(3, int(round(3.0 / px)))
            layer.selected_label = 1
            msg = ("outline EVERY neuron of the image, each its own label: paint its edge "
                   "and fill it (press M for the next free label), then Train")
        else:
            layer = self.viewer.add_labels(np.zeros(shape, np.uint8), name=ANNOTATIONS,
                                           scale=ref.scale, translate=ref.translate,
                                           colormap=_colormap(), opacity=0.7)
            layer.brush_size = max(3, int(round(2.0 / px)))
            layer.selected_label = int(self.class_combo.currentData())
            msg = "paint 1 background, 2 neuron, 3 SGC sheath (optional) strokes, then Train"
        layer.mode = "paint"
        self._refresh_labels(select=name)
        self.status_label.setText(msg)
        return layer

    def _class_changed(self) -> None:
        if self.mode != "classes":
            return
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
    def training_classes(self) -> np.ndarray:
        """Return the annotation layer as training classes (outlines converted).

        Returns
        -------
        ndarray of uint8
            0 unlabelled, 1 background, 2 neuron, 3 SGC sheath.

        Raises
        ------
        ValueError
            No layer, a layer of another grid, class strokes in outline mode, or
            outlines in class mode (one line saying what to do).
        """
        from histo_fms.pixel_training import ClassAnnotationError, outline_classes

        layer = self.annotation_layer()
        if layer is None:
            raise ValueError("create the annotation layer and paint some strokes first"
                             if self.mode == "classes" else
                             "create the outline layer (or choose a labels layer of neuron "
                             "outlines) first")
        a = np.asarray(layer.data)
        shape = tuple(np.shape(self.channels()["neuron"].data))
        if a.shape != shape:
            raise ValueError(f"layer {layer.name!r} is {a.shape[0]} x {a.shape[1]} px, the "
                             f"neuron layer {shape[0]} x {shape[1]}: annotate on its grid")
        if self.mode == "classes":
            if a.size and (a.min() < 0 or a.max() > 3):
                raise ValueError(f"layer {layer.name!r} has values above 3 (neuron "
                                 "outlines?): class strokes are 1 background, 2 neuron, "
                                 "3 SGC sheath; for one label per neuron choose "
                                 "'neuron outlines'")
            return a
        try:
            return outline_classes(a, pixel_size_um=self.pixel_size_um(),
                                   sheath="sgc" in self.channels())
        except ClassAnnotationError:
            raise ValueError(f"layer {layer.name!r} looks like class strokes (values 1-3 "
                             "drawn as several separate strokes each), not neuron outlines: "
                             "choose 'class strokes', or a labels layer with each neuron "
                             "its own label") from None
        except ValueError as exc:
            raise ValueError(f"layer {layer.name!r} is not a neuron outline layer: "
                             f"{exc}") from None

    def _train(self, chans, ann, px, mode="classes"):
        from histo_fms.pixel_training import section_levels
        from histo_fms.segment._pixel_classifier import train_pixel_classifier

        levels = section_levels(chans, px)
        model = train_pixel_classifier([chans], [ann], pixel_size_um=px, levels=[levels])
        model.info["annotations"] = mode
        return model

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
        ann = self.training_classes()
        chans, px = self._arrays()
        mode = self.mode
        if block:
            self._trained(self._train(chans, ann, px, mode))
            return self.model
        from napari.qt.threading import create_worker

        worker = create_worker(self._train, chans, ann, px, mode)
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
        of = " from outlines" if model.info.get("annotations") == "outlines" else ""
        self.status_label.setText(f"trained{of} on {', '.join(model.roles)}: {counts}; "
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
        """Save the model and, beside it, what it was trained from.

        ``MODEL_annotations.tif`` (class strokes, for ``train-pixels``) or
        ``MODEL_outlines.tif`` (the outline labels, for ``train-pixels --outlines``).

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
        stem = p.name[: -len(".npz")]
        if layer is not None and self.model.info.get("annotations") == "outlines":
            a = np.asarray(layer.data)
            dt = np.uint16 if a.size and a.max() < 2 ** 16 else np.uint32
            _write_tiff(a.astype(dt), p.with_name(stem + "_outlines.tif"))
        elif layer is not None:
            _write_tiff(np.asarray(layer.data, np.uint8),
                        p.with_name(stem + "_annotations.tif"))
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
