"""Helpers for Qt tests: delete widgets before Xvfb stops; drive a qasync loop."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import PySide6  # noqa: F401  (before qasync, so qasync binds to PySide6)
import qasync
import shiboken6
from PySide6.QtCore import QEvent, SignalInstance
from PySide6.QtWidgets import QApplication, QWidget

T = TypeVar("T")


def dispose(widget: QWidget) -> None:
    """Close and delete a top-level widget now.

    pytest keeps fixture values alive until the session ends; a native (GL)
    window destroyed after pytest-xvfb has stopped the X server makes Xlib
    exit the process with status 1, failing a green run.
    """
    if shiboken6.isValid(widget):
        widget.close()
        shiboken6.delete(widget)
    QApplication.processEvents()
    # Windows closed with deleteLater() (a lock window, a dialog) go now, not at exit.
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()  # this test's cycles go now, on this (the GUI) thread: ui/gc_policy.py


class LoopDriver:
    """Run coroutines, or wait for signals, on a qasync loop from synchronous tests."""

    def __init__(self, loop: qasync.QEventLoop) -> None:
        self.loop = loop

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def wait_signal(self, signal: SignalInstance, timeout: float = 60.0) -> tuple[Any, ...]:
        future: asyncio.Future[tuple[Any, ...]] = self.loop.create_future()

        def done(*args: Any) -> None:
            if not future.done():
                future.set_result(args)

        signal.connect(done)
        try:
            return self.run(future, timeout)
        finally:
            signal.disconnect(done)

    def until(self, condition: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait for ``condition`` with the qasync loop running, as the app's loop does."""

        async def poll() -> None:
            deadline = asyncio.get_running_loop().time() + timeout
            while not condition():
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError("condition not met in time")
                await asyncio.sleep(0.01)

        self.run(poll(), timeout + 5)
