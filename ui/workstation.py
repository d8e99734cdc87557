"""The companion on a reading workstation: sidecar, tray, critical alerts, later launches.

Wires the main window's models to the sidecar strip and the tray icon, switches
between the full window and the sidecar with one key, announces critical AI
findings that arrive with a worklist refresh, and follows the requests that later
launches hand over (a ``companion://`` click while the app runs).
"""

from __future__ import annotations

import logging
import queue

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QWidget

from app.context.launch import (
    LaunchError,
    LaunchRequest,
    check_study_uid,
    parse_launch_url,
    study_for_request,
)
from app.context.single_instance import HandOver
from app.domain import Verdict
from app.settings import Settings
from app.worklist.alerts import CriticalAlerts
from ui.actions import window_action
from ui.finding_card import certainty_text, measurement_text
from ui.main_window import MainWindow
from ui.sidecar import SWITCH_KEY, FindingRow, SidecarWindow
from ui.tray import CriticalTray

log = logging.getLogger(__name__)
HAND_OVER_POLL_MS = 200


class Workstation(QObject):
    """Owns the sidecar, the tray and the alert state for one main window."""

    def __init__(
        self,
        window: MainWindow,
        settings: Settings,
        *,
        hand_overs: queue.Queue[HandOver] | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.mode = "full"
        self.locked = False  # set by the session guard: no window with patient data shows
        self.alerts = CriticalAlerts()
        icon = window.windowIcon() if not window.windowIcon().isNull() else QIcon()
        self.sidecar = SidecarWindow(icon)
        self.tray = CriticalTray(icon, sound=settings.alert_sound, menu_parent=window, parent=self)
        self._docked = False
        self.follower: QObject | None = None  # the FHIRcast follower, when one runs
        self.run_ai: QObject | None = None  # local inference ("Run AI"), when wired

        window.sig_worklist_shown.connect(self._on_worklist)
        window.worklist_panel.sig_study_selected.connect(self._mark_read)
        window.sig_study_shown.connect(self._mark_read)
        window.findings_panel.sig_changed.connect(self._update_findings)
        window.sig_closed.connect(self._on_window_closed)
        self.switch_action = window_action(window, "Sidecar", SWITCH_KEY, self.show_sidecar)

        self.sidecar.sig_full_window.connect(self.show_full)
        self.sidecar.sig_open_study.connect(self.open_study)
        self.sidecar.sig_select_finding.connect(self._select_finding)
        self.sidecar.sig_action.connect(self._act)
        self.sidecar.sig_closed.connect(self._on_sidecar_closed)
        self.tray.sig_open_study.connect(self.open_study)
        self.tray.sig_show_full.connect(self.show_full)
        self.tray.sig_show_sidecar.connect(self.show_sidecar)
        self.tray.sig_quit.connect(window.close)
        self.tray.show()

        self._hand_overs = hand_overs
        self._timer = QTimer(self)
        if hand_overs is not None:
            self._timer.timeout.connect(self._take_hand_overs)
            self._timer.start(HAND_OVER_POLL_MS)

    # -- modes -------------------------------------------------------------------------
    def show_sidecar(self) -> None:
        if self.locked:
            self.mode = "sidecar"  # shown so once unlocked
            return
        self.mode = "sidecar"
        self.window.review.set_dialog_parent(self.sidecar)
        if not self._docked:
            self._docked = True
            self.sidecar.show()
            self.sidecar.dock(self.sidecar.edge)
        self.sidecar.show()
        self.sidecar.raise_()
        self.sidecar.activateWindow()
        self.window.hide()
        self._update_findings()

    def show_full(self) -> None:
        if self.locked:
            self.mode = "full"
            return
        self.mode = "full"
        self.locked = False  # set by the session guard: no window with patient data shows
        self.window.review.set_dialog_parent(self.window)
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()
        self.sidecar.hide()

    @property
    def front(self) -> QWidget:
        return self.sidecar if self.mode == "sidecar" else self.window

    # -- studies -----------------------------------------------------------------------
    def open_study(self, study_uid: str) -> None:
        """Open a study (from the sidecar's worklist, a notification or a later launch)."""
        self._mark_read(study_uid)
        if not self.window.worklist_panel.select_study(study_uid, emit=False):
            self.window.statusBar().showMessage("The requested study is not in the worklist", 15_000)
        self.window.ops.start(self.window.open_study(study_uid))

    def _mark_read(self, study_uid: str) -> None:
        self.alerts.mark_read(study_uid)
        self._show_unread()

    def _on_worklist(self) -> None:
        worklist = self.window.worklist
        if worklist is None:
            return
        new = self.alerts.update(worklist)
        open_uid = self.window.study_view.study_uid
        if open_uid is not None:
            self.alerts.mark_read(open_uid)  # on screen now: not unread
        self.tray.notify(new, fallback=self.front)
        self._show_unread()
        self.sidecar.set_worklist(worklist.items)

    def _show_unread(self) -> None:
        count = len(self.alerts.unread())
        self.tray.set_unread(count)
        self.sidecar.set_unread(count)

    def _update_findings(self) -> None:
        if not self.sidecar.isVisible():
            return
        panel = self.window.findings_panel
        rows = []
        for card in panel.cards:
            f = card.finding
            site = f.site.meaning if f.site else ""
            measured = [measurement_text(m) for m in f.measurements[:2]]
            detail = " · ".join(p for p in (site, certainty_text(f.certainty), *measured) if p)
            verdict = card.verdict or Verdict.UNDECIDED
            rows.append(FindingRow(f.tracking_uid, f.finding.meaning, f.urgency, detail, verdict))
        title = self.window.study_view.title.text() if self.window.study_view.study_uid else ""
        self.sidecar.set_study(title, rows, panel.selected)

    def _select_finding(self, tracking_uid: str) -> None:
        self.window.findings_panel.select(tracking_uid)
        self.window.study_view.show_finding(tracking_uid)

    def _act(self, name: str) -> None:
        self.window.review.act(name)

    # -- later launches ----------------------------------------------------------------
    def _take_hand_overs(self) -> None:
        assert self._hand_overs is not None
        while True:
            try:
                request = self._hand_overs.get_nowait()
            except queue.Empty:
                return
            self.follow(request)

    def follow(self, request: HandOver) -> None:
        """Come to the front (in the sidecar if asked) and open the study the request names."""
        if request.sidecar:
            self.show_sidecar()
        elif not self.locked:
            self.front.show()
            self.front.raise_()
            self.front.activateWindow()
        try:
            if request.link:
                launch = parse_launch_url(request.link)
                study_uid, accession = launch.study_uid, launch.accession
            else:
                study_uid = check_study_uid(request.study_uid) if request.study_uid else None
                accession = request.accession
        except LaunchError as exc:
            self.window.statusBar().showMessage(f"The link could not be followed: {exc}", 30_000)
            return
        if study_uid:
            self.open_study(study_uid)
        elif accession:
            self.open_accession(accession)

    def open_accession(self, accession: str) -> None:
        """Look the accession number up in the archive, then open its study."""
        self.window.ops.start(self._open_accession(accession))

    async def _open_accession(self, accession: str) -> None:
        uid, message = await self.window.ops.run(
            "Finding the study",
            lambda _r: study_for_request(LaunchRequest(accession=accession), self.window.archive),
        )
        if uid:
            self.open_study(uid)
        else:
            self.window.statusBar().showMessage(message, 30_000)

    # -- closing -----------------------------------------------------------------------
    def _on_sidecar_closed(self) -> None:
        if self.mode == "sidecar":  # the sidecar was the app's window: closing it quits
            self.window.close()

    def _on_window_closed(self) -> None:
        self._timer.stop()
        self.tray.hide()
        self.sidecar.hide()
