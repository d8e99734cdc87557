"""The workstation side: the sidecar, the tray's unread count, notifications, later launches.

Real widgets over a real local archive. The desktop's tray and notification server
are not part of Xvfb: a notification click is the tray icon's ``messageClicked``
signal, emitted here as the desktop would on a click (the one stand-in in this file).
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.context.single_instance import HandOver, claim
from app.domain import Urgency, Verdict
from app.review.services import ReviewServices, open_review_services
from app.settings import Settings
from app.worklist.service import WorklistService
from tests.support import dicom_data
from tests.ui.qt_helpers import LoopDriver, dispose
from tests.ui.review_data import ReviewData, build_review_archive
from ui.app import window_size
from ui.main_window import MainWindow
from ui.theme import apply_theme
from ui.workstation import Workstation

pytestmark = pytest.mark.gui

SETTINGS = Settings(reader_id="dr.side", reader_name="SIDE^CAR")
SWITCH = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@pytest.fixture()
def data(tmp_path: Path) -> ReviewData:
    return build_review_archive(tmp_path / "archive")  # this test adds SRs: its own archive


@pytest.fixture()
def services(memory_keyring: object) -> Iterator[ReviewServices]:
    review = open_review_services(SETTINGS, destination="demo", demo=True)
    yield review
    review.close()


@pytest.fixture()
def station(
    data: ReviewData, services: ReviewServices, qtbot: QtBot, loop: LoopDriver
) -> Iterator[Workstation]:
    apply_theme(QApplication.instance())  # type: ignore[arg-type]
    service = WorklistService(data.archive, SETTINGS.weights)
    window = MainWindow(data.archive, service, SETTINGS, mode_label="Test", review=services)
    window.resize(*window_size())
    hand_overs: queue.Queue[HandOver] = queue.Queue()
    ws = Workstation(window, SETTINGS, hand_overs=hand_overs)
    window.show()
    qtbot.waitExposed(window)
    yield ws
    sidecar = ws.sidecar
    dispose(window)  # closing it hides the sidecar too
    dispose(sidecar)


def test_sidecar_follows_the_study_and_decides_with_keys(
    station: Workstation, data: ReviewData, loop: LoopDriver, qtbot: QtBot, tmp_path: Path
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
    assert worklist.item(0).data(Qt.ItemDataRole.UserRole) == data.head_study
    assert "CT" in worklist.item(0).text()
    worklist.setCurrentRow(0)
    worklist.itemActivated.emit(worklist.item(0))  # Enter / double-click
    (uid,) = loop.wait_signal(window.sig_study_shown)
    assert uid == data.head_study
    qtbot.waitUntil(lambda: sidecar.findings.count() == 1)
    assert "Intracranial hemorrhage" in sidecar.findings.item(0).text()
    assert "Undecided" in sidecar.findings.item(0).text()

    sidecar.findings.setCurrentRow(0)
    sidecar.activateWindow()
    qtbot.waitUntil(sidecar.isActiveWindow, timeout=5000)
    QTest.keyClick(sidecar.findings, Qt.Key.Key_C)
    card = window.findings_panel.card(data.head_tracking_uid)
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
    station: Workstation, data: ReviewData, loop: LoopDriver, qtbot: QtBot
) -> None:
    window, tray = station.window, station.tray
    assert loop.run(window.refresh()) is not None
    assert tray.count == 1 and tray.announced == []  # there at start: unread, not announced
    assert "1 unread critical finding" in tray.icon.toolTip()
    assert station.sidecar.unread.text().startswith("⚠ 1 unread")

    # A critical AI result arrives for the plain study; the next refresh announces it.
    plain = data.archive.search_instances(data.plain_study)[0]
    image = data.archive.retrieve_instance(plain.study_uid, plain.series_uid, plain.sop_uid)
    late = dicom_data.sr("late", image, prefix="side", urgency=Urgency.CRITICAL)
    data.archive.store([late])
    assert loop.run(window.refresh()) is not None
    assert [a.study_uid for a in tray.announced] == [data.plain_study]
    assert tray.count == 2
    assert not tray.icon.icon().isNull()

    tray.icon.messageClicked.emit()  # the reader clicks the notification
    (uid,) = loop.wait_signal(window.sig_study_shown)
    assert uid == data.plain_study
    assert tray.count == 1
    assert loop.run(window.refresh()) is not None
    assert tray.announced[-1].study_uid == data.plain_study and len(tray.announced) == 1


def test_a_later_launch_is_followed_by_the_running_window(
    station: Workstation, data: ReviewData, loop: LoopDriver, tmp_path: Path
) -> None:
    window = station.window
    assert loop.run(window.refresh()) is not None
    running = claim(HandOver(), station._hand_overs.put, tmp_path)  # type: ignore[union-attr]
    assert running is not None
    try:
        link = "companion://open?accession=ACC-HEAD"
        assert claim(HandOver(link=link), lambda r: None, tmp_path) is None
        (uid,) = loop.wait_signal(window.sig_study_shown)
        assert uid == data.head_study

        assert claim(HandOver(study_uid=data.chest_study, sidecar=True), lambda r: None,
                     tmp_path) is None
        (uid,) = loop.wait_signal(window.sig_study_shown)
        assert uid == data.chest_study and station.mode == "sidecar"

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
