"""Blinded review queue widget: cases under neutral codes, unblinding at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from histo_fms.review import ReviewQueue
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ._review_widget import ReviewWidget

if TYPE_CHECKING:
    import napari


class QueueWidget(QWidget):
    """Review a batch blinded: seeded random order, "case 3 of 12", unblind at the end.

    File names, sample-sheet groups and paths never reach a layer name, the viewer
    title or this widget's text before :meth:`unblind`.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.queue: ReviewQueue | None = None
        self.case = None
        self._layers: list = []
        lay = QVBoxLayout(self)
        form = QFormLayout()
        row = QHBoxLayout()
        self.results_edit = QLineEdit()
        self.results_edit.setPlaceholderText("results folder (with run.json)")
        b = QPushButton("…")
        b.clicked.connect(self._browse)
        row.addWidget(self.results_edit)
        row.addWidget(b)
        form.addRow("folder", row)
        self.reviewer_edit = QLineEdit()
        self.reviewer_edit.setPlaceholderText("your name or initials")
        form.addRow("reviewer", self.reviewer_edit)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(1)
        form.addRow("seed", self.seed_spin)
        lay.addLayout(form)
        self.start_btn = QPushButton("Start or resume queue")
        self.start_btn.clicked.connect(lambda: self._guard(self.start))
        lay.addWidget(self.start_btn)
        self.case_label = QLabel("no queue")
        lay.addWidget(self.case_label)
        self.progress = QProgressBar()
        lay.addWidget(self.progress)
        row = QHBoxLayout()
        self.next_btn = QPushButton("Case done, next")
        self.next_btn.clicked.connect(lambda: self._guard(self.complete_case))
        self.unblind_btn = QPushButton("Unblind")
        self.unblind_btn.setToolTip("reveal file names and groups (recorded in the queue log)")
        self.unblind_btn.clicked.connect(lambda: self._guard(self.unblind))
        self.prev_btn = QPushButton("Previous case")
        self.prev_btn.setToolTip("revisit the case before (it must be completed again)")
        self.prev_btn.clicked.connect(lambda: self._guard(self.previous_case))
        row.addWidget(self.prev_btn)
        row.addWidget(self.next_btn)
        row.addWidget(self.unblind_btn)
        lay.addLayout(row)
        self.review = ReviewWidget(napari_viewer, blind=True)
        lay.addWidget(self.review)
        self.key_view = QTableWidget()
        self.key_view.setVisible(False)
        lay.addWidget(self.key_view)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        lay.addWidget(self.error_label)
        self._update_buttons()

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Results folder")
        if d:
            self.results_edit.setText(d)

    def _guard(self, fn, *a, **k):
        try:
            self.error_label.setText("")
            return fn(*a, **k)
        except (ValueError, KeyError, RuntimeError, FileNotFoundError) as exc:
            self.error_label.setText(str(exc))
            return None

    def _update_buttons(self) -> None:
        q = self.queue
        self.next_btn.setEnabled(q is not None and self.case is not None)
        self.prev_btn.setEnabled(q is not None and not q.unblinded
                                 and q.previous_case(self.case.code if self.case else None)
                                 is not None)
        self.unblind_btn.setEnabled(q is not None and q.finished and not q.unblinded)
        if q is not None:
            done, total = q.progress
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{done} of {total} reviewed")

    def start(self, results_dir: str | None = None, reviewer: str | None = None,
              seed: int | None = None, *, clear_layers: bool | None = None) -> None:
        """Start a new queue or resume this reviewer's, and open the next case.

        Parameters
        ----------
        results_dir : str, optional
            Results folder (default: the folder field).
        reviewer : str, optional
            Reviewer (default: the reviewer field).
        seed : int, optional
            Order seed (default: the seed field; ignored when resuming with another).
        clear_layers : bool, optional
            The queue starts blinded on an empty viewer; layers already open (their
            names may unblind) are removed. None: ask first when there are any.
        """
        if results_dir is not None:
            self.results_edit.setText(str(results_dir))
        if reviewer is not None:
            self.reviewer_edit.setText(reviewer)
        if seed is not None:
            self.seed_spin.setValue(int(seed))
        rd, rv = self.results_edit.text(), self.reviewer_edit.text()
        # blinded from the start: layers opened before could carry file names
        if len(self.viewer.layers):
            if clear_layers is None:
                ans = QMessageBox.question(
                    self, "Blinded review", f"Close the {len(self.viewer.layers)} open "
                    "layer(s)? Their names could reveal the images. (No: the queue does "
                    "not start.)")
                clear_layers = ans == QMessageBox.Yes
            if not clear_layers:
                raise RuntimeError("the queue needs an empty viewer (open layers could "
                                   "unblind); close them or allow the queue to")
            self.viewer.layers.clear()
        self._layers = []
        try:
            self.queue = ReviewQueue(rd, rv, self.seed_spin.value())
        except ValueError as exc:
            if "already has a queue" not in str(exc):
                raise
            self.queue = ReviewQueue(rd, rv, None)
            self.seed_spin.setValue(self.queue.seed)
        self.open_next()

    def _clear_layers(self) -> None:
        from ._review_widget import CUT, DELETED, SEEDS

        for layer in list(self.viewer.layers):
            if layer in self._layers or layer.name in (SEEDS, CUT, DELETED):
                self.viewer.layers.remove(layer)
        self._layers = []

    def open_next(self) -> None:
        """Open the next case not done (or show that the queue is finished)."""
        q = self.queue
        if q is None:
            return
        self._clear_layers()
        self.case = q.next_case()
        if self.case is None:
            self.case_label.setText("queue finished: unblind when ready")
            self.review.session = None
            self.review.title_label.setText("")
            self.viewer.title = "histo-fms review: finished"
        else:
            session = q.open_case(self.case.code)
            before = set(self.viewer.layers)
            self.review.set_session(session, title=self.case.label)
            self._layers = [layer for layer in self.viewer.layers if layer not in before]
            self.case_label.setText(self.case.label)
            self.viewer.title = f"histo-fms review: {self.case.label}"
        self._update_buttons()

    def previous_case(self) -> None:
        """Revisit the case before the current one (it is reopened: complete it again)."""
        q = self.queue
        if q is None:
            raise RuntimeError("no queue")
        prev = q.previous_case(self.case.code if self.case else None)
        if prev is None:
            raise RuntimeError("this is the first case")
        session = self.review.session
        if session is not None and session.needs_recompute:
            session.recompute()
        q.reopen(prev.code)
        self._clear_layers()
        self.case = q.case(prev.code)
        before = set(self.viewer.layers)
        self.review.set_session(q.open_case(prev.code), title=self.case.label)
        self._layers = [layer for layer in self.viewer.layers if layer not in before]
        self.case_label.setText(self.case.label + " (revisited)")
        self.viewer.title = f"histo-fms review: {self.case.label}"
        self._update_buttons()

    def complete_case(self) -> None:
        """Recompute the case's reviewed tables if edited, mark it done, open the next."""
        if self.queue is None or self.case is None:
            raise RuntimeError("no case open")
        session = self.review.session
        if session is not None and session.needs_recompute:
            # a closed case's reviewed numbers are never stale
            session.recompute()
        self.queue.complete(self.case.code)
        self.open_next()

    def unblind(self) -> str:
        """Reveal the key (recorded in the queue log) and show it.

        Returns
        -------
        str
            The key as text.
        """
        if self.queue is None:
            raise RuntimeError("no queue")
        key = self.queue.unblind()
        txt = key.to_string(index=False)
        table = self.queue.key_table()
        self.key_table = table
        self.key_view.setRowCount(len(table))
        self.key_view.setColumnCount(len(table.columns))
        self.key_view.setHorizontalHeaderLabels([str(c) for c in table.columns])
        for i, row in enumerate(table.itertuples(index=False)):
            for j, v in enumerate(row):
                if isinstance(v, float):
                    v = "" if v != v else f"{v:.4g}"
                self.key_view.setItem(i, j, QTableWidgetItem(str(v)))
        self.key_view.resizeColumnsToContents()
        self.key_view.setVisible(True)
        self._update_buttons()
        return txt
