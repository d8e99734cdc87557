"""The main window: worklist | study images | AI findings, and the status bar.

The window wires the panels to each other and to the services; the panels do
no I/O. Blocking calls go through ``AsyncOps`` (the one place errors are shown).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QLayout, QMainWindow, QSplitter, QVBoxLayout, QWidget

from app.archive.protocol import ImageArchive
from app.archive.series_cache import SeriesCache
from app.archive.series_loader import SeriesLoader
from app.domain import AIResult, AIStatus, StudyRef
from app.errors import ArchiveError
from app.results.local_store import read_local_results
from app.review.services import ReviewServices
from app.settings import Settings
from app.worklist.service import Worklist, WorklistService
from ui.actions import window_action
from ui.async_ops import AsyncOps, ErrorBanner, OpFailed
from ui.findings_panel import FindingsPanel
from ui.outbox_view import OutboxIndicator
from ui.review_controller import ReviewController
from ui.review_keys import KEYS, ShortcutsSheet
from ui.study_view import StudyView
from ui.worklist_panel import WorklistPanel

log = logging.getLogger(__name__)
ICON = Path(__file__).resolve().parents[1] / "resources" / "icons" / "app.svg"


def short_description(text: str, limit: int = 64) -> str:
    """Keep the end of a long archive description (the folder or host that tells it apart)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


class MainWindow(QMainWindow):
    """Worklist on the left, images in the centre, finding cards on the right."""

    sig_worklist_shown = Signal()
    sig_study_shown = Signal(str)  # study UID: its finding cards and an image are on screen
    sig_closed = Signal()

    def __init__(
        self,
        archive: ImageArchive,
        worklist: WorklistService,
        settings: Settings,
        *,
        mode_label: str,
        review: ReviewServices | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.archive = archive
        self.review_services = review
        self._local_results: dict[str, dict[str, tuple[AIResult, Dataset]]] = {}
        self.service = worklist
        self.settings = settings
        self.mode_label = mode_label
        self.setWindowTitle(f"AI Review Companion — {mode_label}")
        if ICON.exists():
            self.setWindowIcon(QIcon(str(ICON)))

        self.banner = ErrorBanner(self)
        self.ops = AsyncOps(self.statusBar(), self.banner, parent=self)
        self.last_error = ""
        self.ops.sig_error.connect(self._remember_error)

        self.worklist_panel = WorklistPanel(settings.refresh_seconds, self)
        self.study_view = StudyView(
            archive,
            self.ops,
            self,
            loader=SeriesLoader(
                archive,
                SeriesCache(settings.series_cache_mb),
                max_requests=settings.series_max_requests,
            ),
        )
        self.findings_panel = FindingsPanel(self)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.worklist_panel)
        splitter.addWidget(self.study_view)
        splitter.addWidget(self.findings_panel)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([600, 600, 300])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)
        # Content changes (a long label, a loading bar) must never grow the window past
        # the screen: the window keeps its size and its panels share what there is.
        self.layout().setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.setMinimumSize(760, 520)

        self.review = ReviewController(
            review, self.findings_panel, self.study_view, self.ops, dialog_parent=self,
            parent=self,
        )
        self.review.sig_message.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        self.study_view.sig_slide_viewer.connect(
            lambda viewer: self.review.connect_editor(viewer.editor if viewer is not None else None)
        )
        self.review.sig_submitted.connect(self._on_review_submitted)
        self.outbox_indicator: OutboxIndicator | None = None
        if review is not None:
            self.outbox_indicator = OutboxIndicator(review.outbox, self)
            self.statusBar().addPermanentWidget(self.outbox_indicator)
        self.connection_label = QLabel(
            f"{mode_label} · {short_description(archive.description)}", self
        )
        self.connection_label.setToolTip(f"Connected to {archive.description}")
        self.statusBar().addPermanentWidget(self.connection_label)

        self._add_action("Refresh worklist", QKeySequence(Qt.Key.Key_F5), self.request_refresh)
        self._add_action("Quit", QKeySequence("Ctrl+Q"), self.close)
        self._add_action("Filter worklist", QKeySequence("Ctrl+F"), self.worklist_panel.focus_filter)
        self._add_action("Cancel / dismiss", QKeySequence(Qt.Key.Key_Escape), self._escape)
        self.review_actions: dict[str, QAction] = {}
        for k in KEYS:
            if k.name == "shortcuts":
                slot: object = self.show_shortcuts
            elif k.name == "outbox":
                slot = self._open_outbox
            elif k.name == "overlays":
                slot = lambda _checked=False: self.study_view.toggle_overlays()
            else:
                slot = lambda _checked=False, n=k.name: self.review.act(n)
            action = self._add_action(k.text, k.sequences[0], slot)
            action.setShortcuts(k.sequences)
            self.review_actions[k.name] = action

        self.worklist_panel.sig_refresh_requested.connect(self.request_refresh)
        self.worklist_panel.sig_study_selected.connect(self._on_study_selected)
        self.findings_panel.sig_finding_activated.connect(self.study_view.show_finding)
        self.findings_panel.sig_finding_visibility.connect(self.study_view.set_finding_visible)
        self.findings_panel.sig_finding_hovered.connect(self.study_view.hover_finding)
        self.study_view.sig_finding_shown.connect(self.findings_panel.select)

        self.worklist: Worklist | None = None
        self._refreshing = False
        self._open_generation = 0

    # -- worklist ----------------------------------------------------------------------
    def request_refresh(self) -> None:
        if not self._refreshing:
            self.ops.start(self.refresh())

    async def refresh(self) -> Worklist | None:
        """Rebuild the worklist in the background; None when it failed (the error is shown)."""
        if self._refreshing:
            return None
        self._refreshing = True
        self.worklist_panel.set_refreshing(True)
        try:
            built = await self.ops.run(
                "Refreshing worklist",
                lambda report: self.service.build(progress=report),
                on_progress=self.worklist_panel.set_progress,
            )
        except OpFailed:
            self.worklist_panel.set_refresh_failed(datetime.now())
            return None
        finally:
            self._refreshing = False
            self.worklist_panel.set_refreshing(False)
        self.worklist = built
        self.review.audit_query(len(built.items), len(built.errors))
        self.worklist_panel.set_worklist(built)
        if built.errors:
            self.statusBar().showMessage(
                f"Worklist built with {len(built.errors)} problem(s): {built.errors[0]}", 30_000
            )
        self._update_open_study(built)
        self.sig_worklist_shown.emit()
        return built

    # -- study -------------------------------------------------------------------------
    def _on_study_selected(self, study_uid: str) -> None:
        self.ops.start(self.open_study(study_uid))

    async def open_study(self, study_uid: str) -> bool:
        """Show a study's finding cards and images; True once an image is on screen."""
        self._open_generation += 1
        generation = self._open_generation
        item = self.worklist.item(study_uid) if self.worklist else None
        study = item.study if item else StudyRef(study_uid)
        # Who the images belong to is on screen (never in logs): a reader must be able to
        # check the patient before acting on a finding.
        patient = _patient_label(study.patient_name, study.patient_id)
        parts = (patient, study.description, study.accession)
        title = " · ".join(p for p in parts if p) or "Study"
        self.review.close()
        self.findings_panel.set_loading()
        results: list[AIResult] = []
        ai_srs: dict[str, Dataset] = {}
        problems = list(item.problems) if item else []
        try:
            results, ai_srs = await self.ops.run(
                "Loading AI findings", lambda _r: self._review_material(study_uid)
            )
            status = item.ai_status if item else (
                AIStatus.DONE if results else AIStatus.NONE
            )
        except OpFailed as exc:
            status, problems = AIStatus.PENDING, [str(exc)]
        if generation != self._open_generation:
            return False
        self.review.open(study, results, ai_srs, status, problems)
        findings = self.review.current_findings() or [
            f for r in results if r.readable for f in r.findings
        ]
        shown = await self.study_view.open_study(study_uid, title, findings)
        if shown and generation == self._open_generation:
            self.sig_study_shown.emit(study_uid)
            return True
        return False

    def close_study(self, message: str = "No study open") -> None:
        """Close the open study (its review draft is kept) and say why."""
        self._open_generation += 1
        self.review.close()
        self.findings_panel.clear(message)
        self.study_view.close_study(message)

    def add_local_result(self, result: AIResult, sr: Dataset) -> None:
        """An AI result made on this machine (local inference): shown with the archive's
        the next time its study opens, and reviewable like them."""
        self._local_results.setdefault(result.study_instance_uid, {})[
            result.sop_instance_uid
        ] = (result, sr)

    def _review_material(self, study_uid: str) -> tuple[list[AIResult], dict[str, Dataset]]:
        """Blocking: the study's current AI results, and the SR datasets of the editable
        ones (kept so that a submit works even when the archive is down by then)."""
        results = self.service.results_for(study_uid)
        datasets: dict[str, Dataset] = {}
        stored = {r.sop_instance_uid for r in results}
        local = self._local_results.setdefault(study_uid, {})
        for result, sr in read_local_results(study_uid):  # kept here in an earlier session
            local.setdefault(result.sop_instance_uid, (result, sr))
        for uid, (result, sr) in local.items():
            if uid not in stored:  # once the archive has it, the archive's copy is shown
                results.append(result)
                datasets[uid] = sr
        for r in results:
            if not r.editable or self.review_services is None or r.sop_instance_uid in datasets:
                continue
            try:
                datasets[r.sop_instance_uid] = self.archive.retrieve_instance(
                    r.study_instance_uid, r.series_instance_uid, r.sop_instance_uid
                )
            except ArchiveError:  # the cards still show; a submit says to reopen the study
                log.warning("an AI result SR could not be retrieved for the review")
        return results, datasets

    def _update_open_study(self, built: Worklist) -> None:
        """After a refresh, show new findings of the open study without reloading its images."""
        uid = self.study_view.study_uid
        item = built.item(uid) if uid else None
        if item is None:
            return
        shown = {c.finding.tracking_uid for c in self.findings_panel.cards}
        if self.review.session is not None or self.findings_panel.review is not None:
            return  # never pull the cards from under a review; reopening shows new results
        if {f.tracking_uid for f in item.findings} != shown:
            self.findings_panel.set_findings(item.findings, item.ai_status, item.problems)
            self.study_view.set_findings(item.findings)

    # -- window ------------------------------------------------------------------------
    def _add_action(self, text: str, shortcut: QKeySequence, slot: object) -> QAction:
        return window_action(self, text, shortcut, slot)  # type: ignore[arg-type]

    def _escape(self) -> None:
        """Esc cancels a region edit in progress, else dismisses the message banner."""
        slide = self.study_view.slide.viewer
        editors = [self.study_view.viewer.editor] + ([slide.editor] if slide is not None else [])
        active = [editor for editor in editors if editor.active]
        for editor in active:
            editor.cancel()
        if not active:
            self.banner.hide()

    def show_shortcuts(self) -> None:
        ShortcutsSheet(self).exec()

    def _open_outbox(self) -> None:
        if self.outbox_indicator is not None:
            self.outbox_indicator.open_dialog()

    def _on_review_submitted(self, study_uid: str) -> None:
        self.worklist_panel.mark_submitted(study_uid)
        if self.outbox_indicator is not None:
            self.outbox_indicator.poll()

    def _remember_error(self, message: str) -> None:
        self.last_error = message

    def closeEvent(self, event: QCloseEvent) -> None:
        self.worklist_panel.timer.stop()
        if self.outbox_indicator is not None:
            self.outbox_indicator.timer.stop()
        self.review.close()
        self.study_view.close_study()
        self.ops.shutdown()
        super().closeEvent(event)
        self.sig_closed.emit()


def _patient_label(name: str, patient_id: str) -> str:
    """DICOM PN "FAMILY^GIVEN^MIDDLE" shown as "FAMILY, GIVEN MIDDLE (ID)"."""
    family, _, rest = name.partition("^")
    shown = family + (", " + " ".join(p for p in rest.split("^") if p) if rest.strip("^") else "")
    return f"{shown} ({patient_id})" if patient_id else shown
