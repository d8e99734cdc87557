"""UI test fixtures: a qasync loop over pytest-qt's QApplication, and the review archive.

pytest-xvfb starts Xvfb for the session: the VTK widget needs a real X server
(Qt's offscreen platform cannot host it).
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator
from pathlib import Path

import PySide6  # noqa: F401  (before qasync, so qasync binds to PySide6)
import pytest
import qasync
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

import ui  # noqa: F401  (applies the PySide6 signal fixes before any test emits)
from app.context.single_instance import HandOver
from app.review.services import ReviewServices, open_review_services
from app.settings import Settings
from app.worklist.service import WorklistService
from tests.ui.qt_helpers import LoopDriver, dispose
from tests.ui.review_data import ReviewData, build_review_archive
from ui.app import window_size
from ui.main_window import MainWindow
from ui.theme import apply_theme
from ui.workstation import Workstation
from viewers.slice_viewer import SliceViewer


@pytest.fixture()
def loop(qapp: QApplication) -> Iterator[LoopDriver]:
    event_loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(event_loop)
    try:
        yield LoopDriver(event_loop)
    finally:
        pending = [t for t in asyncio.all_tasks(event_loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            event_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        asyncio.set_event_loop(None)
        event_loop.close()


@pytest.fixture(scope="session")
def review_data(tmp_path_factory: pytest.TempPathFactory) -> ReviewData:
    return build_review_archive(Path(tmp_path_factory.mktemp("review")) / "archive")


# -- the workstation (sidecar, tray, later launches) over its own archive ---------
STATION_SETTINGS = Settings(reader_id="dr.side", reader_name="SIDE^CAR")


@pytest.fixture()
def station_data(tmp_path: Path) -> ReviewData:
    return build_review_archive(tmp_path / "archive")  # this test adds SRs: its own archive


@pytest.fixture()
def station_services(memory_keyring: object) -> Iterator[ReviewServices]:
    review = open_review_services(STATION_SETTINGS, destination="demo", demo=True)
    yield review
    review.close()


@pytest.fixture()
def station(
    station_data: ReviewData, station_services: ReviewServices, qtbot: QtBot, loop: LoopDriver
) -> Iterator[Workstation]:
    apply_theme(QApplication.instance())  # type: ignore[arg-type]
    service = WorklistService(station_data.archive, STATION_SETTINGS.weights)
    window = MainWindow(
        station_data.archive, service, STATION_SETTINGS, mode_label="Test", review=station_services
    )
    window.resize(*window_size())
    hand_overs: queue.Queue[HandOver] = queue.Queue()
    ws = Workstation(window, STATION_SETTINGS, hand_overs=hand_overs)
    window.show()
    qtbot.waitExposed(window)
    yield ws
    sidecar = ws.sidecar
    dispose(window)  # closing it hides the sidecar too
    dispose(sidecar)


@pytest.fixture()
def viewer(qtbot: QtBot) -> Iterator[SliceViewer]:
    """A 400x400 slice viewer on screen (test modules may define their own)."""
    widget = SliceViewer()
    widget.resize(400, 400)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    dispose(widget)
