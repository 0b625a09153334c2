"""Review widget: drives :class:`histo_fms.review.ReviewSession` from napari layers.

No analysis here: every edit, autosave, audit record and recompute is the core
model's; this widget only turns layer selections and drawings into its calls and
shows the model's state as layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from histo_fms.review import ReviewError, ReviewSession, result_stems
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from . import _layers
from ._layers import (
    COLOURS,
    CROSSINGS,
    DEJ,
    EXCLUDED,
    NEURONS,
    SHARE_PIXELS,
    SURFACE,
    crossings_layer_data,
    direct_colormap,
    display_dtype,
    neuron_colour,
    neuron_colours,
    neuron_features,
    neurons_layer_array,
    session_layer_data,
)

if TYPE_CHECKING:
    import napari

SEEDS = "split seeds"
CUT = "split line"
DELETED = "deleted"
#: Keyboard shortcuts (bound on the plugin's layers; shown in the widget).
SHORTCUTS = [("Delete", "delete the selected neuron"), ("C", "flip its IgG call"),
             ("Shift-X", "exclude / include it"), ("T", "next neuron near the threshold"),
             ("N", "next unreviewed neuron"), ("Shift-N", "previous neuron"),
             ("Control-Z", "undo"), ("Control-Shift-Z", "redo")]


#: Reserved label values (never in the data) holding one entry per colour class first in
#: the colour map, so napari's label -> texture index mapping stays the same when a
#: neuron changes colour and an edit recolours only its own pixels.
_RESERVED = {k: -1 - i for i, k in enumerate(COLOURS)}
#: Without numba napari maps labels through an array as long as the largest label
#: (twice that with negative labels), at most 2**16 entries: the reserved labels are
#: then the top values of that range, above every neuron id.
_RESERVED_HIGH = {k: 2**16 - 1 - i for i, k in enumerate(COLOURS)}


def _reserved_for(cols: dict) -> dict | None:
    """Return the reserved labels napari can map for this colour dict (None: none)."""
    import importlib.util

    if importlib.util.find_spec("numba") is not None:
        return _RESERVED
    top = max((abs(int(k)) for k in cols if k is not None
               and int(k) not in _RESERVED_HIGH.values()), default=0)
    return _RESERVED_HIGH if top < min(_RESERVED_HIGH.values()) else None


def _reserved_ok(cols: dict) -> bool:
    """Whether napari can map reserved colour-class labels for this colour dict."""
    return _reserved_for(cols) is not None


def stable_colours(cols: dict) -> dict:
    """Return a label colour dict with every colour class first (reserved labels).

    Without numba the reserved labels are the top of the 16-bit range (napari maps
    labels through an array there); with labels that high they are left out and
    colour changes redraw the layer.
    """
    res = _reserved_for(cols)
    if res is None:
        return dict(cols)
    skip = set(_RESERVED.values()) | set(_RESERVED_HIGH.values())
    out = {None: cols.get(None, (0, 0, 0, 0)), 0: cols.get(0, (0, 0, 0, 0))}
    out.update({v: COLOURS[k] for k, v in res.items()})
    out.update({k: v for k, v in cols.items() if k not in (None, 0) and k not in skip})
    return out


def recolour(layer, colours: dict, boxes: list) -> bool:
    """Change some labels' colours, re-texturing only their pixels.

    Parameters
    ----------
    layer : napari.layers.Labels
        A layer whose colour map came from :func:`stable_colours`.
    colours : dict of int to RGBA
        New colours (of the colour classes in :data:`COLOURS`).
    boxes : list of (slice, slice)
        Where those labels are.

    Returns
    -------
    bool
        False when the partial update is not possible (then the colour map is reset).
    """
    cm = layer.colormap
    try:
        res = [r for r in (_RESERVED, _RESERVED_HIGH)
               if all(v in cm.color_dict for v in r.values())]
        if not res or any(int(k) in res[0].values() for k in colours):
            raise ValueError("no reserved colour labels")
        known = {tuple(np.round(v, 6)) for v in COLOURS.values()}
        if not all(tuple(np.round(c, 6)) in known for c in colours.values()):
            raise ValueError("new colour class")
        if not _remap_in_place(cm, colours, res[0]):
            for k, c in colours.items():
                cm.color_dict[int(k)] = np.asarray(c, np.float32)
            cm._clear_cache()
        for k in [k for k, c in colours.items() if c is None]:
            cm.color_dict.pop(int(k), None)
        view = layer._slice.image.view
        raw = layer._slice.image.raw
        for sl in boxes:
            if sl is None:
                continue
            view[sl] = cm._data_to_texture(np.ascontiguousarray(raw[sl]))
            layer._accumulate_updated_slice(sl)
        layer._partial_labels_refresh()
        return True
    except Exception:  # noqa: BLE001 - napari internals changed: full colour map reset
        d = dict(cm.color_dict)
        d.update({int(k): c for k, c in colours.items()})
        layer.colormap = stable_colours(d)
        return False


def _preload_measurement() -> None:
    """Import the DRG measurement code in the background (a split reads its defaults).

    The import takes seconds on a busy machine; done while the reviewer looks at the
    opened image, the first split does not wait for it.
    """
    import sys
    import threading

    if "histo_fms.drg" not in sys.modules:
        threading.Thread(target=__import__, args=("histo_fms.drg",), daemon=True).start()


def _warm_label_colouring() -> None:
    """Load napari's compiled label-colouring code in the background (once).

    napari colours label layers with numba functions whose first call loads their
    compiled code (about 2 s); started when the widget is made, that happens while
    the reviewer picks an image instead of while a section opens.
    """
    import threading

    def warm():
        try:
            from napari.utils.colormaps import _accelerated_cmap as acc

            for a in (np.zeros(0, np.int32), np.zeros((1, 1), np.int32)):
                acc.zero_preserving_modulo(a, 49, np.dtype(np.uint8))
        except Exception:  # noqa: BLE001 - only a warm-up
            pass

    if not getattr(_warm_label_colouring, "started", False):
        _warm_label_colouring.started = True
        threading.Thread(target=warm, daemon=True).start()


def _remap_in_place(cm, colours: dict, reserved: dict) -> bool:
    """Point some labels at other (existing) colour classes in napari's cached maps.

    Rebuilding napari's label -> texture-value maps walks every label in Python
    (~0.1 s per edit with 60,000 neurons); with the colour classes pinned by reserved
    labels a label's texture value is that of its class's reserved label, so only the
    edited labels' entries change.

    Returns
    -------
    bool
        False when the caches are not there (then they are rebuilt).
    """
    cached = cm.__dict__.get("_label_mapping_and_color_dict")
    if cached is None:
        return False
    to_new = cached[0]
    amap = cm.__dict__.get("_array_map")
    typed = [v for k, v in cm._cache_other.items() if str(k).endswith("_typed_dict")]
    cls = {tuple(np.round(v, 6)): name for name, v in COLOURS.items()}
    vals = {}
    for k, c in colours.items():
        name = cls.get(tuple(np.round(c, 6)))
        if name is None or reserved[name] not in to_new:
            return False
        vals[int(k)] = to_new[reserved[name]]
    if amap is not None and any(not 0 <= k < amap.shape[0] - 1 for k in vals):
        return False
    for k, v in vals.items():
        cm.color_dict[k] = np.asarray(colours[k], np.float32)
        to_new[k] = v
        if amap is not None:
            amap[k] = v
        for d in typed:
            d[k] = v
    return True


def retexture(layer, boxes: list) -> None:
    """Redraw the pixels of some boxes of a labels layer whose data changed in place."""
    try:
        view = layer._slice.image.view
        raw = layer._slice.image.raw
        cm = layer.colormap
        for sl in boxes:
            if sl is None:
                continue
            view[sl] = cm._data_to_texture(np.ascontiguousarray(raw[sl]))
            layer._accumulate_updated_slice(sl)
        layer._partial_labels_refresh()
    except Exception:  # noqa: BLE001 - napari internals changed: redraw everything
        layer.refresh()


def _lut_key() -> tuple:
    return (np.dtype(np.uint16), np.dtype(np.uint16))


def recolour_lut(layer, colours: dict, visual=None) -> bool:
    """Change some labels' colours in a 16-bit labels layer: its colour table only.

    napari draws 8- and 16-bit labels through a colour look-up table on the GPU (one
    entry per label value), so a colour change rewrites the changed entries of that
    table and uploads their rows (4 kB each); no pixel is re-textured and no map is
    rebuilt.

    Parameters
    ----------
    layer : napari.layers.Labels
        A layer with 16-bit data and a direct colour map.
    colours : dict of int to RGBA
        New colours.
    visual : napari vispy layer, optional
        The layer's visual (its colour table texture is updated in place); without it
        napari rebuilds the visual's colour table from the map.

    Returns
    -------
    bool
        False when the layer is not 16-bit (nothing changed; use :func:`recolour`).
    """
    cm = layer.colormap
    raw = getattr(getattr(getattr(layer, "_slice", None), "image", None), "raw", None)
    dtype = np.dtype(raw.dtype) if raw is not None else np.asarray(layer.data[:1, :1]).dtype
    if dtype.itemsize > 2 or not hasattr(cm, "color_dict"):
        return False
    try:
        for k, c in colours.items():
            cm.color_dict[int(k)] = np.asarray(c, np.float32).reshape(4)
        for name in ("_num_unique_colors", "_label_mapping_and_color_dict", "_array_map"):
            cm.__dict__.pop(name, None)  # (derived from the colour dict: rebuilt on use)
        lut = cm._cache_mapping.get(_lut_key()) if dtype == np.uint16 else None
        if lut is None or lut.shape != (65536, 4):
            raise LookupError("no cached colour table")
        for k, c in colours.items():
            if 0 <= int(k) < lut.shape[0]:
                lut[int(k)] = np.asarray(c, np.float32).reshape(4)
        tex = visual.node.shared_program["texture2D_values"]
        table = lut.reshape(256, -1, 4)
        if tuple(tex.shape[:2]) != table.shape[:2]:
            raise LookupError("colour table texture of another shape")
        # only the texture rows of the changed labels are uploaded (a whole-table upload
        # makes vispy reallocate the texture: tens of ms with software OpenGL)
        for r in sorted({int(k) // table.shape[1] for k in colours
                         if 0 <= int(k) < lut.shape[0]}):
            tex.set_data(table[r:r + 1], offset=(r, 0))
        visual.node.update()
    except Exception:  # noqa: BLE001 - no visual / napari internals changed: rebuild
        cm._clear_cache()
        layer.events.colormap()
    return True


def set_points_quietly(layer, data: np.ndarray) -> None:
    """Replace a points layer's points, redrawing only the layer.

    Setting ``layer.data`` makes napari recompute the viewer's extent and dimensions,
    the layer's highlight and thumbnail and repaint the layer list (100-250 ms on a
    loaded machine, whatever the number of points). The markers of deleted neurons lie
    inside the section, so only the layer's slice and its drawing need updating.
    """
    try:
        with layer.events.blocker_all():
            layer.data = data
        layer.events.set_data()  # (the canvas redraws the layer's points)
    except Exception:  # noqa: BLE001 - napari internals changed: the documented way
        layer.data = data


def _atom_box(atom) -> list[int] | None:
    """Bounding box [y0, x0, y1, x1] of one napari paint-history atom."""
    key = getattr(atom, "slice_key", None)
    if key is not None:
        return [int(key[-2].start), int(key[-1].start), int(key[-2].stop), int(key[-1].stop)]
    try:
        idx = atom[0]
        ys, xs = np.asarray(idx[-2]), np.asarray(idx[-1])
    except (TypeError, IndexError):
        return None
    if not ys.size:
        return None
    return [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1]


def _undo_atom(region: np.ndarray, y0: int, x0: int, atom) -> None:
    """Put one paint atom's old values back into ``region`` (whose origin is y0, x0)."""
    key = getattr(atom, "slice_key", None)
    if key is not None:
        sl = (slice(key[-2].start - y0, key[-2].stop - y0),
              slice(key[-1].start - x0, key[-1].stop - x0))
        if atom.mask is None:
            region[sl] = np.asarray(atom.old_values).reshape(region[sl].shape)
        else:
            region[sl][np.asarray(atom.mask).reshape(region[sl].shape)] = atom.old_values
        return
    idx, old_vals = atom[0], atom[1]
    region[np.asarray(idx[-2]) - y0, np.asarray(idx[-1]) - x0] = old_vals


def _feature_rows(rows, ids) -> pd.DataFrame:
    """Return the neurons layer's feature rows of some (not deleted) neurons.

    The same values as :func:`neuron_features` gives for those rows, read cell by cell
    (no pass over the whole table).
    """
    def num(v) -> float:
        try:
            return round(float(v), 3)
        except (TypeError, ValueError):
            return float("nan")

    ks = sorted(k for k in (rows.row_of.get(int(i)) for i in ids) if k is not None)
    ks = [k for k in ks if rows.value(k, "status") != "deleted"]
    out = {"index": np.asarray([int(rows.value(k, "neuron_id")) for k in ks], np.int64)}
    for c in ("area_um2", "diameter_um", "ring_igg"):
        out[c] = np.asarray([num(rows.value(k, c)) for k in ks], float)
    out["igg_positive"] = np.asarray([{"IgG+": "yes", "IgG−": "no"}.get(rows.value(k, "call"), "")
                                      for k in ks], object)
    out["excluded"] = np.asarray([bool(rows.value(k, "excluded")) for k in ks], bool)
    return pd.DataFrame(out)


def _hex(rgba) -> str:
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgba[:3])


def legend_html() -> str:
    """Return the neuron colour legend as HTML (coloured squares)."""
    items = [("positive", "IgG+"), ("negative", "IgG−"), ("unknown", "no call"),
             ("excluded", "excluded"), ("border", "touches border (not counted)")]
    return " ".join(f"<span style='color:{_hex(COLOURS[k])}'>■</span> {t}" for k, t in items) + (
        " · <b>×</b> deleted")


def _fmt(v: Any, nd: int = 1) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    if not np.isfinite(f):
        return "–"
    return f"{f:.{nd}f}" if nd else f"{int(round(f))}"


def summary_text(summary: dict) -> str:
    """Format a recompute summary as automatic vs reviewed numbers.

    Parameters
    ----------
    summary : dict
        Output of :meth:`ReviewSession.recompute`.

    Returns
    -------
    str
        Three lines: automatic, reviewed, difference.
    """
    if summary.get("pipeline") == "drg":
        a = (f"automatic: {_fmt(summary['n_neurons_auto'], 0)} neurons, "
             f"{_fmt(summary['n_igg_positive_auto'], 0)} IgG+ "
             f"({_fmt(summary['pct_igg_positive_auto'])} %)")
        r = (f"reviewed:  {_fmt(summary['n_neurons_reviewed'], 0)} neurons, "
             f"{_fmt(summary['n_igg_positive_reviewed'], 0)} IgG+ "
             f"({_fmt(summary['pct_igg_positive_reviewed'])} %)")
        d = (f"difference: {summary['delta']:+d} neurons, "
             f"{_fmt(summary['delta_pct_igg_positive'])} % IgG+")
        return "\n".join([a, r, d])
    a = (f"automatic: {_fmt(summary['n_crossings_auto'], 0)} crossings, "
         f"{_fmt(summary['epidermis_length_mm_auto'], 3)} mm, "
         f"IENFD {_fmt(summary['ienfd_per_mm_auto'], 2)} /mm")
    r = (f"reviewed:  {_fmt(summary['n_crossings_reviewed'], 0)} crossings, "
         f"{_fmt(summary['epidermis_length_mm_reviewed'], 3)} mm, "
         f"IENFD {_fmt(summary['ienfd_per_mm_reviewed'], 2)} /mm")
    d = (f"difference: {summary['delta']:+d} crossings, "
         f"{_fmt(summary['delta_ienfd_per_mm'], 2)} /mm")
    return "\n".join([a, r, d])


def neuron_text(info: dict) -> str:
    """Format a neuron's numbers (hover / selection).

    Parameters
    ----------
    info : dict
        Output of :meth:`ReviewSession.neuron_info`.

    Returns
    -------
    str
        One line.
    """
    call = info.get("igg_positive")
    call_s = "?" if call is None else ("IgG+" if call else "IgG−")
    if info.get("call_source") == "reviewer":
        call_s += " (reviewer)"
    parts = [f"neuron {info['neuron_id']}", f"{_fmt(info.get('diameter_um'))} µm",
             f"{_fmt(info.get('area_um2'), 0)} µm²", f"ring IgG {_fmt(info.get('ring_igg'), 2)}",
             call_s]
    if info.get("excluded"):
        parts.append("excluded")
    if info.get("touches_border"):
        parts.append("border")
    if info.get("stale"):
        parts.append("(edited: recompute)")
    return " · ".join(parts)


class ReviewWidget(QWidget):
    """Review and correct one image's results; every edit autosaved and audited.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer.
    blind : bool
        Blinded mode (used by the queue widget): no file names anywhere, no image
        picker; sessions come from :meth:`set_session`.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, *, blind: bool = False):
        super().__init__()
        self.viewer = napari_viewer
        self.blind = blind
        self.session: ReviewSession | None = None
        self.last_summary: dict | None = None
        self._syncing = False
        self._paint_atoms: list = []
        self._worker = None
        self._overview_token = None
        self._overview_worker = None
        self._deleted_ids: set[int] | None = None
        lay = QVBoxLayout(self)

        self.open_box = QGroupBox("Results")
        form = QFormLayout(self.open_box)
        row = QHBoxLayout()
        self.results_edit = QLineEdit()
        self.results_edit.setPlaceholderText("results folder (with run.json)")
        self.results_edit.editingFinished.connect(self._fill_images)
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.results_edit)
        row.addWidget(browse)
        form.addRow("folder", row)
        self.image_combo = QComboBox()
        form.addRow("image", self.image_combo)
        self.reviewer_edit = QLineEdit()
        self.reviewer_edit.setPlaceholderText("your name or initials")
        form.addRow("reviewer", self.reviewer_edit)
        self.open_btn = QPushButton("Open for review")
        self.open_btn.clicked.connect(self._open_clicked)
        form.addRow(self.open_btn)
        lay.addWidget(self.open_box)
        self.open_box.setVisible(not blind)

        self.title_label = QLabel("no image open")
        self.title_label.setWordWrap(True)
        lay.addWidget(self.title_label)

        # DRG
        self.drg_box = QGroupBox("Neurons")
        g = QFormLayout(self.drg_box)
        self.neuron_spin = QSpinBox()
        self.neuron_spin.setRange(0, 2**31 - 1)
        self.neuron_spin.valueChanged.connect(self._show_neuron)
        g.addRow("selected neuron", self.neuron_spin)
        r1 = QHBoxLayout()
        self.delete_btn = QPushButton("Delete")
        self.delete_btn.clicked.connect(lambda: self._guard(self.delete_neuron))
        self.flip_btn = QPushButton("Flip IgG call")
        self.flip_btn.clicked.connect(lambda: self._guard(self.flip_call))
        self.exclude_btn = QPushButton("Exclude / include")
        self.exclude_btn.clicked.connect(lambda: self._guard(self.toggle_excluded))
        for b in (self.delete_btn, self.flip_btn, self.exclude_btn):
            r1.addWidget(b)
        g.addRow(r1)
        r2 = QHBoxLayout()
        self.merge_edit = QLineEdit()
        self.merge_edit.setPlaceholderText("ids to merge, e.g. 4, 7")
        self.merge_btn = QPushButton("Merge")
        self.merge_btn.clicked.connect(lambda: self._guard(self.merge))
        r2.addWidget(self.merge_edit)
        r2.addWidget(self.merge_btn)
        g.addRow(r2)
        r3 = QHBoxLayout()
        self.seeds_btn = QPushButton("Place split seeds")
        self.seeds_btn.clicked.connect(self._seeds_layer)
        self.split_btn = QPushButton("Split at seeds")
        self.split_btn.clicked.connect(lambda: self._guard(self.split))
        r3.addWidget(self.seeds_btn)
        r3.addWidget(self.split_btn)
        g.addRow(r3)
        r3b = QHBoxLayout()
        self.cut_btn = QPushButton("Draw split line")
        self.cut_btn.setToolTip("draw a path across the neuron in the 'split line' layer")
        self.cut_btn.clicked.connect(self._cut_layer)
        self.split_line_btn = QPushButton("Split along line")
        self.split_line_btn.clicked.connect(lambda: self._guard(self.split_line))
        r3b.addWidget(self.cut_btn)
        r3b.addWidget(self.split_line_btn)
        g.addRow(r3b)
        r3c = QHBoxLayout()
        self.restore_btn = QPushButton("Restore automatic")
        self.restore_btn.setToolTip("give the selected neuron back its automatic pixels and call")
        self.restore_btn.clicked.connect(lambda: self._guard(self.restore_automatic))
        self.go_btn = QPushButton("Go to id")
        self.go_btn.clicked.connect(lambda: self._guard(self.go_to, self.neuron_spin.value()))
        r3c.addWidget(self.restore_btn)
        r3c.addWidget(self.go_btn)
        g.addRow(r3c)
        r3d = QHBoxLayout()
        self.next_thr_btn = QPushButton("Next near threshold")
        self.next_thr_btn.clicked.connect(lambda: self._guard(self.next_neuron, "threshold"))
        self.next_unrev_btn = QPushButton("Next unreviewed")
        self.next_unrev_btn.clicked.connect(lambda: self._guard(self.next_neuron, "unreviewed"))
        self.prev_btn = QPushButton("Previous")
        self.prev_btn.clicked.connect(lambda: self._guard(self.previous_neuron))
        for b in (self.next_thr_btn, self.next_unrev_btn, self.prev_btn):
            r3d.addWidget(b)
        g.addRow(r3d)
        self.legend_label = QLabel(legend_html())
        self.legend_label.setWordWrap(True)
        g.addRow(self.legend_label)
        self.autosave_paint = QCheckBox("autosave every edit made in the layers")
        self.autosave_paint.setChecked(True)
        self.apply_paint_btn = QPushButton("Save painting")
        self.apply_paint_btn.clicked.connect(lambda: self._guard(self.apply_painting))
        g.addRow(self.autosave_paint, self.apply_paint_btn)
        lay.addWidget(self.drg_box)

        # skin
        self.skin_box = QGroupBox("Crossings and lines")
        s = QFormLayout(self.skin_box)
        self.sync_btn = QPushButton("Save crossings from layer")
        self.sync_btn.setToolTip("add points to / delete points from the crossings layer, "
                                 "then save")
        self.sync_btn.clicked.connect(lambda: self._guard(self.sync_crossings))
        s.addRow(self.sync_btn)
        r4 = QHBoxLayout()
        self.dej_btn = QPushButton("Redraw DEJ")
        self.dej_btn.setToolTip("draw a path in the DEJ layer, then press")
        self.dej_btn.clicked.connect(lambda: self._guard(self.redraw, "dej"))
        self.surface_btn = QPushButton("Redraw surface")
        self.surface_btn.clicked.connect(lambda: self._guard(self.redraw, "surface"))
        r4.addWidget(self.dej_btn)
        r4.addWidget(self.surface_btn)
        s.addRow(r4)
        self.region_btn = QPushButton("Exclude drawn region")
        self.region_btn.setToolTip("draw a polygon in the 'excluded regions' layer, then press")
        self.region_btn.clicked.connect(lambda: self._guard(self.exclude_region))
        s.addRow(self.region_btn)
        lay.addWidget(self.skin_box)

        r5 = QHBoxLayout()
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.clicked.connect(lambda: self._guard(self.undo))
        self.redo_btn = QPushButton("Redo")
        self.redo_btn.clicked.connect(lambda: self._guard(self.redo))
        r5.addWidget(self.undo_btn)
        r5.addWidget(self.redo_btn)
        lay.addLayout(r5)
        self.recompute_btn = QPushButton("Recompute")
        self.recompute_btn.clicked.connect(lambda: self._guard(self.recompute, block=False))
        lay.addWidget(self.recompute_btn)
        self.shortcuts_label = QLabel("shortcuts: " + " · ".join(
            f"<b>{k}</b> {v}" for k, v in SHORTCUTS))
        self.shortcuts_label.setWordWrap(True)
        lay.addWidget(self.shortcuts_label)
        self.result_label = QLabel("")
        self.result_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.result_label)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        lay.addWidget(self.info_label)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumHeight(120)
        lay.addWidget(self.log_view)
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #e06c6c")
        self.error_label.setWordWrap(True)
        lay.addWidget(self.error_label)
        lay.addStretch(1)
        from ._table_widget import ObjectTableWidget

        self.table = ObjectTableWidget(self)
        self._table_docked = False
        self._visits: list[int] = []
        self._set_kind(None)
        self.viewer.mouse_move_callbacks.append(self._on_mouse_move)
        _warm_label_colouring()
        # napari closing (this widget destroyed): stop the overview, save the review
        self.destroyed.connect(lambda *_: self.shutdown())

    # ------------------------------------------------------------------ opening
    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Results folder")
        if d:
            self.results_edit.setText(d)
            self._fill_images()

    def _fill_images(self) -> None:
        if self.blind:
            return
        self.image_combo.clear()
        try:
            self.image_combo.addItems(result_stems(self.results_edit.text()))
        except (OSError, ValueError):
            pass

    def _open_clicked(self) -> None:
        self._guard(self.open_session, self.results_edit.text(), self.image_combo.currentText(),
                    self.reviewer_edit.text())

    def open_session(self, results_dir: str | Path, stem: str, reviewer: str) -> ReviewSession:
        """Open (or resume) the review of one image and show its layers.

        Parameters
        ----------
        results_dir : str or Path
            Results folder.
        stem : str
            Image output name.
        reviewer : str
            Reviewer name.

        Returns
        -------
        ReviewSession
            The session.
        """
        session = ReviewSession.open(results_dir, stem, reviewer)
        self.set_session(session, title=f"{stem} · reviewer {session.reviewer}")
        return session

    def set_session(self, session: ReviewSession, *, title: str,
                    with_image: bool = True) -> None:
        """Show a session (its layers replace the previous image's).

        Parameters
        ----------
        session : ReviewSession
            The session to drive.
        title : str
            What the widget shows as the image's name (a case code when blinded).
        with_image : bool
            Also add the image channels.
        """
        need = "neurons" if session.kind == "drg" else None
        if need is not None and need not in session.labels:
            where = "this case's result" if self.blind else str(session.auto_dir)
            raise ReviewError(f"{where}/labels.zarr is missing or has no '{need}' labels; "
                              "rerun this image to review it")
        old = self.session
        if old is not None and old is not session:
            try:
                old.close()  # its label chunks written before another image is shown
            except RuntimeError as exc:  # a write failed: its journal keeps the edits
                self.error_label.setText(str(exc))
        self.session = session
        if session.kind == "drg":
            # label chunks saved off the GUI thread, each edit journalled at once
            session.save_in_background()
        self._deleted_ids = None
        self._paint_atoms = []
        self.last_summary = None
        if session.kind == "drg":  # (after the layers are shown: not during the open)
            QTimer.singleShot(0, _preload_measurement)
        # nothing selected in a new case: the previous case's id must never carry over
        self.neuron_spin.blockSignals(True)
        self.neuron_spin.setValue(0)
        self.neuron_spin.blockSignals(False)
        self.info_label.setText("")
        self.title_label.setText(title)
        self.result_label.setText("")
        self.error_label.setText("")
        self._visits = []
        self._set_kind(session.kind)
        table = None
        if session.kind == "drg":
            from histo_fms.review._triage import object_table

            table = object_table(session)  # built once: the layer's colours and the table
        layers = session_layer_data(session, with_image=with_image, table=table)
        # an image without a pyramid of its own: its overview is computed off the GUI
        # thread and the channels are added when it is ready (the labels show first)
        later = [d for d in layers if d[2] == "image" and isinstance(d[0], list) and (
            (d[1].get("metadata") or {}).get("histo_fms") or {}).get("overview") == "computed"]
        layers = [d for d in layers if not any(d is x for x in later)]
        if self.blind:
            for _, kw, _ in layers + later:
                kw.pop("metadata", None)
        self._overview_token = None
        self._stop_overview()
        for _, kw, _ in later:  # never the previous image under this one's labels
            old = self._layer(kw["name"])
            if old is not None:
                self.viewer.layers.remove(old)
        self._replace_layers(layers)
        self._colours = None
        if session.kind == "drg":
            self.table.reload(table)
            self._show_table()
            self._update_deleted_layer()
            lab = self._layer(NEURONS)
            if lab is not None:  # the neurons layer active: its shortcuts work at once
                self.viewer.layers.selection.active = lab
        self._refresh_log()
        if later:
            self._load_overviews(later)

    @property
    def image_pending(self) -> bool:
        """Whether image channels are still being prepared (their overview computed)."""
        return self._overview_token is not None

    def _load_overviews(self, layers: list) -> None:
        from napari.qt.threading import create_worker

        from ._layers import overview_steps

        token = object()
        self._overview_token = token
        self._stop_overview()  # the previous image's, if still running

        def work():  # a generator: the worker can be stopped between bands of chunks
            out = []
            for d, kw, kind in layers:
                levels = yield from overview_steps(d)
                out.append((levels, kw, kind))
            return out

        worker = create_worker(work)
        worker.returned.connect(lambda res: self._add_overviews(res, token))
        worker.errored.connect(lambda e: self._overview_failed(e, token))
        self._overview_worker = worker
        worker.start()

    def _stop_overview(self) -> None:
        """Stop computing an overview (another image opened, or the widget closed)."""
        worker, self._overview_worker = self._overview_worker, None
        if worker is not None:
            try:
                worker.quit()
            except RuntimeError:  # (its Qt object is gone already)
                pass

    def shutdown(self) -> None:
        """Stop the overview worker and save the open review (napari is closing).

        Only Python state is touched: it also runs while the widget's Qt object is
        being destroyed.
        """
        self._overview_token = None
        self._stop_overview()
        session, self.session = self.session, None
        if session is not None:
            try:
                session.close()
            except RuntimeError:  # a write failed: the journal keeps the edits (reopen)
                pass

    def _overview_failed(self, exc, token) -> None:
        if token is self._overview_token:
            self._overview_token = None
            self.error_label.setText(f"the image could not be shown: {exc}")

    def _add_overviews(self, layers: list, token) -> None:
        """Add the image channels under the results (if this image is still open)."""
        from napari.layers import Layer

        if token is not self._overview_token or self.session is None:
            return  # another image was opened meanwhile, or the widget closed
        self._overview_token = None
        self._overview_worker = None
        try:
            lab = self._layer(NEURONS)
            for i, (data, kw, kind) in enumerate(layers):
                old = self._layer(kw["name"])
                if old is not None:
                    self.viewer.layers.remove(old)
                self.viewer.layers.insert(i, Layer.create(data, kw, kind))
            if lab is not None:
                self.viewer.layers.selection.active = lab
        except RuntimeError:  # the viewer's window closed meanwhile: nothing to show
            return

    def _set_kind(self, kind: str | None) -> None:
        self.drg_box.setVisible(kind == "drg")
        self.skin_box.setVisible(kind == "skin")
        self.recompute_btn.setEnabled(kind is not None)
        self._update_undo_buttons()

    def _update_undo_buttons(self) -> None:
        s = self.session
        self.undo_btn.setEnabled(s is not None and s.can_undo)
        self.redo_btn.setEnabled(s is not None and s.can_redo)

    def _show_table(self) -> None:
        win = getattr(self.viewer, "window", None)
        if self._table_docked or win is None:
            return
        try:
            win.add_dock_widget(self.table, name="histo-fms objects", area="bottom")
            self._table_docked = True
        except Exception:  # noqa: BLE001 - a viewer without a Qt window: no dock
            pass

    # ------------------------------------------------------------------ layers
    def _layer(self, name: str):
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _replace_layers(self, layers: list) -> None:
        from napari.layers import Layer

        self._syncing = True
        try:
            for data, kw, kind in layers:
                old = self._layer(kw["name"])
                if kw["name"] == NEURONS and isinstance(kw.get("colormap"), dict):
                    cols = kw["colormap"]
                    # 16-bit labels: colours are a table, no reserved labels needed
                    kw = {**kw, "colormap": direct_colormap(
                        cols if np.asarray(data[:1, :1]).dtype.itemsize <= 2
                        else stable_colours(cols))}
                big = kind == "labels" and np.size(data) > 2**22
                # a large label image is given to the layer once it is in the viewer:
                # napari converts the whole image to its texture at every step of
                # creating and adding a layer (three passes, seconds each at 16k²)
                new = Layer.create(np.zeros((1, 1), np.asarray(data[:1, :1]).dtype)
                                   if big else data, kw, kind)
                if kw["name"] == NEURONS:
                    # napari starts at label 1, so picking neuron 1 would emit no event
                    new.selected_label = 0
                if old is not None:
                    i = self.viewer.layers.index(old)
                    self.viewer.layers.remove(old)
                    self.viewer.layers.insert(i, new)
                else:
                    self.viewer.add_layer(new)
                if big:
                    new.data = data
                self._connect(new)
        finally:
            self._syncing = False

    def _connect(self, layer) -> None:
        """Autosave: edits made directly in the plugin's layers go to the model."""
        if layer.name == NEURONS:
            layer.events.selected_label.connect(self._on_selected_label)
            layer.events.paint.connect(self._on_paint)
        elif layer.name in (CROSSINGS, DEJ, SURFACE, EXCLUDED):
            layer.events.data.connect(self._on_layer_data)
        if layer.name in (NEURONS, CROSSINGS, DEJ, SURFACE, EXCLUDED):
            self._bind_keys(layer)

    def _bind_keys(self, layer) -> None:
        """Shortcuts on the layer; Ctrl+Z / Ctrl+Shift+Z undo and redo in the model.

        The layer's own paint history is replaced: undoing in napari alone would leave
        the screen and the saved review disagreeing.
        """
        acts = {"Control-Z": lambda: self.undo(), "Control-Shift-Z": lambda: self.redo()}
        if layer.name == NEURONS:
            acts.update({"Delete": lambda: self.delete_neuron(),
                         "Backspace": lambda: self.delete_neuron(),
                         "C": lambda: self.flip_call(), "Shift-X": lambda: self.toggle_excluded(),
                         "T": lambda: self.next_neuron("threshold"),
                         "N": lambda: self.next_neuron("unreviewed"),
                         "Shift-N": lambda: self.previous_neuron()})
        for key, fn in acts.items():
            layer.bind_key(key, lambda _layer, f=fn: self._guard(f), overwrite=True)

    def _on_layer_data(self, event) -> None:
        if self._syncing or not self.autosave_paint.isChecked() or self.session is None:
            return
        action = str(getattr(event, "action", ""))
        if action not in ("added", "removed", "changed"):
            return
        name = event.source.name
        # apply after napari has finished the edit (the handler may update the layer)
        QTimer.singleShot(0, lambda: self._guard(self._auto_apply, name, action))

    def _auto_apply(self, name: str, action: str) -> None:
        if self.session is None or self.session.kind != "skin":
            return
        if name == CROSSINGS:
            self.sync_crossings()
        elif name in (DEJ, SURFACE) and action in ("added", "changed"):
            layer = self._layer(name)
            if layer is not None and len(layer.data):
                self.redraw("dej" if name == DEJ else "surface")
        elif name == EXCLUDED:
            self.sync_regions()

    def refresh_layers(self) -> None:
        """Show the session's current state in the plugin's layers."""
        s = self.session
        if s is None:
            return
        self._syncing = True
        try:
            if s.kind == "drg":
                lab = self._layer(NEURONS)
                if lab is None:
                    self._replace_layers(session_layer_data(s, with_image=False))
                    return
                data = neurons_layer_array(s)  # 16-bit copy, or shared for large images
                lab.data = data
                self.table.reload()
                cols = neuron_colours(s, self.table.model.df)
                lab.colormap = direct_colormap(cols if data.dtype.itemsize <= 2
                                               else stable_colours(cols))
                lab.features = neuron_features(s, self.table.model.df)
                lab.refresh()
                if "rings" in s.labels and self._layer("rings") is not None:
                    self._layer("rings").data = s.labels["rings"]
                self._update_deleted_layer()
            else:
                self._update_crossings_layer()
        finally:
            self._syncing = False
        self._refresh_log()

    def _after_edit(self) -> None:
        """Show an edit: only its pixels, its neurons' colours and table rows change."""
        s = self.session
        self._update_undo_buttons()
        if s is None or s.kind != "drg":
            self.refresh_layers()
            return
        lab = self._layer(NEURONS)
        if lab is None:
            self.refresh_layers()
            return
        ids = set(s.last_edit_ids)
        self._syncing = True
        try:
            px = s.last_edit_pixels
            copy16 = lab.data is not s.neurons and np.asarray(lab.data[:1, :1]).dtype == np.uint16
            if copy16 and px is not None and px[0].size and (
                    int(px[1].max()) > _layers.DISPLAY_MAX_ID):
                # a new id beyond 16 bits: show the labels as the model holds them
                self._show_labels_as_model(lab)
            elif (not copy16 and lab.data is not s.neurons
                  and s.neurons.size > SHARE_PIXELS):
                lab.data = s.neurons  # the model replaced its array: share it again
            elif px is not None and px[0].size:
                if lab.data is s.neurons:  # shared: the pixels are there, redraw them
                    retexture(lab, [s.last_edit_box])
                else:
                    w = s.neurons.shape[1]
                    ys, xs = np.divmod(px[0], w)
                    cur = np.asarray(lab.data)[ys, xs]
                    if not np.array_equal(cur, px[1]):
                        lab.data_setitem((ys, xs), px[1])
                lab._reset_history()  # undo goes through the model only
            self._show_ids(lab, ids)
            self._update_deleted_layer(ids)
        finally:
            self._syncing = False
        self._refresh_log()

    def _show_labels_as_model(self, lab) -> None:
        """Show the model's labels in their own dtype (ids no longer fit the layer's)."""
        s = self.session
        data = neurons_layer_array(s)
        cols = stable_colours(neuron_colours(s, self.table.model.df)) if (
            display_dtype(data) != np.uint16) else neuron_colours(s, self.table.model.df)
        lab.data = data
        lab.colormap = direct_colormap(cols)

    def _visual(self, layer):
        """Return the vispy visual napari draws a layer with (None without a canvas)."""
        try:
            return self.viewer.window._qt_viewer.canvas.layer_to_visual[layer]
        except Exception:  # noqa: BLE001 - headless viewer / napari internals changed
            return None

    def _show_ids(self, lab, ids: set) -> None:
        """Refresh some neurons' table rows, colours and layer features (nothing else)."""
        s = self.session
        self.table.update_ids(ids)
        rows = self.table.model
        border_out = bool(((s.run.get("config") or {}).get("summary") or {}).get(
            "exclude_border", True))
        feats = lab.features
        new_cols, boxes = {}, []
        for nid in ids:
            k = rows.row_of.get(int(nid))
            obj = s._obj(int(nid))
            if k is None or obj is None:
                continue
            c = neuron_colour(rows.value(k, "call"), bool(rows.value(k, "excluded")),
                              bool(rows.value(k, "touches_border")) and border_out)
            old = lab.colormap.color_dict.get(int(nid))
            if old is None or not np.allclose(old, c):
                new_cols[int(nid)] = c
                boxes.append(obj[0])
        if new_cols and not recolour_lut(lab, new_cols, self._visual(lab)):
            recolour(lab, new_cols, boxes)
        if ids:
            new = _feature_rows(rows, ids)
            index = getattr(lab, "_label_index", None)
            table = getattr(lab, "_feature_table", None)
            fresh = [j for j, i in enumerate(new["index"].to_numpy().tolist())
                     if not isinstance(index, dict) or int(i) not in index]
            if isinstance(index, dict) and (not fresh or (
                    hasattr(table, "append") and list(new.columns) == list(feats.columns))):
                # existing rows change in place (no rebuild of napari's label index;
                # rows of deleted labels stay, unseen: no pixel has their value)
                cols = [(feats.columns.get_loc(c), new[c].to_numpy()) for c in new.columns[1:]]
                for j, i in enumerate(new["index"].to_numpy().tolist()):
                    k = index.get(int(i))
                    if k is None:
                        continue
                    for pos, vals in cols:
                        feats.iat[k, pos] = vals[j]
                if fresh:
                    # new neurons (split, paint): their rows appended and indexed (napari's
                    # own setter rebuilds its label index in Python: 50 ms for 60,000 rows)
                    try:
                        add = new.iloc[fresh].astype(feats.dtypes.to_dict())
                    except (TypeError, ValueError):
                        add = None
                    if add is None:
                        keep = feats.loc[~feats["index"].isin(list(ids))]
                        lab.features = pd.concat([keep, new], ignore_index=True)
                    else:
                        n0 = len(table.values)
                        table.append(add)
                        for j, i in enumerate(add["index"].tolist()):
                            index[int(i)] = n0 + j
            else:
                keep = feats.loc[~feats["index"].isin(list(ids))]
                lab.features = pd.concat([keep, new], ignore_index=True)

    def _update_deleted_layer(self, ids=None) -> None:
        """Mark deleted automatic neurons with an × (a points layer).

        With ``ids`` (the neurons an edit touched) nothing is redone unless one of them
        was deleted or brought back.
        """
        s = self.session
        if s is None or s.kind != "drg":
            return
        from histo_fms.review._triage import _alive

        df = self.table.model.df
        layer = self._layer(DELETED)
        dead = ~_alive(df)
        if ids is not None and self._deleted_ids is not None and (
                layer is not None or not self._deleted_ids):
            # only the edited neurons can have been deleted or brought back
            rows = self.table.model.row_of
            now = {int(i) for i in ids if rows.get(int(i)) is not None and dead[rows[int(i)]]}
            was = {int(i) for i in ids} & self._deleted_ids
            if now == was:
                return
        self._deleted_ids = set(df["neuron_id"].to_numpy()[dead].tolist())
        gone = np.column_stack([df["y_um"].to_numpy(float)[dead],
                                df["x_um"].to_numpy(float)[dead]])
        gone = gone[np.isfinite(gone).all(axis=1)] if len(gone) else np.zeros((0, 2))
        if layer is None:
            if not len(gone) and ids is not None:
                return
            # made when the image opens (even with nothing deleted yet): adding a layer
            # to a drawn viewer costs about a second, too slow for an edit
            layer = self.viewer.add_points(gone, name=DELETED, symbol="x", size=8.0,
                                           face_color="red", border_color="red",
                                           units=("um", "um"))
            self._bind_keys(layer)
            lab = self._layer(NEURONS)
            if lab is not None:  # keep the neurons layer active (its shortcuts)
                self.viewer.layers.selection.active = lab
        elif layer.data.shape != gone.shape or not np.array_equal(layer.data, gone):
            set_points_quietly(layer, gone)

    def _update_crossings_layer(self) -> None:
        data, kw, kind = crossings_layer_data(self.session)
        layer = self._layer(CROSSINGS)
        if layer is None:
            self._replace_layers([(data, kw, kind)])
            return
        layer.data = data
        layer.features = kw["features"]
        if len(data):
            layer.face_color = kw["face_color"]

    def _refresh_log(self) -> None:
        if self.session is None:
            return
        lines = []
        audit = getattr(self.session, "audit", None)
        last = audit.tail(30) if hasattr(audit, "tail") else self.session.history()[-30:]
        for e in last:
            p = e.get("params") or {}
            what = ", ".join(f"{k}={v}" for k, v in p.items()
                             if k not in ("polygon_um", "bbox", "seeds_um", "line_um"))
            lines.append(f"{e.get('time', '')[11:19]} {e.get('reviewer', '')}: "
                         f"{e.get('kind')} {what}".rstrip())
        self.log_view.setPlainText("\n".join(lines))
        self._update_undo_buttons()
        state = "unsaved recompute" if self.session.needs_recompute else "up to date"
        self.error_label.setText("")
        self.info_label.setToolTip(f"{self.session.n_edits} edits, tables {state}")

    def _guard(self, fn, *args, **kwargs):
        """Run an action; show model errors in the widget instead of raising."""
        try:
            return fn(*args, **kwargs)
        except (ReviewError, ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
            self.error_label.setText(str(exc))
            return None

    def _need(self, kind: str | None = None) -> ReviewSession:
        if self.session is None:
            raise ReviewError("open an image for review first")
        if kind is not None and self.session.kind != kind:
            raise ReviewError(f"this action is for {kind} results")
        return self.session

    # ------------------------------------------------------------------ DRG actions
    def _selected(self, neuron_id: int | None) -> int:
        nid = int(neuron_id if neuron_id is not None else self.neuron_spin.value())
        if nid <= 0:
            raise ReviewError("select a neuron first (pick it in the neurons layer)")
        return nid

    def delete_neuron(self, neuron_id: int | None = None) -> dict:
        """Delete the selected (or given) neuron.

        Parameters
        ----------
        neuron_id : int, optional
            Neuron label; default the selected one.

        Returns
        -------
        dict
            The audit record.
        """
        rec = self._need("drg").delete_neuron(self._selected(neuron_id))
        self._after_edit()
        return rec

    def flip_call(self, neuron_id: int | None = None) -> dict:
        """Flip the IgG call of the selected (or given) neuron.

        Parameters
        ----------
        neuron_id : int, optional
            Neuron label.

        Returns
        -------
        dict
            The audit record.
        """
        nid = self._selected(neuron_id)
        rec = self._need("drg").flip_call(nid)
        self._after_edit()
        self._show_neuron(nid)
        return rec

    def toggle_excluded(self, neuron_id: int | None = None) -> dict:
        """Exclude the selected (or given) neuron from the summary, or include it again.

        Parameters
        ----------
        neuron_id : int, optional
            Neuron label.

        Returns
        -------
        dict
            The audit record.
        """
        s = self._need("drg")
        nid = self._selected(neuron_id)
        rec = s.set_excluded(nid, nid not in s.excluded)
        self._after_edit()
        self._show_neuron(nid)
        return rec

    def merge(self, ids: list[int] | None = None) -> dict:
        """Merge neurons (ids given or typed in the merge field).

        Parameters
        ----------
        ids : list of int, optional
            Neuron labels.

        Returns
        -------
        dict
            The audit record.
        """
        if ids is None:
            txt = self.merge_edit.text().replace(";", ",").replace(" ", ",")
            bad = [t for t in txt.split(",") if t.strip() and not t.strip().isdigit()]
            if bad:
                raise ReviewError(f"merge: {bad[0]!r} is not a neuron id; type whole numbers "
                                  "separated by commas, e.g. 4, 7")
            ids = [int(t) for t in txt.split(",") if t.strip()]
        rec = self._need("drg").merge_neurons(ids)
        self.merge_edit.clear()
        self._after_edit()
        return rec

    def _seeds_layer(self):
        layer = self._layer(SEEDS)
        if layer is None:
            layer = self.viewer.add_points(np.zeros((0, 2)), name=SEEDS, size=3.0,
                                           face_color="yellow", units=("um", "um"))
        self.viewer.layers.selection.active = layer
        layer.mode = "add"
        return layer

    def split(self, neuron_id: int | None = None, seeds_um: Any = None) -> dict:
        """Split a neuron at seed points (µm; default the points of the seeds layer).

        Parameters
        ----------
        neuron_id : int, optional
            Neuron label; default the neuron under the first seed.
        seeds_um : array_like, optional
            Seeds (y, x) in µm.

        Returns
        -------
        dict
            The audit record.
        """
        s = self._need("drg")
        layer = self._layer(SEEDS)
        if seeds_um is None:
            if layer is None or len(layer.data) < 2:
                raise ReviewError("place two or more split seeds first")
            seeds_um = np.asarray(layer.data, float)
        seeds_um = np.asarray(seeds_um, float)
        if neuron_id is None:
            y, x = np.round(seeds_um[0] / s.pixel_size_um).astype(int)
            neuron_id = int(s.neurons[y, x]) if (0 <= y < s.neurons.shape[0] and
                                                 0 <= x < s.neurons.shape[1]) else 0
        rec = s.split_neuron(self._selected(neuron_id), seeds_um)
        if layer is not None:
            layer.data = np.zeros((0, 2))
        self._after_edit()
        return rec

    def _cut_layer(self):
        layer = self._layer(CUT)
        if layer is None:
            layer = self.viewer.add_shapes(name=CUT, shape_type="path", edge_color="yellow",
                                           edge_width=1.0, units=("um", "um"))
        self.viewer.layers.selection.active = layer
        layer.mode = "add_path"
        return layer

    def split_line(self, neuron_id: int | None = None, line_um: Any = None) -> dict:
        """Split a neuron along a cut line (µm; default the last path of 'split line').

        Parameters
        ----------
        neuron_id : int, optional
            Neuron label; default the selected one, else the one the line crosses most.
        line_um : array_like, optional
            Vertices (y, x) in µm.

        Returns
        -------
        dict
            The audit record.
        """
        s = self._need("drg")
        layer = self._layer(CUT)
        if line_um is None:
            if layer is None or not len(layer.data):
                raise ReviewError("draw a split line across the neuron first")
            line_um = np.asarray(layer.data[-1], float)
        line_um = np.asarray(line_um, float).reshape(-1, 2)
        if neuron_id is None and self.neuron_spin.value() <= 0:
            neuron_id = s.neuron_under_line(line_um)
        rec = s.split_neuron(self._selected(neuron_id), line_um=line_um)
        if layer is not None:
            layer.data = []
        self._after_edit()
        return rec

    def restore_automatic(self, neuron_id: int | None = None) -> dict:
        """Give the selected (or given) neuron back its automatic pixels and call.

        Parameters
        ----------
        neuron_id : int, optional
            Neuron label.

        Returns
        -------
        dict
            The audit record.
        """
        rec = self._need("drg").restore_automatic(self._selected(neuron_id))
        self._after_edit()
        return rec

    def undo(self) -> dict:
        """Undo the last edit in the model (saved and audited); the layers follow.

        Returns
        -------
        dict
            The audit record.
        """
        rec = self._need().undo()
        self._after_undo()
        return rec

    def redo(self) -> dict:
        """Redo the last undone edit in the model; the layers follow.

        Returns
        -------
        dict
            The audit record.
        """
        rec = self._need().redo()
        self._after_undo()
        return rec

    def _after_undo(self) -> None:
        s = self.session
        if s.kind == "drg":
            self._after_edit()
            self._show_neuron()
        else:
            self._syncing = True
            try:
                self._replace_layers([d for d in session_layer_data(s, with_image=False)
                                      if d[1]["name"] in (CROSSINGS, DEJ, SURFACE, EXCLUDED)])
            finally:
                self._syncing = False
            self._update_undo_buttons()
            self._refresh_log()

    # ------------------------------------------------------------------ triage
    def go_to(self, neuron_id: int, yx_um: Any = None, *, zoom: bool = True) -> None:
        """Select a neuron, centre the view on it and zoom in.

        Parameters
        ----------
        neuron_id : int
            Neuron label.
        yx_um : (y, x), optional
            Its position in µm (default: from the object table).
        zoom : bool
            Zoom so the neuron fills about a fifth of the view.
        """
        s = self._need("drg")
        nid = int(neuron_id)
        m = self.table.model
        k = m.row_of.get(nid)
        if yx_um is None and k is not None:
            yx_um = (m.value(k, "y_um"), m.value(k, "x_um"))
        if yx_um is None or not np.isfinite(np.asarray(yx_um, float)).all():
            obj = s._obj(nid)
            if obj is None:
                raise ReviewError(f"no neuron {nid}")
            ys, xs = np.nonzero(obj[1])
            yx_um = ((ys.mean() + obj[0][0].start) * s.pixel_size_um,
                     (xs.mean() + obj[0][1].start) * s.pixel_size_um)
        cur = int(self.neuron_spin.value())
        if cur > 0 and cur != nid and (not self._visits or self._visits[-1] != cur):
            self._visits.append(cur)
        cam = getattr(getattr(self.viewer, "scene", None), "camera", None) or self.viewer.camera
        cam.center = (float(yx_um[0]), float(yx_um[1]))
        if zoom:
            d = 30.0
            if k is not None:
                try:
                    d = max(float(m.value(k, "diameter_um")), 5.0)
                except (TypeError, ValueError):
                    pass
            try:
                size = self.viewer.window._qt_viewer.canvas.size
                px = float(min(size)) if min(size) > 0 else 600.0
            except Exception:  # noqa: BLE001 - headless / no canvas yet
                px = 600.0
            cam.zoom = px / (6.0 * d)
        self.neuron_spin.setValue(nid)
        lab = self._layer(NEURONS)
        if lab is not None:
            self._syncing = True
            try:
                lab.selected_label = nid if s._obj(nid) is not None else 0
            finally:
                self._syncing = False
        self.table.select_id(nid)
        self._show_neuron(nid)

    def next_neuron(self, by: str = "threshold") -> int | None:
        """Mark the shown neuron reviewed and go to the next one.

        Parameters
        ----------
        by : {"threshold", "unreviewed"}
            Closest to the threshold (log ring IgG) first, or the next unreviewed id.

        Returns
        -------
        int or None
            The neuron now shown (None when all are reviewed).
        """
        from histo_fms.review._triage import mark_reviewed
        from histo_fms.review._triage import next_neuron as pick

        s = self._need("drg")
        cur = int(self.neuron_spin.value())
        if cur > 0:
            mark_reviewed(s, [cur])
            self.table.update_ids([cur])
        nid = pick(s, self.table.model.df, by=by, current=cur)
        if nid is None:
            self.info_label.setText("every neuron is reviewed")
            return None
        self.go_to(nid)
        return nid

    def previous_neuron(self) -> int | None:
        """Go back to the neuron shown before.

        Returns
        -------
        int or None
            The neuron now shown.
        """
        if not self._visits:
            raise ReviewError("no previous neuron")
        nid = self._visits.pop()
        self.go_to(nid)
        if self._visits and self._visits[-1] == nid:
            self._visits.pop()
        return nid

    def apply_painting(self) -> dict | None:
        """Save hand painting in the neurons layer as one edit.

        Returns
        -------
        dict or None
            The audit record, None when nothing changed.
        """
        s = self._need("drg")
        lab = self._layer(NEURONS)
        if lab is None:
            raise ReviewError("the neurons layer is gone; reopen the image")
        atoms, self._paint_atoms = self._paint_atoms, []
        boxes = [_atom_box(a) for a in atoms]
        shared = lab.data is s.neurons
        if atoms and all(b is not None for b in boxes):
            # only the strokes' bounding box is compared and saved
            y0, x0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
            y1, x1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
            box = (slice(y0, y1), slice(x0, x1))
            painted = np.array(lab.data[box])
            if shared:
                # napari painted into the review's own array: give the model its pixels
                # as they were (the strokes' old values) and let it write the new ones
                before = painted.copy()
                for a in reversed(atoms):
                    _undo_atom(before, y0, x0, a)
                s.neurons[box] = before
            try:
                rec = s.set_labels_region(box, painted)
            except ReviewError:
                if not shared:  # a copy: put the model's pixels back in the layer
                    np.asarray(lab.data)[box] = s.neurons[box]
                retexture(lab, [box])  # the refused strokes are gone: show that
                raise
        elif shared and not atoms:
            return None  # every stroke is saved already
        elif shared:
            raise ReviewError("the painting could not be read from napari's paint events; "
                              "undo it (Ctrl+Z) and paint again")
        else:
            rec = s.set_labels(np.asarray(lab.data))
        self._after_edit()
        return rec

    def _on_paint(self, event=None) -> None:
        if self._syncing or self.session is None:
            return
        self._paint_atoms.extend(list(getattr(event, "value", None) or []))
        lab = self._layer(NEURONS)
        shared = lab is not None and lab.data is self.session.labels.get("neurons")
        if not self.autosave_paint.isChecked() and not shared:
            return  # (a shared array is the review's own: its strokes are always saved)
        # save after napari has finished the stroke (saving refreshes the layer)
        QTimer.singleShot(0, lambda: self._guard(self._apply_pending_paint))

    def _apply_pending_paint(self) -> None:
        if self._paint_atoms:
            self.apply_painting()

    def _on_selected_label(self, event=None) -> None:
        lab = self._layer(NEURONS)
        if lab is not None and not self._syncing:
            nid = int(lab.selected_label)
            self.neuron_spin.setValue(nid)
            self.table.select_id(nid)

    def _show_neuron(self, nid: int | None = None) -> None:
        s = self.session
        nid = int(self.neuron_spin.value() if nid is None else nid)
        if s is None or s.kind != "drg" or nid <= 0 or s._obj(nid) is None:
            self.info_label.setText("")
            return
        self.info_label.setText(neuron_text(s.neuron_info(nid)))

    def _on_mouse_move(self, viewer, event) -> None:
        s = self.session
        lab = self._layer(NEURONS)
        if s is None or s.kind != "drg" or lab is None:
            return
        try:
            v = lab.get_value(event.position, world=True)
        except Exception:  # noqa: BLE001 - hover must never break the viewer
            return
        if v:
            self._show_neuron(int(v))

    # ------------------------------------------------------------------ skin actions
    def add_crossing(self, y_um: float, x_um: float) -> dict:
        """Add a crossing at a point (µm).

        Parameters
        ----------
        y_um, x_um : float
            Position.

        Returns
        -------
        dict
            The audit record.
        """
        rec = self._need("skin").add_crossing(y_um, x_um)
        self.refresh_layers()
        return rec

    def delete_crossing(self, y_um: float, x_um: float, tolerance_um: float = 5.0) -> dict:
        """Delete the crossing nearest to a point (µm).

        Parameters
        ----------
        y_um, x_um : float
            Position.
        tolerance_um : float
            Largest distance.

        Returns
        -------
        dict
            The audit record.
        """
        rec = self._need("skin").delete_crossing(near_um=(y_um, x_um), tolerance_um=tolerance_um)
        self.refresh_layers()
        return rec

    def sync_crossings(self) -> list[dict]:
        """Save the crossings layer: points added become crossings, removed ones go.

        Returns
        -------
        list of dict
            One audit record per added or deleted crossing.
        """
        s = self._need("skin")
        layer = self._layer(CROSSINGS)
        if layer is None:
            raise ReviewError("the crossings layer is gone; reopen the image")
        pts = np.asarray(layer.data, float).reshape(-1, 2)
        cur = s.crossings[["y_um", "x_um"]].to_numpy(float).reshape(-1, 2)
        recs = []
        used = np.zeros(len(pts), bool)
        gone = []
        for i, c in enumerate(cur):
            d = np.hypot(*(pts - c).T) if len(pts) else np.array([])
            d = np.where(used, np.inf, d) if len(d) else d
            if len(d) and d.min() < 1e-3:
                used[int(np.argmin(d))] = True
            else:
                gone.append(i)
        for i in sorted(gone, reverse=True):
            recs.append(s.delete_crossing(i))
        for p in pts[~used]:
            recs.append(s.add_crossing(float(p[0]), float(p[1])))
        self.refresh_layers()
        return recs

    def redraw(self, name: str, vertices_um: Any = None) -> dict:
        """Redraw the DEJ or surface (default: the last shape drawn in its layer).

        Parameters
        ----------
        name : {"dej", "surface"}
            Which line.
        vertices_um : array_like, optional
            Vertices (y, x) in µm.

        Returns
        -------
        dict
            The audit record.
        """
        s = self._need("skin")
        lname = DEJ if name == "dej" else SURFACE
        if vertices_um is None:
            layer = self._layer(lname)
            if layer is None or not len(layer.data):
                raise ReviewError(f"draw the new {lname} as a path in the {lname} layer first")
            vertices_um = np.asarray(layer.data[-1], float)
        rec = s.set_polyline(name, vertices_um)
        layer = self._layer(lname)
        self._syncing = True
        try:
            if layer is not None and layer.nshapes:
                layer.data = [np.asarray(s.polylines[name], float)]
            else:
                self._replace_layers([d for d in session_layer_data(s, with_image=False)
                                      if d[1]["name"] == lname])
        finally:
            self._syncing = False
        self._refresh_log()
        return rec

    def exclude_region(self, polygon_um: Any = None) -> dict:
        """Exclude a region (default: the last polygon drawn in the excluded layer).

        Parameters
        ----------
        polygon_um : array_like, optional
            Polygon (y, x) in µm.

        Returns
        -------
        dict
            The audit record.
        """
        s = self._need("skin")
        if polygon_um is None:
            layer = self._layer(EXCLUDED)
            if layer is None or len(layer.data) <= len(s.excluded_regions):
                raise ReviewError("draw a polygon in the 'excluded regions' layer first")
            polygon_um = np.asarray(layer.data[-1], float)
        rec = s.exclude_region(polygon_um)
        layer = self._layer(EXCLUDED)
        if layer is None or len(layer.data) != len(s.excluded_regions):
            self._replace_layers([d for d in session_layer_data(s, with_image=False)
                                  if d[1]["name"] == EXCLUDED])
        self.refresh_layers()
        return rec

    def sync_regions(self) -> list[dict]:
        """Save the excluded-regions layer: new polygons excluded, removed ones included.

        Returns
        -------
        list of dict
            One audit record per change.
        """
        s = self._need("skin")
        layer = self._layer(EXCLUDED)
        if layer is None:
            raise ReviewError("the excluded regions layer is gone; reopen the image")
        shapes = [np.asarray(d, float) for d in layer.data]
        recs = []
        for i in reversed(range(len(s.excluded_regions))):
            r = s.excluded_regions[i]
            if not any(d.shape == r.shape and np.allclose(d, r, atol=1e-6) for d in shapes):
                recs.append(s.remove_excluded_region(i))
        for d in shapes:
            if len(d) >= 3 and not any(d.shape == r.shape and np.allclose(d, r, atol=1e-6)
                                       for r in s.excluded_regions):
                recs.append(s.exclude_region(d))
        self.refresh_layers()
        return recs

    # ------------------------------------------------------------------ recompute
    def recompute(self, block: bool = True) -> dict | None:
        """Recompute the reviewed tables and show automatic vs reviewed numbers.

        Parameters
        ----------
        block : bool
            Run here (True) or in a napari thread worker (False, the button).

        Returns
        -------
        dict or None
            The summary when ``block``; else None (shown when the worker ends).
        """
        s = self._need()
        if block:
            return self._recomputed(s.recompute())
        from napari.qt.threading import create_worker

        self.recompute_btn.setEnabled(False)
        self.result_label.setText("recomputing…")
        worker = create_worker(s.recompute)
        worker.returned.connect(self._recomputed)
        worker.errored.connect(lambda e: self.error_label.setText(str(e)))
        worker.finished.connect(lambda: self.recompute_btn.setEnabled(True))
        self._worker = worker
        worker.start()
        return None

    def _recomputed(self, summary: dict) -> dict:
        self.last_summary = summary
        self.result_label.setText(summary_text(summary))
        s = self.session
        local = getattr(s, "last_recompute_local", None) if s is not None else None
        lab = self._layer(NEURONS)
        if s is not None and s.kind == "drg" and local is not None and lab is not None:
            # only some neurons were re-measured: show those (labels are unchanged)
            ids, boxes = local
            self._syncing = True
            try:
                rl = self._layer("rings")
                if rl is not None and boxes:
                    raw = getattr(getattr(getattr(rl, "_slice", None), "image", None), "raw",
                                  None)
                    if (rl.data is s.labels["rings"] and rl.visible and raw is not None
                            and raw.shape == s.neurons.shape):
                        # drawn: rewrite the patched boxes only
                        for sl in boxes:
                            raw[sl] = np.asarray(s.labels["rings"][sl])
                        retexture(rl, list(boxes))
                    else:  # hidden, or another array: (re)read it
                        rl.data = s.labels["rings"]
                self._show_ids(lab, set(ids))
                self._update_deleted_layer()
            finally:
                self._syncing = False
            self._refresh_log()
        else:
            self.refresh_layers()
        return summary
