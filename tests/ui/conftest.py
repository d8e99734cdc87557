"""UI test fixtures: a qasync loop over pytest-qt's QApplication, and the review archive.

pytest-xvfb starts Xvfb for the session: the VTK widget needs a real X server
(Qt's offscreen platform cannot host it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import PySide6  # noqa: F401  (before qasync, so qasync binds to PySide6)
import pytest
import qasync
from PySide6.QtWidgets import QApplication

import ui  # noqa: F401  (applies the PySide6 signal fixes before any test emits)
from tests.ui.qt_helpers import LoopDriver
from tests.ui.review_data import ReviewData, build_review_archive


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

