"""Worklist panel, both directions: worklist → rows (sorting, filtering, styling), rows → intent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtGui import QBrush, QColor, QFont
from pytestqt.qtbot import QtBot

from app.domain import (
    AIStatus,
    Algorithm,
    Code,
    Finding,
    StudyRef,
    Urgency,
    WorklistItem,
)
from app.worklist.service import Worklist
from tests.ui.qt_helpers import dispose
from ui import theme
from ui.worklist_model import (
    AI,
    FINDINGS,
    MODALITY,
    PRIORITY,
    RANK,
    REASON,
    WAITING,
    waiting_text,
)
from ui.worklist_panel import WorklistPanel

pytestmark = pytest.mark.gui


def _finding(urgency: Urgency, uid: str) -> Finding:
    return Finding(
        tracking_uid=uid,
        finding=Code("1386000", "SCT", "Intracranial hemorrhage"),
        site=None,
        certainty=0.9,
        urgency=urgency,
        algorithm=Algorithm("BleedFinder", "2.1"),
        regions=(),
        measurements=(),
        source_sop_uid="1.2.9",
    )


def _item(rank: int, uid: str, modality: str, status: AIStatus, *, minutes: float,
          urgency: Urgency | None = None) -> WorklistItem:
    findings = (_finding(urgency, f"{uid}.f"),) if urgency is not None else ()
    return WorklistItem(
        study=StudyRef(uid, accession=f"ACC-{uid}", description=f"study {uid}",
                       modalities=(modality, "SR") if findings else (modality,)),
        rank=rank,
        score=100.0 - rank,
        reason=f"reason {uid}",
        ai_status=status,
        critical=urgency is Urgency.CRITICAL,
        findings=findings,
        waiting_minutes=minutes,
    )


ITEMS = (
    _item(1, "1.1", "CT", AIStatus.DONE, minutes=20, urgency=Urgency.CRITICAL),
    _item(2, "1.2", "CR", AIStatus.DONE, minutes=300, urgency=Urgency.URGENT),
    _item(3, "1.3", "MR", AIStatus.UNREADABLE, minutes=5),
    _item(4, "1.4", "CT", AIStatus.NONE, minutes=3000),
)
WORKLIST = Worklist(ITEMS, datetime(2024, 5, 6, 7, 8, 9), (), "local archive /tmp/x")


@pytest.fixture()
def panel(qtbot: QtBot) -> Iterator[WorklistPanel]:
    widget = WorklistPanel(refresh_seconds=45)
    widget.resize(900, 400)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_worklist(WORKLIST)
    yield widget
    dispose(widget)


def _column(panel: WorklistPanel, column: int) -> list[str]:
    model = panel.proxy
    return [model.index(r, column).data() for r in range(model.rowCount())]


def test_rows_show_the_worklist_in_rank_order(panel: WorklistPanel) -> None:
    assert _column(panel, RANK) == ["1", "2", "3", "4"]
    assert _column(panel, PRIORITY) == ["● CRITICAL", "● Urgent", "", ""]
    assert _column(panel, AI) == ["AI done", "AI done", "AI unreadable", "No AI"]
    assert _column(panel, MODALITY) == ["CT", "CR", "MR", "CT"]  # SR is not imaging
    assert _column(panel, WAITING) == ["20 min", "5 h 00 min", "5 min", "2 d 2 h"]
    assert _column(panel, FINDINGS) == ["1", "1", "–", "–"]
    assert _column(panel, REASON)[0] == "reason 1.1"
    assert panel.last_refresh.text() == "4 studies · Last refresh 07:08:09"
    assert waiting_text(None) == ""


def test_critical_rows_stand_out(panel: WorklistPanel) -> None:
    critical = panel.proxy.index(0, PRIORITY)
    routine = panel.proxy.index(3, PRIORITY)
    font = critical.data(Qt.ItemDataRole.FontRole)
    assert isinstance(font, QFont) and font.bold()
    assert routine.data(Qt.ItemDataRole.FontRole) is None
    brush = critical.data(Qt.ItemDataRole.ForegroundRole)
    assert isinstance(brush, QBrush) and brush.color() == QColor(theme.CRITICAL)
    background = panel.proxy.index(0, RANK).data(Qt.ItemDataRole.BackgroundRole)
    assert background.color() == QColor(theme.CRITICAL_BG)
    urgent = panel.proxy.index(1, PRIORITY).data(Qt.ItemDataRole.ForegroundRole)
    assert urgent.color() == QColor(theme.URGENT)


def test_sorting_by_header_and_back(panel: WorklistPanel, qtbot: QtBot) -> None:
    header = panel.table.horizontalHeader()
    panel.table.sortByColumn(WAITING, Qt.SortOrder.DescendingOrder)
    assert _column(panel, RANK) == ["4", "2", "1", "3"]  # waited longest first
    panel.table.sortByColumn(PRIORITY, Qt.SortOrder.DescendingOrder)
    assert _column(panel, RANK)[:2] == ["1", "2"]
    x = header.sectionViewportPosition(RANK) + 5
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    assert header.sortIndicatorSection() == RANK
    assert _column(panel, RANK) in (["1", "2", "3", "4"], ["4", "3", "2", "1"])


def test_filters_by_modality_status_and_text(panel: WorklistPanel, qtbot: QtBot) -> None:
    combo = panel.modality_filter
    assert [combo.itemText(i) for i in range(combo.count())] == ["All modalities", "CR", "CT", "MR"]
    combo.setCurrentIndex(combo.findData("CT"))
    assert _column(panel, RANK) == ["1", "4"]
    panel.status_filter.setCurrentIndex(panel.status_filter.findData(AIStatus.NONE.value))
    assert _column(panel, RANK) == ["4"]
    panel.clear_filters()
    qtbot.keyClicks(panel.search, "acc-1.3")
    assert _column(panel, RANK) == ["3"]
    panel.search.clear()
    assert panel.proxy.rowCount() == 4
    # a refresh keeps the filter
    combo.setCurrentIndex(combo.findData("CR"))
    panel.set_worklist(WORKLIST)
    assert panel.modality_filter.currentData() == "CR" and _column(panel, RANK) == ["2"]


def test_selection_and_enter_emit_the_study(panel: WorklistPanel, qtbot: QtBot) -> None:
    view = panel.table
    with qtbot.waitSignal(panel.sig_study_selected) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.visualRect(panel.proxy.index(1, 4)).center())
    assert blocker.args == ["1.2"]
    assert "reason 1.2" in panel.detail.text()
    with qtbot.waitSignal(panel.sig_study_selected) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Down)
    assert blocker.args == ["1.3"]
    with qtbot.waitSignal(panel.sig_study_selected) as blocker:
        qtbot.keyClick(view, Qt.Key.Key_Return)
    assert blocker.args == ["1.3"]
    # a refresh keeps the selection and does not re-open the study
    with qtbot.assertNotEmitted(panel.sig_study_selected):
        panel.set_worklist(WORKLIST)
    assert panel.selected_study_uid == "1.3"
    assert view.currentIndex().row() == 2
    # selecting from code (e.g. --open) clears a filter that hides the study
    panel.modality_filter.setCurrentIndex(panel.modality_filter.findData("CR"))
    with qtbot.waitSignal(panel.sig_study_selected) as blocker:
        assert panel.select_study("1.4")
    assert blocker.args == ["1.4"] and panel.proxy.rowCount() == 4
    assert panel.select_study("9.9.9") is False


def test_refresh_state_and_timer(panel: WorklistPanel, qtbot: QtBot) -> None:
    assert panel.timer.isActive() and panel.timer.interval() == 45_000
    panel.set_refreshing(True)
    assert panel.progress.isVisible() and not panel.refresh_button.isEnabled()
    panel.set_progress(3, 10)
    assert (panel.progress.value(), panel.progress.maximum()) == (3, 10)
    panel.set_refreshing(False)
    assert not panel.progress.isVisible() and panel.refresh_button.isEnabled()
    with qtbot.waitSignal(panel.sig_refresh_requested):
        qtbot.mouseClick(panel.refresh_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.sig_refresh_requested):
        panel.timer.timeout.emit()
    panel.set_refresh_interval(0)
    assert not panel.timer.isActive()
    panel.set_worklist(Worklist((), datetime(2024, 1, 1, 0, 0, 0), ("one problem",), "x"))
    assert panel.empty.isVisible() and "1 problem" in panel.last_refresh.text()
    assert isinstance(panel.proxy.index(0, 0), QModelIndex)
