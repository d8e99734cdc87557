"""The workstation side: the sidecar, the tray's unread count, notifications, later launches.

Real widgets over a real local archive. The desktop's tray and notification server
are not part of Xvfb: a notification click is the tray icon's ``messageClicked``
signal, emitted here as the desktop would on a click (the one stand-in in this file).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.context.single_instance import HandOver, claim
from app.domain import Urgency, Verdict
from tests.support import dicom_data
from tests.ui.qt_helpers import LoopDriver
from tests.ui.review_data import ReviewData
from ui.workstation import Workstation

pytestmark = pytest.mark.gui

SWITCH = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def test_sidecar_follows_the_study_and_decides_with_keys(
    station: Workstation, station_data: ReviewData, loop: LoopDriver, qtbot: QtBot, tmp_path: Path
) -> None:
    window, sidecar = station.window, station.sidecar
    assert loop.run(window.refresh()) is not None
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # window shortcuts need it active
    QTest.keyClick(window, Qt.Key.Key_S, SWITCH)
    qtbot.waitExposed(sidecar)
    assert station.mode == "sidecar" and not window.isVisible()
    # Docked at the right edge, the screen's full height.
    area = sidecar.screen().availableGeometry()
    qtbot.waitUntil(lambda: sidecar.frameGeometry().right() >= area.right() - 20)
    assert sidecar.height() >= area.height() * 0.8

    worklist = sidecar.worklist
    assert worklist.count() == 3
    assert worklist.item(0).data(Qt.ItemDataRole.UserRole) == station_data.head_study
    assert "CT" in worklist.item(0).text()
    worklist.setCurrentRow(0)
    worklist.itemActivated.emit(worklist.item(0))  # Enter / double-click
    (uid,) = loop.wait_signal(window.sig_study_shown)
    assert uid == station_data.head_study
    qtbot.waitUntil(lambda: sidecar.findings.count() == 1)
    assert "Intracranial hemorrhage" in sidecar.findings.item(0).text()
    assert "Undecided" in sidecar.findings.item(0).text()

    sidecar.findings.setCurrentRow(0)
    sidecar.activateWindow()
    qtbot.waitUntil(sidecar.isActiveWindow, timeout=5000)
    QTest.keyClick(sidecar.findings, Qt.Key.Key_C)
    card = window.findings_panel.card(station_data.head_tracking_uid)
    assert card is not None and card.verdict is Verdict.CONFIRMED
    qtbot.waitUntil(lambda: "Confirmed" in sidecar.findings.item(0).text())

    sidecar.pin.click()
    assert sidecar.on_top and sidecar.isVisible()
    sidecar.pin.click()
    assert not sidecar.on_top
    qtbot.waitExposed(sidecar)  # a changed window flag makes a new native window
    QApplication.processEvents()
    shot = tmp_path / "sidecar.png"
    g = sidecar.frameGeometry()  # from the root window: what the screen shows there
    assert sidecar.screen().grabWindow(0, g.x(), g.y(), g.width(), g.height()).save(str(shot))

    QTest.keyClick(sidecar, Qt.Key.Key_S, SWITCH)
    assert station.mode == "full" and window.isVisible() and not sidecar.isVisible()


def test_unread_critical_count_and_a_notification_that_opens_its_study(
    station: Workstation, station_data: ReviewData, loop: LoopDriver, qtbot: QtBot
) -> None:
    window, tray = station.window, station.tray
    assert loop.run(window.refresh()) is not None
    assert tray.count == 1 and tray.announced == []  # there at start: unread, not announced
    assert "1 unread critical finding" in tray.icon.toolTip()
    assert station.sidecar.unread.text().startswith("⚠ 1 unread")

    # A critical AI result arrives for the plain study; the next refresh announces it.
    plain = station_data.archive.search_instances(station_data.plain_study)[0]
    image = station_data.archive.retrieve_instance(plain.study_uid, plain.series_uid, plain.sop_uid)
    late = dicom_data.sr("late", image, prefix="side", urgency=Urgency.CRITICAL)
    station_data.archive.store([late])
    assert loop.run(window.refresh()) is not None
    assert [a.study_uid for a in tray.announced] == [station_data.plain_study]
    assert tray.count == 2
    assert not tray.icon.icon().isNull()

    tray.icon.messageClicked.emit()  # the reader clicks the notification
    (uid,) = loop.wait_signal(window.sig_study_shown)
    assert uid == station_data.plain_study
    assert tray.count == 1
    assert loop.run(window.refresh()) is not None
    assert tray.announced[-1].study_uid == station_data.plain_study and len(tray.announced) == 1


def test_a_later_launch_is_followed_by_the_running_window(
    station: Workstation, station_data: ReviewData, loop: LoopDriver, tmp_path: Path
) -> None:
    window = station.window
    assert loop.run(window.refresh()) is not None
    running = claim(HandOver(), station._hand_overs.put, tmp_path)  # type: ignore[union-attr]
    assert running is not None
    try:
        link = "companion://open?accession=ACC-HEAD"
        assert claim(HandOver(link=link), lambda r: None, tmp_path) is None
        (uid,) = loop.wait_signal(window.sig_study_shown)
        assert uid == station_data.head_study

        assert claim(HandOver(study_uid=station_data.chest_study, sidecar=True), lambda r: None,
                     tmp_path) is None
        (uid,) = loop.wait_signal(window.sig_study_shown)
        assert uid == station_data.chest_study and station.mode == "sidecar"

        assert claim(HandOver(link="companion://open?study=1.02"), lambda r: None,
                     tmp_path) is None
        loop.run(_wait_for(lambda: "could not be followed" in window.statusBar().currentMessage()))
    finally:
        running.close()


async def _wait_for(condition: object, timeout: float = 10.0) -> None:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
