"""The sidecar: a narrow window beside the PACS viewer (``companion --sidecar``).

On a reading workstation the PACS owns the big screens; the companion keeps a
strip at a screen edge with the AI findings of the study being read and the top
of the worklist, stays on top when pinned, and switches to the full window with
one key. It is a view: what it shows comes from the main window's models, and
what the reader does here (confirm, reject, open a study) goes back as intents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QColor, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.domain import NON_IMAGING_MODALITIES, Urgency, Verdict, WorklistItem
from ui import theme
from ui.actions import window_action
from ui.elided_label import ElidedLabel
from ui.finding_card import VERDICT_TEXT

WIDTH = 380
TOP_OF_WORKLIST = 6
SWITCH_KEY = QKeySequence("Ctrl+Shift+S")  # sidecar <-> full window, in both windows


@dataclass(frozen=True)
class FindingRow:
    """One finding as the sidecar lists it."""

    tracking_uid: str
    text: str  # e.g. "Intracranial hemorrhage"
    urgency: Urgency
    detail: str  # site · certainty
    verdict: Verdict


class SidecarWindow(QWidget):
    """Findings of the current study over the top of the worklist, in a narrow strip."""

    sig_full_window = Signal()
    sig_open_study = Signal(str)  # study UID
    sig_select_finding = Signal(str)  # Tracking UID
    sig_action = Signal(str)  # a review action on the selected finding: confirm, reject, jump
    sig_closed = Signal()

    def __init__(self, icon: QIcon | None = None) -> None:
        super().__init__(None, Qt.WindowType.Window)
        self.setWindowTitle("AI Review Companion — sidecar")
        if icon is not None:
            self.setWindowIcon(icon)
        self.setObjectName("sidecar")
        self.edge = "right"

        self.title = ElidedLabel("No study open", self)
        self.title.setStyleSheet("font-weight: 600;")
        self.pin = self._tool("On top", "Keep on top of other windows (Ctrl+T)", checkable=True)
        self.pin.toggled.connect(self.set_on_top)
        self.dock_left = self._tool("◀", "Dock to the left edge (Ctrl+Left)")
        self.dock_left.clicked.connect(lambda: self.dock("left"))
        self.dock_right = self._tool("▶", "Dock to the right edge (Ctrl+Right)")
        self.dock_right.clicked.connect(lambda: self.dock("right"))
        self.full = self._tool("⤢", f"Full window ({SWITCH_KEY.toString()})")
        self.full.clicked.connect(self.sig_full_window)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.title, 1)
        for button in (self.pin, self.dock_left, self.dock_right, self.full):
            header.addWidget(button)

        self.findings_label = QLabel("AI findings", self)
        self.findings_label.setStyleSheet("font-weight: 600;")
        self.findings = QListWidget(self)
        self.findings.setObjectName("sidecarFindings")
        self.findings.setWordWrap(True)
        self.findings.currentItemChanged.connect(self._on_finding_changed)
        self.confirm = QPushButton("Confirm (C)", self)
        self.confirm.clicked.connect(lambda: self.sig_action.emit("confirm"))
        self.reject = QPushButton("Reject… (X)", self)
        self.reject.clicked.connect(lambda: self.sig_action.emit("reject"))
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.confirm)
        buttons.addWidget(self.reject)

        self.worklist_label = QLabel("Worklist — next to read", self)
        self.worklist_label.setStyleSheet("font-weight: 600;")
        self.worklist = QListWidget(self)
        self.worklist.setObjectName("sidecarWorklist")
        self.worklist.setWordWrap(True)
        self.worklist.itemActivated.connect(self._on_study_activated)
        self.unread = QLabel("", self)
        self.unread.setObjectName("sidecarUnread")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addLayout(header)
        layout.addWidget(self.findings_label)
        layout.addWidget(self.findings, 3)
        layout.addLayout(buttons)
        layout.addWidget(self.worklist_label)
        layout.addWidget(self.worklist, 2)
        layout.addWidget(self.unread)
        self.setMinimumWidth(300)
        self.resize(WIDTH, 800)

        self._key("Full window", SWITCH_KEY, self.sig_full_window.emit)
        self._key("Keep on top", QKeySequence("Ctrl+T"), self.pin.toggle)
        self._key("Dock left", QKeySequence("Ctrl+Left"), lambda: self.dock("left"))
        self._key("Dock right", QKeySequence("Ctrl+Right"), lambda: self.dock("right"))
        self._key("Confirm", QKeySequence(Qt.Key.Key_C), lambda: self.sig_action.emit("confirm"))
        self._key("Reject", QKeySequence(Qt.Key.Key_X), lambda: self.sig_action.emit("reject"))
        self._key("Next finding", QKeySequence(Qt.Key.Key_J), lambda: self._step(1))
        self._key("Previous finding", QKeySequence(Qt.Key.Key_K), lambda: self._step(-1))
        self._set_findings_enabled(False)

    # -- what it shows -----------------------------------------------------------------
    def set_study(self, title: str, rows: Sequence[FindingRow], selected: str | None) -> None:
        """The open study's title and findings (rows in the main window's order)."""
        self.title.setText(title or "No study open")
        self.title.setToolTip(title)
        self.findings.blockSignals(True)
        self.findings.clear()
        for row in rows:
            item = QListWidgetItem(self._finding_text(row))
            item.setData(Qt.ItemDataRole.UserRole, row.tracking_uid)
            fg, _bg = theme.URGENCY_COLOURS[row.urgency]
            if row.verdict is Verdict.UNDECIDED:
                item.setForeground(QColor(fg if row.urgency > Urgency.ROUTINE else theme.TEXT))
            else:
                item.setForeground(QColor(theme.VERDICT_COLOURS[row.verdict]))
            self.findings.addItem(item)
            if row.tracking_uid == selected:
                self.findings.setCurrentItem(item)
        self.findings.blockSignals(False)
        self.findings_label.setText(f"AI findings ({len(rows)})" if rows else "AI findings")
        self._set_findings_enabled(bool(rows))

    def set_worklist(self, items: Sequence[WorklistItem]) -> None:
        """The top of the ranked worklist, studies still to read first."""
        self.worklist.clear()
        for item in list(items)[:TOP_OF_WORKLIST]:
            modality = "/".join(
                m for m in item.study.modalities if m not in NON_IMAGING_MODALITIES
            )
            line = f"{item.rank}. {modality + ' · ' if modality else ''}{item.reason}"
            row = QListWidgetItem(line)
            row.setData(Qt.ItemDataRole.UserRole, item.study.study_uid)
            row.setToolTip(item.reason)
            if item.critical:
                row.setForeground(QColor(theme.CRITICAL))
            self.worklist.addItem(row)

    def set_unread(self, count: int) -> None:
        self.unread.setText(
            f"⚠ {count} unread critical finding{'s' if count != 1 else ''}" if count else ""
        )
        self.unread.setStyleSheet(f"color: {theme.CRITICAL}; font-weight: 600;")

    # -- window behaviour --------------------------------------------------------------
    def set_on_top(self, on_top: bool) -> None:
        if self.pin.isChecked() != on_top:
            self.pin.setChecked(on_top)  # comes back here through toggled
            return
        visible = self.isVisible()
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, on_top)
        if visible:
            self.show()  # changing a window flag hides the window

    @property
    def on_top(self) -> bool:
        return bool(self.windowFlags() & Qt.WindowType.WindowStaysOnTopHint)

    def dock(self, edge: str) -> None:
        """Fill the height of the screen at its left or right edge."""
        self.edge = edge
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        width = min(max(self.width(), WIDTH), area.width() // 3 or WIDTH)
        x = area.left() if edge == "left" else area.right() - width + 1
        self.setGeometry(x, area.top(), width, area.height())

    def closeEvent(self, event: QCloseEvent) -> None:
        super().closeEvent(event)
        self.sig_closed.emit()

    # -- internals ---------------------------------------------------------------------
    def _finding_text(self, row: FindingRow) -> str:
        mark = {Urgency.CRITICAL: "● CRITICAL  ", Urgency.URGENT: "● Urgent  "}.get(row.urgency, "")
        return f"{mark}{row.text}\n{row.detail} · {VERDICT_TEXT[row.verdict]}"

    def _on_finding_changed(self, current: QListWidgetItem | None, _prev: object) -> None:
        if current is not None:
            self.sig_select_finding.emit(current.data(Qt.ItemDataRole.UserRole))

    def _on_study_activated(self, item: QListWidgetItem) -> None:
        self.sig_open_study.emit(item.data(Qt.ItemDataRole.UserRole))

    def _step(self, delta: int) -> None:
        count = self.findings.count()
        if count:
            row = min(max(self.findings.currentRow() + delta, 0), count - 1)
            self.findings.setCurrentRow(row)

    def _set_findings_enabled(self, enabled: bool) -> None:
        self.confirm.setEnabled(enabled)
        self.reject.setEnabled(enabled)

    def _tool(self, text: str, tip: str, *, checkable: bool = False) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setCheckable(checkable)
        button.setIconSize(QSize(16, 16))
        return button

    def _key(self, text: str, sequence: QKeySequence, slot: object) -> QAction:
        return window_action(self, text, sequence, slot)  # type: ignore[arg-type]
