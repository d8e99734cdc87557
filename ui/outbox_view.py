"""What is waiting to reach the archive: a status-bar indicator and the outbox dialog.

The indicator polls the outbox (one small SQLite query) every two seconds: the
sender runs on its own thread and never touches Qt. Parked items need the
reader: the dialog shows why (with the server's message) and offers Retry
(looked up by UID first, so never stored twice) and Discard.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.delivery.outbox import Outbox, OutboxItem, OutboxStatus
from app.errors import CompanionError
from ui import theme

POLL_MS = 2000


def status_text(status: OutboxStatus) -> tuple[str, str]:
    """(text, colour) for the indicator."""
    parked = status.counts.get("parked", 0)
    if parked:
        return f"Outbox: {parked} need(s) attention", theme.CRITICAL
    if status.pending:
        return f"Outbox: sending {status.pending}", theme.URGENT
    return "Outbox: all sent", theme.TEXT_MUTED


class OutboxIndicator(QPushButton):
    """A flat status-bar button: pending / parked counts; click opens the dialog."""

    sig_changed = Signal(object)  # OutboxStatus, when the counts change

    def __init__(self, outbox: Outbox, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outbox = outbox
        self.setFlat(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setToolTip("What is waiting to be stored in the archive (Ctrl+Shift+O)")
        self.status: OutboxStatus | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        self.clicked.connect(self.open_dialog)
        self.poll()

    def poll(self) -> OutboxStatus | None:
        try:
            status = self.outbox.status()
        except CompanionError as exc:
            self.setText("Outbox: unavailable")
            self.setToolTip(str(exc))
            return None
        text, colour = status_text(status)
        self.setText(text)
        self.setStyleSheet(f"color: {colour}; border: none; padding: 0 6px;")
        if self.status is None or status.counts != self.status.counts:
            self.status = status
            self.sig_changed.emit(status)
        return status

    def open_dialog(self) -> None:
        OutboxDialog(self.outbox, self.window()).exec()
        self.poll()


class OutboxDialog(QDialog):
    """Pending and parked items, with the reason and the server's message."""

    COLUMNS = ("State", "What", "Study", "Tries", "Why", "Server said", "Updated")

    def __init__(self, outbox: Outbox, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.outbox = outbox
        self.setWindowTitle("Outbox")
        self.resize(900, 360)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.retry_button = QPushButton("&Retry", self)
        self.retry_button.setToolTip("Send the selected parked item again (after a lookup by UID)")
        self.discard_button = QPushButton("&Discard…", self)
        self.discard_button.setToolTip("Give up on the selected item; it stays in the journal")
        self.retry_button.clicked.connect(self._retry)
        self.discard_button.clicked.connect(self._discard)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.retry_button)
        row.addWidget(self.discard_button)
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.items: list[OutboxItem] = []
        self.reload()

    def reload(self) -> None:
        status = self.outbox.status()
        self.items = self.outbox.parked() + self.outbox.pending()
        counts = status.counts
        self.summary.setText(
            f"{counts.get('parked', 0)} need(s) attention · {status.pending} waiting to be sent · "
            f"{counts.get('sent', 0)} sent · {counts.get('discarded', 0)} discarded"
        )
        self.table.setRowCount(len(self.items))
        for row, item in enumerate(self.items):
            values = (
                item.state,
                item.label or "DICOM object",
                item.study_instance_uid,
                str(item.attempts),
                item.reason,
                item.server_message,
                item.updated_at.replace("T", " ")[:19],
            )
            for col, value in enumerate(values):
                cell = QTableWidgetItem(value)
                cell.setToolTip(value)
                if item.state == "parked" and col == 0:
                    cell.setForeground(QColor(theme.CRITICAL))
                self.table.setItem(row, col, cell)
        self.table.resizeColumnsToContents()
        self._update_buttons()

    def _selected(self) -> OutboxItem | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.items[min(rows)] if rows else None

    def _update_buttons(self) -> None:
        item = self._selected()
        self.retry_button.setEnabled(item is not None and item.state == "parked")
        self.discard_button.setEnabled(item is not None and item.state in ("parked", "pending"))

    def _retry(self) -> None:
        item = self._selected()
        if item is None:
            return
        try:
            self.outbox.retry(item.id)
        except CompanionError as exc:
            QMessageBox.warning(self, "Outbox", str(exc))
        self.reload()

    def _discard(self) -> None:
        item = self._selected()
        if item is None:
            return
        answer = QMessageBox.question(
            self,
            "Discard",
            f"Discard “{item.label or 'this object'}”? It will not be sent to the archive; "
            "the reader's decisions stay in the local journal.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            self.outbox.discard(item.id)
        except CompanionError as exc:
            QMessageBox.warning(self, "Outbox", str(exc))
        self.reload()
