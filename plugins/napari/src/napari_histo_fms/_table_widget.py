"""Object table: a sortable, filterable table of the neurons under review, with triage.

The rows come from :func:`histo_fms.review._triage.object_table` (Qt-free); after an
edit only the touched rows are replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from histo_fms.review._triage import OBJECT_COLUMNS, object_rows, object_table, progress
from qtpy.QtCore import QAbstractProxyModel, QAbstractTableModel, QModelIndex, Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from ._review_widget import ReviewWidget

HEADERS = {"neuron_id": "id", "call": "call", "call_source": "by", "ring_igg": "ring IgG",
           "area_um2": "area µm²", "diameter_um": "diam. µm", "size_class": "size",
           "touches_border": "border", "excluded": "excluded", "reviewed": "reviewed",
           "status": "status", "y_um": "y µm", "x_um": "x µm"}
SHOWN = ["neuron_id", "call", "call_source", "ring_igg", "area_um2", "diameter_um",
         "size_class", "touches_border", "excluded", "reviewed", "status"]


class ObjectTableModel(QAbstractTableModel):
    """A Qt table model over a DataFrame of :data:`OBJECT_COLUMNS` (one row per neuron)."""

    def __init__(self, df: pd.DataFrame | None = None):
        super().__init__()
        self.df = pd.DataFrame(columns=OBJECT_COLUMNS)
        self.row_of: dict[int, int] = {}
        if df is not None:
            self.set_frame(df)

    def set_frame(self, df: pd.DataFrame) -> None:
        """Replace every row."""
        self.beginResetModel()
        self.df = df.reset_index(drop=True)
        self.row_of = {int(i): k for k, i in enumerate(self.df["neuron_id"])}
        self._mark_alive()
        self.endResetModel()

    def _mark_alive(self, rows=None) -> None:
        """Keep a numpy mask of the rows not deleted (``df.attrs["alive"]``)."""
        m = self.df.attrs.get("alive")
        if (rows is None or not isinstance(m, np.ndarray) or m.shape != (len(self.df),)
                or not m.flags.writeable):
            self.df.attrs["alive"] = np.array(self.df["status"].astype(str) != "deleted", bool)
            return
        for k in rows:
            m[k] = self.df.iat[k, self.df.columns.get_loc("status")] != "deleted"

    def update_rows(self, rows: pd.DataFrame) -> None:
        """Replace (or append) the rows of the given neurons only."""
        new = []
        changed = []
        cols = [(c, self.df.columns.get_loc(c), rows[c].to_numpy()) for c in OBJECT_COLUMNS[1:]]
        for j, nid in enumerate(rows["neuron_id"].to_numpy().tolist()):
            k = self.row_of.get(int(nid))
            if k is None:
                new.append(j)
                continue
            for _, pos, vals in cols:
                self.df.iat[k, pos] = vals[j]
            changed.append(k)
        self._mark_alive(changed)
        for k in changed:
            self.dataChanged.emit(self.index(k, 0), self.index(k, len(SHOWN) - 1))
        if new:
            n0 = len(self.df)
            self.beginInsertRows(QModelIndex(), n0, n0 + len(new) - 1)
            self.df = pd.concat([self.df, rows.iloc[new]], ignore_index=True)
            for k in range(n0, len(self.df)):
                self.row_of[int(self.df.iat[k, 0])] = k
            self._mark_alive()
            self.endInsertRows()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self.df)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(SHOWN)

    def headerData(self, section, orientation, role=Qt.DisplayRole):  # noqa: N802 - Qt API
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return HEADERS[SHOWN[section]]
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        v = self.df.iat[index.row(), self.df.columns.get_loc(SHOWN[index.column()])]
        if role == Qt.UserRole:  # sort key
            if isinstance(v, (bool, np.bool_)):
                return int(v)
            try:
                f = float(v)
                return f if np.isfinite(f) else -np.inf
            except (TypeError, ValueError):
                return str(v)
        if role == Qt.DisplayRole:
            if isinstance(v, (bool, np.bool_)):
                return "yes" if v else ""
            if isinstance(v, (float, np.floating)):
                return "" if not np.isfinite(v) else f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
            return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
        return None

    def value(self, row: int, col: str) -> Any:
        """Return the value of a column in a source row."""
        return self.df.iat[row, self.df.columns.get_loc(col)]


class ObjectFilter(QAbstractProxyModel):
    """Filter rows by call, size class, border and reviewed state; sort numerically.

    Sorting and filtering are numpy operations on the table's columns (a Qt sort
    filter proxy would call Python for every comparison: minutes for a whole
    section's 60,000 rows). After an edit only the edited rows change; the order is
    recomputed (milliseconds) and the view reset only when it changed.
    """

    def __init__(self):
        super().__init__()
        self.filters: dict[str, str] = {}
        self._sort: tuple[int, Any] | None = None
        self._order = np.zeros(0, np.int64)  # view row -> source row
        self._inv = np.zeros(0, np.int64)  # source row -> view row (-1 hidden)

    # ---------------------------------------------------------------- wiring
    def setSourceModel(self, model) -> None:  # noqa: N802 - Qt API
        super().setSourceModel(model)
        model.modelReset.connect(self._rebuild)
        model.rowsInserted.connect(self._rebuild)
        model.dataChanged.connect(self._source_changed)
        self._rebuild()

    def set_filter(self, key: str, value: str) -> None:
        """Set one filter (``"all"`` clears it)."""
        self.filters[key] = value
        self._rebuild()

    def sort(self, column: int, order=Qt.AscendingOrder) -> None:
        self._sort = (int(column), order)
        self._rebuild()

    # ---------------------------------------------------------------- order
    def _compute(self) -> np.ndarray:
        m: ObjectTableModel = self.sourceModel()
        df = m.df
        n = len(df)
        keep = np.ones(n, bool)
        f = self.filters
        if n:
            if f.get("call", "all") != "all":
                keep &= df["call"].astype(str).to_numpy() == f["call"]
            if f.get("size", "all") != "all":
                keep &= df["size_class"].astype(str).to_numpy() == f["size"]
            b = f.get("border", "all")
            if b != "all":
                keep &= df["touches_border"].astype(bool).to_numpy() == (b == "border")
            r = f.get("reviewed", "all")
            if r != "all":
                keep &= df["reviewed"].astype(bool).to_numpy() == (r == "reviewed")
            st = f.get("status", "all")
            alive = df.attrs.get("alive")
            deleted = (~alive if isinstance(alive, np.ndarray) and alive.shape == (n,)
                       else df["status"].astype(str).to_numpy() == "deleted")
            if st == "current":
                keep &= ~deleted
            elif st == "deleted":
                keep &= deleted
        rows = np.flatnonzero(keep)
        if self._sort is not None and rows.size:
            col, order = self._sort
            v = df[SHOWN[col]].to_numpy()[rows]
            if v.dtype == object:
                try:
                    key = pd.to_numeric(pd.Series(v), errors="raise").to_numpy(float)
                except (TypeError, ValueError):
                    key = np.asarray([str(x) for x in v])
            else:
                key = v.astype(float) if v.dtype.kind in "biuf" else v
            if key.dtype.kind == "f":
                key = np.where(np.isfinite(key), key, -np.inf)
            o = np.argsort(key, kind="stable")
            if order == Qt.DescendingOrder:
                o = o[::-1]
            rows = rows[o]
        return rows

    def _rebuild(self, *args) -> None:
        self.beginResetModel()
        self._set_order(self._compute())
        self.endResetModel()

    def _set_order(self, rows: np.ndarray) -> None:
        m = self.sourceModel()
        self._order = rows.astype(np.int64)
        self._inv = np.full(len(m.df), -1, np.int64)
        self._inv[self._order] = np.arange(self._order.size)

    def _source_changed(self, top, bottom, roles=()) -> None:
        rows = self._compute()
        if not np.array_equal(rows, self._order):
            self._rebuild()
            return
        for r in range(top.row(), bottom.row() + 1):
            v = int(self._inv[r]) if r < self._inv.size else -1
            if v >= 0:
                self.dataChanged.emit(self.index(v, 0), self.index(v, len(SHOWN) - 1))

    # ---------------------------------------------------------------- Qt API
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else int(self._order.size)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(SHOWN)

    def index(self, row, column, parent=QModelIndex()):  # noqa: B008 - Qt API
        if parent.isValid() or not (0 <= row < self._order.size) or not (
                0 <= column < len(SHOWN)):
            return QModelIndex()
        return self.createIndex(row, column)

    def parent(self, index=None):
        return QModelIndex()

    def mapToSource(self, index):  # noqa: N802 - Qt API
        if not index.isValid() or not (0 <= index.row() < self._order.size):
            return QModelIndex()
        return self.sourceModel().index(int(self._order[index.row()]), index.column())

    def mapFromSource(self, index):  # noqa: N802 - Qt API
        if not index.isValid() or not (0 <= index.row() < self._inv.size):
            return QModelIndex()
        v = int(self._inv[index.row()])
        return self.index(v, index.column()) if v >= 0 else QModelIndex()

    def headerData(self, section, orientation, role=Qt.DisplayRole):  # noqa: N802 - Qt API
        return self.sourceModel().headerData(section, orientation, role)


class ObjectTableWidget(QWidget):
    """The neurons of the open review as a table: click a row to go to the neuron.

    Parameters
    ----------
    review : ReviewWidget
        The review widget whose session is shown.
    """

    def __init__(self, review: ReviewWidget):
        super().__init__()
        self.review = review
        self.model = ObjectTableModel()
        self.proxy = ObjectFilter()
        self.proxy.setSourceModel(self.model)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.filter_combos: dict[str, QComboBox] = {}
        for key, items in (("call", ["all", "IgG+", "IgG−", "?"]),
                           ("size", ["all", "small", "medium", "large"]),
                           ("border", ["all", "interior", "border"]),
                           ("reviewed", ["all", "unreviewed", "reviewed"]),
                           ("status", ["all", "current", "deleted"])):
            cb = QComboBox()
            cb.addItems(items)
            cb.setToolTip(f"filter by {key}")
            cb.currentTextChanged.connect(lambda v, k=key: self.proxy.set_filter(k, v))
            row.addWidget(cb)
            self.filter_combos[key] = cb
        lay.addLayout(row)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SingleSelection)
        self.view.verticalHeader().setVisible(False)
        self.view.clicked.connect(self._clicked)
        lay.addWidget(self.view)
        self.progress_label = QLabel("")
        lay.addWidget(self.progress_label)

    # ---------------------------------------------------------------- content
    def reload(self, table: pd.DataFrame | None = None) -> None:
        """Rebuild the table from the session (on opening an image).

        Parameters
        ----------
        table : pandas.DataFrame, optional
            The object table, if already built.
        """
        s = self.review.session
        if s is None or s.kind != "drg":
            self.model.set_frame(pd.DataFrame(columns=OBJECT_COLUMNS))
            self.progress_label.setText("")
            return
        self.model.set_frame(object_table(s) if table is None else table)
        self.update_progress()

    def update_ids(self, ids) -> None:
        """Refresh the rows of the given neurons only (after an edit)."""
        s = self.review.session
        if s is None or s.kind != "drg":
            return
        ids = [int(i) for i in ids if int(i) > 0]
        if ids:
            self.model.update_rows(object_rows(s, ids))
        self.update_progress()

    def update_progress(self) -> None:
        """Show "reviewed n of N"."""
        s = self.review.session
        if s is None or s.kind != "drg":
            return
        n, total = progress(s, self.model.df)
        self.progress_label.setText(f"reviewed {n} of {total}")

    def select_id(self, nid: int) -> None:
        """Highlight a neuron's row (no camera move)."""
        k = self.model.row_of.get(int(nid))
        if k is None:
            self.view.clearSelection()
            return
        idx = self.proxy.mapFromSource(self.model.index(k, 0))
        if idx.isValid():
            self.view.blockSignals(True)
            self.view.selectRow(idx.row())
            self.view.scrollTo(idx)
            self.view.blockSignals(False)

    def selected_id(self) -> int | None:
        """Return the neuron of the highlighted row."""
        rows = self.view.selectionModel().selectedRows()
        if not rows:
            return None
        src = self.proxy.mapToSource(rows[0])
        return int(self.model.value(src.row(), "neuron_id"))

    def click_row(self, view_row: int) -> int:
        """Act as a click on a (filtered, sorted) row: go to its neuron; return its id."""
        idx = self.proxy.index(view_row, 0)
        self.view.selectRow(view_row)
        self._clicked(idx)
        return int(self.model.value(self.proxy.mapToSource(idx).row(), "neuron_id"))

    def _clicked(self, index) -> None:
        src = self.proxy.mapToSource(index)
        nid = int(self.model.value(src.row(), "neuron_id"))
        y, x = self.model.value(src.row(), "y_um"), self.model.value(src.row(), "x_um")
        self.review.go_to(nid, (y, x))
