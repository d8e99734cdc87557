"""Run blocking work off the Qt thread, and show its progress and errors one way.

Every blocking call (archive queries, series loads, decoding) goes through
``AsyncOps.run`` from a coroutine on the qasync loop. The work runs in a thread
pool; progress callbacks from the worker are marshalled back to the loop with
``call_soon_threadsafe``, so nothing touches Qt from a worker thread. A failure
is shown once — a line in the status bar and the error banner — and the caller
gets ``OpFailed``, which means "the user has been told; just stop".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStatusBar, QWidget

from app.errors import CompanionError

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 5.0  # how long closing a window waits for its background jobs

T = TypeVar("T")
Progress = Callable[[int, int], None]


class OpFailed(Exception):
    """The operation failed and the user has already been shown why."""


class ErrorBanner(QFrame):
    """A dismissable one-line error strip (non-modal: it never blocks the reader)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        close = QPushButton("Dismiss", self)
        close.setToolTip("Hide this message (Esc)")
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()


class AsyncOps(QObject):
    """The one helper through which the UI runs blocking calls."""

    sig_busy_changed = Signal(bool, str)  # busy, label of the newest running operation
    sig_error = Signal(str)

    def __init__(
        self,
        status_bar: QStatusBar | None = None,
        banner: ErrorBanner | None = None,
        *,
        max_workers: int = 4,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._status_bar = status_bar
        self._banner = banner
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ui-op")
        self._running: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def busy(self) -> bool:
        return bool(self._running)

    async def run(
        self,
        label: str,
        fn: Callable[[Progress], T],
        *,
        on_progress: Progress | None = None,
        quiet: tuple[type[BaseException], ...] = (),
    ) -> T:
        """Run ``fn(report)`` in the pool; ``report(done, total)`` reaches ``on_progress``
        on the loop thread. Errors in ``quiet`` are re-raised without being shown."""
        loop = asyncio.get_running_loop()

        def report(done: int, total: int) -> None:
            if on_progress is None or loop.is_closed():
                return
            try:
                loop.call_soon_threadsafe(on_progress, done, total)
            except RuntimeError:  # the loop stopped while the worker ran
                pass

        self._begin(label)
        try:
            return await loop.run_in_executor(self._executor, fn, report)
        except quiet:
            raise
        except CompanionError as exc:
            self.show_error(str(exc))
            raise OpFailed(str(exc)) from exc
        except Exception as exc:
            log.exception("%s failed", label)
            self.show_error(f"{label} failed unexpectedly: {type(exc).__name__}: {exc}")
            raise OpFailed(str(exc)) from exc
        finally:
            self._end(label)

    def start(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run a coroutine as a task; errors already shown are dropped, others are logged."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def show_error(self, message: str) -> None:
        """How every error reaches the reader: status bar line + banner."""
        one_line = " ".join(message.split())
        if self._status_bar is not None:
            self._status_bar.showMessage(f"Error: {one_line}", 30_000)
        if self._banner is not None:
            self._banner.show_message(one_line)
        self.sig_error.emit(one_line)

    def shutdown(self, wait_s: float = SHUTDOWN_WAIT_S) -> None:
        """Cancel what is running and give the worker threads ``wait_s`` to finish.

        Callers have already told their jobs to stop (a series load's cancel event);
        a job still running when its window is gone would report into a dead window.
        A blocking call that does not return in time is left to finish on its own.
        """
        for task in list(self._tasks):
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + wait_s
        for thread in list(getattr(self._executor, "_threads", ())):
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- internals -------------------------------------------------------------
    def _begin(self, label: str) -> None:
        self._running.append(label)
        if self._status_bar is not None:
            self._status_bar.showMessage(f"{label}…")
        self.sig_busy_changed.emit(True, label)

    def _end(self, label: str) -> None:
        self._running.remove(label)
        newest = self._running[-1] if self._running else ""
        if self._status_bar is not None and self._status_bar.currentMessage() == f"{label}…":
            if newest:
                self._status_bar.showMessage(f"{newest}…")
            else:
                self._status_bar.clearMessage()
        self.sig_busy_changed.emit(bool(self._running), newest)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, OpFailed):
            log.error("background task failed", exc_info=exc)
            self.show_error(f"Unexpected error: {type(exc).__name__}: {exc}")
