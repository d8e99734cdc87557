"""Start the Qt front end on the qasync loop: ``run_gui`` is what ``app.main`` calls.

With ``screenshot`` the window waits until the worklist is on screen and a
study (``open_study_uid``, else the top of the worklist) is open with its
finding cards and an image, saves the whole window — the VTK GL area included,
grabbed from the window system rather than Qt's widget painter — and exits.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import shiboken6
from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QProgressDialog, QWidget

from app.archive.protocol import ImageArchive
from app.context.single_instance import HandOver
from app.errors import CompanionError
from app.review.services import ReviewServices
from app.settings import ConnectionProfile, Settings
from app.worklist.service import WorklistService
from ui.context_follow import ContextFollower, SubscriberFactory
from ui.gc_policy import collect_in_gui_thread
from ui.main_window import MainWindow
from ui.run_ai import RunAi
from ui.session_guard import SessionGuard
from ui.theme import apply_theme
from ui.workstation import Workstation

log = logging.getLogger(__name__)

T = TypeVar("T")

WINDOW_SIZE = (1500, 900)
SCREENSHOT_TIMEOUT_S = 300.0


class ScreenshotError(CompanionError):
    """The screenshot could not be taken (nothing to show, or it could not be written)."""


def ensure_application() -> QApplication:
    """The process's QApplication (high-DPI friendly if made here), collecting garbage on its thread."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        collect_in_gui_thread(existing)
        return existing
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication(sys.argv[:1])
    app.setApplicationName("AI Review Companion")
    app.setOrganizationName("ai-review-companion")
    app.setDesktopFileName("ai-review-companion")
    collect_in_gui_thread(app)
    return app


def window_size() -> tuple[int, int]:
    """About 1500x900, but never larger than the screen (a screenshot shows only what fits)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return WINDOW_SIZE
    available = screen.availableGeometry()
    return min(WINDOW_SIZE[0], available.width()), min(WINDOW_SIZE[1], available.height())


def prepare_with_progress(title: str, job: Callable[[Callable[[int, int], None]], T]) -> T:
    """Run a slow start-up step (e.g. seeding the demo archive) with a progress dialog.

    ``job(report)`` runs on a worker thread; ``report(done, total)`` only stores
    numbers, which a timer on the Qt thread shows, so no widget is touched from the
    worker. The dialog appears only if the step takes longer than a moment.
    """
    app = ensure_application()
    apply_theme(app)
    state: dict[str, object] = {"done": 0, "total": 0}
    finished = threading.Event()

    def report(done: int, total: int) -> None:
        state["done"], state["total"] = done, total

    def work() -> None:
        try:
            state["result"] = job(report)
        except Exception as exc:  # noqa: BLE001 - handed to the Qt thread and raised there
            state["error"] = exc
        finally:
            finished.set()

    dialog = QProgressDialog(title, "", 0, 0)
    dialog.setWindowTitle("AI Review Companion")
    dialog.setCancelButton(None)
    dialog.setMinimumDuration(400)
    dialog.setMinimumWidth(420)
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)

    def poll() -> None:
        total, done = int(state["total"]), int(state["done"])  # type: ignore[call-overload]
        if total:
            dialog.setMaximum(total)
            dialog.setValue(min(done, total - 1) if not finished.is_set() else total)
            dialog.setLabelText(f"{title}\n{done} of {total}")
        if finished.is_set():
            timer.stop()
            loop.quit()

    timer.timeout.connect(poll)
    threading.Thread(target=work, name="startup", daemon=True).start()
    timer.start()
    loop.exec()
    dialog.close()
    dialog.deleteLater()
    if "error" in state:
        raise state["error"]  # type: ignore[misc]
    return state["result"]  # type: ignore[return-value]


def run_gui(
    archive: ImageArchive,
    worklist: WorklistService,
    settings: Settings,
    *,
    mode_label: str,
    open_study_uid: str | None = None,
    screenshot: Path | None = None,
    review: ReviewServices | None = None,
    review_unavailable: str = "",
    start_message: str = "",
    sidecar: bool = False,
    hand_overs: queue.Queue[HandOver] | None = None,
    follow: SubscriberFactory | None = None,
    profile: ConnectionProfile | None = None,
) -> int:
    """Show the main window until it is closed (or, with ``screenshot``, until it is saved)."""
    app = ensure_application()
    app.setQuitOnLastWindowClosed(False)  # the window's sig_closed ends the loop instead
    apply_theme(app)
    outcome: dict[str, int] = {"code": 0}

    async def main() -> None:
        closed = asyncio.Event()
        window = MainWindow(archive, worklist, settings, mode_label=mode_label, review=review)
        window.sig_closed.connect(closed.set)
        if review is not None:
            review.sender(archive).start()
            if review.notice:
                window.statusBar().showMessage(review.notice, 30_000)
        elif review_unavailable:
            window.banner.show_message(f"Reviews cannot be submitted: {review_unavailable}")
        if start_message:
            window.statusBar().showMessage(start_message, 30_000)
        window.resize(*window_size())
        workstation = Workstation(window, settings, hand_overs=hand_overs)
        if follow is not None:
            workstation.follower = ContextFollower(workstation, follow)
        guard = SessionGuard(workstation, settings, profile)
        workstation.run_ai = RunAi(window, settings)
        if sidecar:
            workstation.show_sidecar()
        else:
            window.show()
        guard.sign_in_at_start()
        shown_once: list[bool] = []

        def log_first_worklist() -> None:
            # installer/measure_start.py times the start-up to this line.
            if not shown_once:
                shown_once.append(True)
                log.info("worklist shown")

        window.sig_worklist_shown.connect(log_first_worklist)
        try:
            if screenshot is None:
                window.ops.start(_first_refresh(window, open_study_uid))
                await closed.wait()
                return
            try:
                await asyncio.wait_for(
                    capture(window, Path(screenshot), open_study_uid, workstation.front),
                    SCREENSHOT_TIMEOUT_S,
                )
            except (CompanionError, TimeoutError) as exc:
                message = str(exc) or f"timed out after {SCREENSHOT_TIMEOUT_S:.0f} s"
                print(f"companion: error: screenshot: {message}", file=sys.stderr)
                outcome["code"] = getattr(exc, "exit_code", 1)
        finally:
            # Delete the window (and its GL child) now, while Qt and the X connection are
            # alive: left to interpreter shutdown, VTK's Qt widget crashes the exit.
            window.close()
            shiboken6.delete(workstation.sidecar)  # a window of its own, not a child
            shiboken6.delete(window)

    import qasync  # only after PySide6 is imported, so qasync binds to it

    try:
        qasync.run(main())
    except CompanionError as exc:
        print(f"companion: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return outcome["code"]


async def _first_refresh(window: MainWindow, open_study_uid: str | None) -> None:
    built = await window.refresh()
    if built is not None and open_study_uid:
        if not window.worklist_panel.select_study(open_study_uid, emit=False):
            window.statusBar().showMessage("The requested study is not in the worklist", 15_000)
        await window.open_study(open_study_uid)


async def capture(
    window: MainWindow, path: Path, open_study_uid: str | None, shown: QWidget | None = None
) -> Path:
    """Refresh, open a study, then save the window on screen (``shown``: the main window
    or the sidecar) as a PNG at ``path``."""
    built = await window.refresh()
    if built is None:
        raise ScreenshotError(f"the worklist could not be built: {window.last_error}")
    uid = open_study_uid or (built.items[0].study.study_uid if built.items else None)
    if uid is not None:
        window.worklist_panel.select_study(uid, emit=False)
        if not await window.open_study(uid) and not window.study_view.has_no_images:
            why = window.last_error or "no image could be shown"
            raise ScreenshotError(f"study {uid} could not be shown: {why}")
    await asyncio.sleep(0.3)  # let the splitter, cards and GL area settle after the last layout
    QApplication.processEvents()
    window.study_view.viewer.render()
    QApplication.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = shown or window
    screen = shown.screen() or QGuiApplication.primaryScreen()
    pixmap = screen.grabWindow(shown.winId())
    if pixmap.isNull() or not pixmap.save(str(path), "PNG"):
        raise ScreenshotError(f"cannot write the screenshot to {path}")
    log.info("screenshot saved to %s", path)
    return path
