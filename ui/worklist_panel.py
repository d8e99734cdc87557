"""The worklist panel: ranked studies, filters, refresh state.

The panel shows a ``Worklist`` it is given and reports what the reader wants
(a study, a refresh) as signals; it does no I/O itself. Its auto-refresh timer
only asks for a refresh — the main window decides whether one is running.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.domain import AIStatus, WorklistItem
from app.worklist.service import Worklist
from ui import theme
from ui.elided_label import ElidedLabel
from ui.worklist_model import (
    ACCESSION,
    AI,
    DESCRIPTION,
    FINDINGS,
    MODALITY,
    PRIORITY,
    RANK,
    REASON,
    STUDY_UID_ROLE,
    WAITING,
    WorklistFilterProxy,
    WorklistModel,
)

ALL_MODALITIES = "All modalities"
ALL_STATUSES = "All AI states"


class KeepColourDelegate(QStyledItemDelegate):
    """Selected rows keep their item colour (a red CRITICAL stays red when selected)."""

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        brush = index.data(Qt.ItemDataRole.ForegroundRole)
        if isinstance(brush, QBrush) and option.state & QStyle.StateFlag.State_Selected:
            option.palette.setBrush(QPalette.ColorRole.HighlightedText, brush)


class WorklistPanel(QWidget):
    """Table of ranked studies with modality/AI-state filters and a refresh control."""

    sig_study_selected = Signal(str)
    sig_refresh_requested = Signal()

    def __init__(self, refresh_seconds: int = 60, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = WorklistModel(self)
        self.proxy = WorklistFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._selected_uid: str | None = None
        self._restoring = False

        title = QLabel("Worklist", self)
        title.setObjectName("heading")
        self.last_refresh = ElidedLabel("Not refreshed yet", self, minimum=80)
        self.last_refresh.setObjectName("muted")
        self.last_refresh.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(90)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setToolTip("Refresh the worklist now (F5)")
        self.refresh_button.clicked.connect(self.sig_refresh_requested)

        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter: description, accession, reason  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.modality_filter = QComboBox(self)
        self.modality_filter.addItem(ALL_MODALITIES, "")
        self.modality_filter.setToolTip("Show only studies of this modality")
        self.status_filter = QComboBox(self)
        self.status_filter.addItem(ALL_STATUSES, "")
        for status in AIStatus:
            self.status_filter.addItem(theme.AI_STATUS_TEXT[status], status.value)
        self.status_filter.setToolTip("Show only studies whose AI results are in this state")

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setItemDelegate(KeepColourDelegate(self.table))
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(RANK, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(26)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in (
            (RANK, 34), (PRIORITY, 100), (AI, 112), (MODALITY, 76),
            (DESCRIPTION, 170), (ACCESSION, 96), (WAITING, 86), (FINDINGS, 72), (REASON, 320),
        ):
            self.table.setColumnWidth(column, width)
        # Why a study ranks where it does is the worklist's point: show it next to the rank.
        header.moveSection(header.visualIndex(REASON), header.visualIndex(PRIORITY) + 1)
        self.empty = QLabel("No studies in the archive", self)
        self.empty.setObjectName("muted")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.hide()
        self.detail = QLabel("", self)
        self.detail.setObjectName("detail")
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.PlainText)

        top = QHBoxLayout()
        top.addWidget(title)
        top.addWidget(self.last_refresh, 1)
        top.addWidget(self.progress)
        top.addWidget(self.refresh_button)
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.modality_filter)
        filters.addWidget(self.status_filter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty)
        layout.addWidget(self.detail)

        self.search.textChanged.connect(self.proxy.set_text)
        self.modality_filter.currentIndexChanged.connect(
            lambda _: self.proxy.set_modality(self.modality_filter.currentData() or "")
        )
        self.status_filter.currentIndexChanged.connect(
            lambda _: self.proxy.set_ai_status(self.status_filter.currentData())
        )
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.activated.connect(self._on_activated)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self.sig_refresh_requested)
        self.set_refresh_interval(refresh_seconds)

    # -- public -----------------------------------------------------------------------
    @property
    def selected_study_uid(self) -> str | None:
        return self._selected_uid

    def set_refresh_interval(self, seconds: int) -> None:
        """Auto-refresh every ``seconds`` (0 or less: off)."""
        self.timer.stop()
        if seconds > 0:
            self.timer.start(seconds * 1000)

    def set_worklist(self, worklist: Worklist) -> None:
        """Show a freshly built worklist, keeping the reader's selection and filters."""
        keep = self._selected_uid
        self._restoring = True
        try:
            self.model.set_items(worklist.items)
            self._update_modalities(worklist.items)
            if keep is not None:
                self.select_study(keep, emit=False)
            self._show_detail(self._selected_uid)
        finally:
            self._restoring = False
        stamp = worklist.refreshed_at.strftime("%H:%M:%S")
        text = f"{len(worklist.items)} studies · Last refresh {stamp}"
        if worklist.errors:
            text += f" · {len(worklist.errors)} problem(s)"
            self.last_refresh.setToolTip("\n".join(worklist.errors))
        else:
            self.last_refresh.setToolTip(f"Worklist from {worklist.archive_description}")
        self.last_refresh.setText(text)
        self.empty.setVisible(not worklist.items)

    def set_refreshing(self, refreshing: bool) -> None:
        self.refresh_button.setEnabled(not refreshing)
        self.progress.setVisible(refreshing)
        if refreshing:
            self.progress.setRange(0, 0)  # busy until the first progress report

    def set_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def set_refresh_failed(self, when: datetime) -> None:
        self.last_refresh.setText(
            f"Refresh failed at {when.strftime('%H:%M:%S')} · showing the last list"
        )

    def select_study(self, study_uid: str, *, emit: bool = True) -> bool:
        """Select a study's row (clearing filters that hide it); False if not listed."""
        row = self.model.row_of(study_uid)
        if row is None:
            return False
        proxy_index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not proxy_index.isValid():
            self.clear_filters()
            proxy_index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not emit:
            self._selected_uid = study_uid
        self.table.selectionModel().setCurrentIndex(
            proxy_index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(proxy_index)
        return True

    def mark_submitted(self, study_uid: str) -> bool:
        """The reader submitted this study's review: show it as such right away."""
        return self.model.mark_submitted(study_uid)

    def select_top(self) -> str | None:
        """Select the first visible row; its study UID, or None when the list is empty."""
        if self.proxy.rowCount() == 0:
            return None
        uid = self.proxy.index(0, 0).data(STUDY_UID_ROLE)
        self.select_study(uid)
        return str(uid)

    def visible_items(self) -> list[WorklistItem]:
        """The rows as shown (sorted and filtered), top first."""
        return [
            self.model.item_at(self.proxy.mapToSource(self.proxy.index(r, 0)).row())
            for r in range(self.proxy.rowCount())
        ]

    def clear_filters(self) -> None:
        self.search.clear()
        self.modality_filter.setCurrentIndex(0)
        self.status_filter.setCurrentIndex(0)

    def focus_filter(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    # -- internals ---------------------------------------------------------------------
    def _update_modalities(self, items: tuple[WorklistItem, ...]) -> None:
        current = self.modality_filter.currentData() or ""
        found = sorted({m for i in items for m in i.study.modality.split("/") if m})
        self.modality_filter.blockSignals(True)
        self.modality_filter.clear()
        self.modality_filter.addItem(ALL_MODALITIES, "")
        for modality in found:
            self.modality_filter.addItem(modality, modality)
        index = self.modality_filter.findData(current) if current else 0
        self.modality_filter.setCurrentIndex(max(index, 0))
        self.modality_filter.blockSignals(False)
        self.proxy.set_modality(self.modality_filter.currentData() or "")

    def _show_detail(self, uid: str | None) -> None:
        """The selected study's rank explained in full, under the table."""
        row = self.model.row_of(uid) if uid else None
        if row is None:
            self.detail.setText("")
            return
        item = self.model.item_at(row)
        lines = [f"#{item.rank}: {item.reason}"]
        lines += [f"• {problem}" for problem in item.problems]
        self.detail.setText("\n".join(lines))

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        uid = str(current.data(STUDY_UID_ROLE))
        self._show_detail(uid)
        if self._restoring or uid == self._selected_uid:
            self._selected_uid = uid
            return
        self._selected_uid = uid
        self.sig_study_selected.emit(uid)

    def _on_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            uid = str(index.data(STUDY_UID_ROLE))
            self._selected_uid = uid
            self.sig_study_selected.emit(uid)

