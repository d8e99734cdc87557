"""Qt model over the ranked worklist, and the proxy that sorts and filters it.

The model holds nothing but the ``WorklistItem`` tuple it is given; every cell
is computed from an item, so the view can never drift from the worklist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont

from app.domain import AIStatus, ReviewState, Urgency, WorklistItem
from ui import theme

COLUMNS = (
    "#",
    "Priority",
    "AI",
    "Modality",
    "Description",
    "Accession",
    "Waiting",
    "Findings",
    "Reason",
)
RANK, PRIORITY, AI, MODALITY, DESCRIPTION, ACCESSION, WAITING, FINDINGS, REASON = range(
    len(COLUMNS)
)
STUDY_UID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
CRITICAL_ROLE = Qt.ItemDataRole.UserRole + 3

Index = QModelIndex | QPersistentModelIndex


def top_urgency(item: WorklistItem) -> Urgency | None:
    """The most urgent finding's urgency; CRITICAL when the worklist flags the study."""
    if item.critical:
        return Urgency.CRITICAL
    return max((f.urgency for f in item.findings), default=None)


def priority_text(item: WorklistItem) -> str:
    urgency = top_urgency(item)
    if urgency is Urgency.CRITICAL:
        return "● CRITICAL"
    if urgency is Urgency.URGENT:
        return "● Urgent"
    if urgency is Urgency.ROUTINE:
        return "Routine"
    return ""


def waiting_text(minutes: float | None) -> str:
    """Compact waiting time: "45 min", "3 h 10 min", "2 d 4 h"."""
    if minutes is None:
        return ""
    total = round(minutes)
    if total < 60:
        return f"{total} min"
    hours, mins = divmod(total, 60)
    if hours < 24:
        return f"{hours} h {mins:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


class WorklistModel(QAbstractTableModel):
    """Read-only table of worklist items, one row per study, in rank order."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: tuple[WorklistItem, ...] = ()

    @property
    def items(self) -> tuple[WorklistItem, ...]:
        return self._items

    def set_items(self, items: Sequence[WorklistItem]) -> None:
        self.beginResetModel()
        self._items = tuple(items)
        self.endResetModel()

    def mark_submitted(self, study_uid: str) -> bool:
        """Show a study as reviewed here (its review is in the outbox) until the next build."""
        row = self.row_of(study_uid)
        if row is None:
            return False
        item = self._items[row]
        if item.review is ReviewState.NONE:
            items = list(self._items)
            items[row] = replace(item, review=ReviewState.SUBMITTED)
            self._items = tuple(items)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        return True

    def item_at(self, row: int) -> WorklistItem:
        return self._items[row]

    def row_of(self, study_uid: str) -> int | None:
        for row, item in enumerate(self._items):
            if item.study.study_uid == study_uid:
                return row
        return None

    # -- QAbstractTableModel ------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return _HEADER_TIPS.get(section)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._items):
            return None
        item = self._items[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(item, column)
        if role == SORT_ROLE:
            return _sort_key(item, column)
        if role == STUDY_UID_ROLE:
            return item.study.study_uid
        if role == CRITICAL_ROLE:
            return item.critical
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(item, column)
        if role == Qt.ItemDataRole.FontRole and item.critical:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole:
            return _foreground(item, column)
        if role == Qt.ItemDataRole.BackgroundRole and item.critical:
            return QBrush(QColor(theme.CRITICAL_BG))
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (RANK, FINDINGS):
            return int(Qt.AlignmentFlag.AlignCenter)
        return None


REVIEW_TEXT = {ReviewState.SUBMITTED: "✓ Submitted", ReviewState.REVIEWED: "✓ Reviewed"}

_HEADER_TIPS = {
    RANK: "Rank: 1 is read first",
    PRIORITY: "Most urgent AI finding of the study",
    AI: "State of the study's AI results, or ✓ when a reader has reviewed them",
    WAITING: "Time since the study was acquired",
    FINDINGS: "Number of AI findings",
    REASON: "Why the study has this rank",
}


def _display(item: WorklistItem, column: int) -> str:
    study = item.study
    values = {
        RANK: str(item.rank),
        PRIORITY: priority_text(item),
        AI: REVIEW_TEXT.get(item.review) or theme.AI_STATUS_TEXT[item.ai_status],
        MODALITY: study.modality,
        DESCRIPTION: study.description,
        ACCESSION: study.accession,
        WAITING: waiting_text(item.waiting_minutes),
        FINDINGS: str(len(item.findings)) if item.findings else "–",
        REASON: item.reason,
    }
    return values.get(column, "")


def _sort_key(item: WorklistItem, column: int) -> Any:
    if column == RANK:
        return item.rank
    if column == PRIORITY:
        urgency = top_urgency(item)
        return -1 if urgency is None else int(urgency)
    if column == WAITING:
        return item.waiting_minutes if item.waiting_minutes is not None else -1.0
    if column == FINDINGS:
        return len(item.findings)
    return _display(item, column).lower()


def _tooltip(item: WorklistItem, column: int) -> str | None:
    if column == FINDINGS and item.findings:
        return "\n".join(
            f"{f.finding.meaning} ({f.urgency.label})" for f in item.findings
        )
    if column == AI and item.review is not ReviewState.NONE:
        who = f" by {item.reviewed_by}" if item.reviewed_by else ""
        state = "in the archive" if item.review is ReviewState.REVIEWED else "in the outbox"
        return f"AI results reviewed{who}; the assessment is {state}"
    if column == AI and item.problems:
        return "\n".join(item.problems)
    if column in (REASON, DESCRIPTION):
        lines = [item.reason] + [f"  {t.text}" for t in item.terms]
        return "\n".join(line for line in lines if line.strip())
    return None


def _foreground(item: WorklistItem, column: int) -> QBrush | None:
    if column == PRIORITY:
        urgency = top_urgency(item)
        if urgency is not None:
            return QBrush(QColor(theme.URGENCY_COLOURS[urgency][0]))
    if column == AI and item.review is not ReviewState.NONE:
        return QBrush(QColor(theme.CONFIRMED))
    if column == AI and item.ai_status in (AIStatus.UNREADABLE, AIStatus.PENDING):
        return QBrush(QColor(theme.URGENT))
    if column in (REASON, ACCESSION, WAITING):
        return QBrush(QColor(theme.TEXT_MUTED if not item.critical else theme.TEXT))
    return None


class WorklistFilterProxy(QSortFilterProxyModel):
    """Sorts by a per-column key and filters by modality, AI status and free text."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self._modality = ""
        self._status: AIStatus | None = None
        self._text = ""

    def set_modality(self, modality: str) -> None:
        self.beginFilterChange()
        self._modality = modality
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_ai_status(self, status: AIStatus | str | None) -> None:
        """Show only one AI state (an ``AIStatus`` or its value); None or "" shows all."""
        self.beginFilterChange()
        self._status = AIStatus(status) if status else None
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._text = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, WorklistModel):
            return True
        item = model.item_at(source_row)
        if self._modality and self._modality not in item.study.modality.split("/"):
            return False
        if self._status is not None and item.ai_status is not self._status:
            return False
        if self._text:
            study = item.study
            haystack = f"{study.description} {study.accession} {item.reason} {study.modality}"
            haystack = haystack.lower()
            if self._text not in haystack:
                return False
        return True
