"""An observer (the connection profile's role) sees the findings but cannot decide."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.domain import Verdict
from app.review.services import open_review_services
from app.worklist.service import WorklistService
from tests.ui.conftest import STATION_SETTINGS
from tests.ui.qt_helpers import LoopDriver, dispose
from tests.ui.review_data import ReviewData
from ui.app import window_size
from ui.main_window import MainWindow
from ui.theme import apply_theme

pytestmark = pytest.mark.gui


def test_an_observer_sees_the_cards_but_cannot_decide(
    station_data: ReviewData, memory_keyring: object, qtbot: QtBot, loop: LoopDriver
) -> None:
    services = open_review_services(STATION_SETTINGS, destination="demo", demo=True, observer=True)
    apply_theme(QApplication.instance())  # type: ignore[arg-type]
    service = WorklistService(station_data.archive, STATION_SETTINGS.weights)
    window = MainWindow(station_data.archive, service, STATION_SETTINGS, mode_label="Test",
                        review=services)
    try:
        window.resize(*window_size())
        window.show()
        qtbot.waitExposed(window)
        assert loop.run(window.refresh()) is not None
        assert loop.run(window.open_study(station_data.head_study))
        card = window.findings_panel.card(station_data.head_tracking_uid)
        assert card is not None
        assert not any(b.isEnabled() for b in card.buttons.values())
        assert "Observer" in window.findings_panel.progress_label.text()
        assert not window.findings_panel.submit_button.isEnabled()
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
        qtbot.keyClick(window, Qt.Key.Key_C)  # the key is refused too, with the reason
        assert card.verdict in (None, Verdict.UNDECIDED)
        qtbot.waitUntil(lambda: "observer" in window.last_error.lower(), timeout=5000)
    finally:
        dispose(window)
        services.close()
