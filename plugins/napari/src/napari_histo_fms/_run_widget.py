"""Run widget: pick a config and channel roles, run the pipeline in a thread worker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from histo_fms.config import ROLES
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ._roles import CHOOSE, NONE, fill_role_combo

if TYPE_CHECKING:
    import napari



def run_files(cfg, files: list[Path], out: Path, cancelled=lambda: False):
    """Run the pipeline file by file, yielding ``(i, n, outcome)``; stop when cancelled.

    The per-file outputs are written by :func:`histo_fms.batch.process_file`; at the end
    :func:`histo_fms.batch.run_pipeline` (resuming, so nothing is measured twice) writes
    the summaries, the threshold calling and ``run.json`` for the files done.

    Parameters
    ----------
    cfg : PipelineConfig
        The configuration.
    files : list of Path
        Images.
    out : Path
        Output folder.
    cancelled : callable
        Returns True to stop before the next file.

    Yields
    ------
    tuple
        ``(i, n, FileOutcome)`` after each file.

    Returns
    -------
    RunReport or None
        The report (None when cancelled before any file was done).
    """
    from histo_fms.batch import process_file, run_pipeline

    done = []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files, start=1):
        if cancelled():
            break
        o = process_file(Path(f), cfg, out)
        if o.status != "failed":
            done.append(Path(f))
        yield i, len(files), o
    if not done:
        return None
    return run_pipeline(cfg, done, out, resume=True, argv=["napari-histo-fms"])


class RunWidget(QWidget):
    """Run a histo-fms pipeline on the current image (or files), with progress.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.report = None
        self._cancel = False
        lay = QVBoxLayout(self)
        form = QFormLayout()
        lay.addLayout(form)

        self.config_edit = QLineEdit()
        self.config_edit.setPlaceholderText("pipeline YAML (empty: defaults)")
        b = QPushButton("…")
        b.clicked.connect(self._browse_config)
        row = QHBoxLayout()
        row.addWidget(self.config_edit)
        row.addWidget(b)
        form.addRow("config", row)
        self.pipeline_combo = QComboBox()
        self.pipeline_combo.addItems(["drg", "skin"])
        self.pipeline_combo.currentTextChanged.connect(self._build_roles)
        form.addRow("pipeline", self.pipeline_combo)

        self.image_edit = QLineEdit()
        self.image_edit.setPlaceholderText("image file(s); empty: the selected image layer")
        self.image_edit.editingFinished.connect(self.load_channels)
        cur = QPushButton("current")
        cur.setToolTip("use the image of the selected layer")
        cur.clicked.connect(self.use_current_image)
        row = QHBoxLayout()
        row.addWidget(self.image_edit)
        row.addWidget(cur)
        form.addRow("image", row)

        self.roles_form = QFormLayout()
        lay.addLayout(self.roles_form)
        self.role_combos: dict[str, QComboBox] = {}

        form2 = QFormLayout()
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("output folder")
        b = QPushButton("…")
        b.clicked.connect(self._browse_out)
        row = QHBoxLayout()
        row.addWidget(self.out_edit)
        row.addWidget(b)
        form2.addRow("output", row)
        lay.addLayout(form2)
        row = QHBoxLayout()
        self.run_btn = QPushButton("Run")
        self.run_btn.clicked.connect(self._run_clicked)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        row.addWidget(self.run_btn)
        row.addWidget(self.cancel_btn)
        lay.addLayout(row)
        self.progress = QProgressBar()
        lay.addWidget(self.progress)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        lay.addStretch(1)
        self.channel_names: list[str] = []
        self._build_roles(self.pipeline_combo.currentText())
        self.use_current_image()

    # ------------------------------------------------------------------ inputs
    def _browse_config(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Pipeline config", "", "YAML (*.yaml *.yml)")
        if f:
            self.config_edit.setText(f)
            self._config_changed()

    def _browse_out(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Output folder")
        if d:
            self.out_edit.setText(d)

    def _config_changed(self) -> None:
        from histo_fms.config import load_config

        try:
            cfg = load_config(self.config_edit.text() or None,
                              pipeline=self.pipeline_combo.currentText())
        except ValueError as exc:
            self.status_label.setText(str(exc))
            return
        self.pipeline_combo.setCurrentText(cfg.pipeline)
        self._build_roles(cfg.pipeline, defaults=cfg.channels)

    def use_current_image(self) -> None:
        """Take the image path of the selected (or first) image layer."""
        layers = list(self.viewer.layers.selection) + list(self.viewer.layers)
        for layer in layers:
            meta = (getattr(layer, "metadata", None) or {}).get("histo_fms", {})
            path = meta.get("path") or getattr(getattr(layer, "source", None), "path", None)
            if layer.__class__.__name__ == "Image" and path:
                self.image_edit.setText(str(path))
                self.load_channels()
                return

    def load_channels(self) -> list[str]:
        """Read the channel names of the chosen image and offer them for the roles.

        Returns
        -------
        list of str
            Channel names (empty when the image cannot be read).
        """
        from histo_fms.io import read_image

        paths = self.files()
        names: list[str] = []
        if paths:
            try:
                names = list(read_image(paths[0]).channel_names)
            except Exception as exc:  # noqa: BLE001 - shown to the user
                self.status_label.setText(f"cannot read {paths[0].name}: {exc}")
        self.channel_names = names
        self._build_roles(self.pipeline_combo.currentText())
        return names

    def _build_roles(self, pipeline: str, defaults: dict | None = None) -> None:
        while self.roles_form.rowCount():
            self.roles_form.removeRow(0)
        self.role_combos = {}
        req, opt = ROLES.get(pipeline, ((), ()))
        for role in req + opt:
            cb = QComboBox()
            fill_role_combo(cb, role, self.channel_names, required=role in req,
                            want=(defaults or {}).get(role))
            self.roles_form.addRow(role + ("" if role in opt else " *"), cb)
            self.role_combos[role] = cb

    def files(self) -> list[Path]:
        """Return the image files typed in (separated by ``;``).

        Returns
        -------
        list of Path
            Files.
        """
        return [Path(p.strip()) for p in self.image_edit.text().split(";") if p.strip()]

    def roles(self) -> dict[str, str]:
        """Return the chosen channel for each role.

        Returns
        -------
        dict of str to str
            Role -> channel name (optional roles left out when ``(none)``).
        """
        return {r: cb.currentText() for r, cb in self.role_combos.items()
                if cb.currentText() and cb.currentText() not in (NONE, CHOOSE)}

    def check_roles(self) -> None:
        """Refuse a run whose required roles have no channel of the image.

        Raises
        ------
        ValueError
            One line naming the role (and the image's channels).
        """
        req, _ = ROLES.get(self.pipeline_combo.currentText(), ((), ()))
        chosen = self.roles()
        for role in req:
            ch = chosen.get(role)
            if not ch:
                names = ", ".join(self.channel_names) or "none read"
                raise ValueError(f"required role '{role}' has no channel in this image "
                                 f"(channels: {names}); choose one or use another config")
            if self.channel_names and ch not in self.channel_names:
                raise ValueError(f"required role '{role}': channel {ch!r} is not in the image "
                                 f"(channels: {', '.join(self.channel_names)})")

    def config(self) -> Any:
        """Build the validated config from the widget.

        Returns
        -------
        PipelineConfig
            Config file (or defaults) with the chosen channel roles.
        """
        from histo_fms.config import load_config

        over: dict[str, Any] = {"channels": self.roles()}
        if not self.config_edit.text():
            over["pipeline"] = self.pipeline_combo.currentText()
        return load_config(self.config_edit.text() or None, overrides=over,
                           pipeline=self.pipeline_combo.currentText())

    # ------------------------------------------------------------------ running
    def run(self, block: bool = False):
        """Run the pipeline on the chosen files in a napari thread worker.

        Parameters
        ----------
        block : bool
            Run in this thread and return the report (tests, scripts).

        Returns
        -------
        RunReport or worker
            The report when ``block``, else the started worker.
        """
        files = self.files()
        if not files:
            raise ValueError("choose an image first")
        self.check_roles()
        cfg = self.config()
        out = Path(self.out_edit.text() or (files[0].parent / "histo-fms-results"))
        self.out_edit.setText(str(out))
        self._cancel = False
        self.progress.setRange(0, len(files))
        self.progress.setValue(0)
        gen = run_files(cfg, files, out, cancelled=lambda: self._cancel)
        if block:
            try:
                while True:
                    self._on_progress(next(gen))
            except StopIteration as stop:
                self._on_done(stop.value)
            return self.report
        from napari.qt.threading import create_worker

        worker = create_worker(run_files, cfg, files, out, cancelled=lambda: self._cancel,
                               _progress={"total": len(files), "desc": "histo-fms"})
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_done)
        worker.errored.connect(lambda e: self.status_label.setText(f"failed: {e}"))
        worker.finished.connect(self._finished)
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        self.status_label.setText("running…")
        self.worker = worker
        worker.start()
        return worker

    def _run_clicked(self) -> None:
        try:
            self.run()
        except (ValueError, OSError) as exc:  # config / role problems: one line
            self.status_label.setText(str(exc).splitlines()[0] if str(exc) else repr(exc))

    def cancel(self) -> None:
        """Stop after the file being processed (its outputs are kept and resumable)."""
        self._cancel = True
        self.status_label.setText("cancelling after the current file…")

    def _finished(self) -> None:
        self.run_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)

    def _on_progress(self, item) -> None:
        i, n, o = item
        self.progress.setValue(i)
        msg = f"{i}/{n} {o.path.name}: {o.status}"
        if o.error:
            msg += f" ({o.error})"
        self.status_label.setText(msg)

    def _on_done(self, report) -> None:
        self.report = report
        if report is None:
            self.status_label.setText("cancelled; nothing finished")
            return
        from histo_fms.review import ReviewSession

        from ._layers import session_layer_data

        done = [o for o in report.outcomes if o.status != "failed"]
        cancelled = " (cancelled)" if self._cancel else ""
        msg = f"done{cancelled}: {len(done)} image(s) -> {report.out}"
        pipeline = getattr(getattr(report, "config", None), "pipeline", None) or (
            self.pipeline_combo.currentText())
        if pipeline == "drg" and report.threshold is None:
            msg += ("\nno IgG calls: no control section and no threshold (mark control "
                    "sections in a sample sheet or set calibration.threshold)")
        for wmsg in getattr(report, "warnings", []) or []:
            msg += f"\nwarning: {wmsg}"
        self.status_label.setText(msg)
        if done:
            s = ReviewSession.open(report.out, done[0].stem, "napari-viewer")
            have_image = any(getattr(layer, "metadata", {}).get("histo_fms", {}).get("path")
                             == str(done[0].path) for layer in self.viewer.layers)
            from napari.layers import Layer

            for data, kw, kind in session_layer_data(s, with_image=not have_image):
                if kw["name"] in self.viewer.layers:
                    self.viewer.layers.remove(kw["name"])
                self.viewer.add_layer(Layer.create(data, kw, kind))
