"""The one async-op helper: work off the Qt thread, progress on it, errors shown one way."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QStatusBar

from app.errors import ArchiveUnreachable
from tests.ui.qt_helpers import LoopDriver, dispose
from ui.async_ops import AsyncOps, ErrorBanner, OpFailed

pytestmark = pytest.mark.gui


@pytest.fixture()
def ops(loop: LoopDriver) -> Iterator[tuple[AsyncOps, QStatusBar, ErrorBanner]]:
    bar, banner = QStatusBar(), ErrorBanner()
    helper = AsyncOps(bar, banner)
    yield helper, bar, banner
    helper.shutdown()
    dispose(bar)
    dispose(banner)


def test_runs_in_a_worker_and_reports_progress_on_the_loop_thread(
    ops: tuple[AsyncOps, QStatusBar, ErrorBanner], loop: LoopDriver
) -> None:
    helper, _, _ = ops
    main = threading.current_thread()
    seen: list[tuple[int, int, bool]] = []
    busy: list[bool] = []
    helper.sig_busy_changed.connect(lambda on, _label: busy.append(on))

    def work(report):  # type: ignore[no-untyped-def]
        assert threading.current_thread() is not main
        for n in range(3):
            report(n + 1, 3)
        return "built"

    result = loop.run(
        helper.run("Building", work, on_progress=lambda d, t: seen.append(
            (d, t, threading.current_thread() is main)))
    )
    loop.run(_settle())
    assert result == "built"
    assert seen == [(1, 3, True), (2, 3, True), (3, 3, True)]
    assert busy == [True, False] and not helper.busy


async def _settle() -> None:
    import asyncio

    await asyncio.sleep(0.05)


def test_companion_errors_are_shown_once_and_raise_op_failed(
    ops: tuple[AsyncOps, QStatusBar, ErrorBanner], loop: LoopDriver
) -> None:
    helper, bar, banner = ops
    errors: list[str] = []
    helper.sig_error.connect(errors.append)

    def fail(_report):  # type: ignore[no-untyped-def]
        raise ArchiveUnreachable("Cannot reach the archive at http://x (search): refused")

    with pytest.raises(OpFailed):
        loop.run(helper.run("Refreshing worklist", fail))
    assert errors == ["Cannot reach the archive at http://x (search): refused"]
    assert bar.currentMessage().startswith("Error: Cannot reach the archive")
    assert not banner.isHidden() and banner.label.text() == errors[0]

    def crash(_report):  # type: ignore[no-untyped-def]
        raise ValueError("boom")

    with pytest.raises(OpFailed):
        loop.run(helper.run("Loading images", crash))
    assert errors[-1] == "Loading images failed unexpectedly: ValueError: boom"
