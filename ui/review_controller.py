"""Glue between the reader's keys/clicks, the ``ReviewSession`` and what is on screen.

The session is the state; this controller turns intents (card buttons, window
shortcuts, region edits on the image) into session calls, saves a draft after
each change, redraws the cards and overlays, audits what the reader saw, and
submits through ``app.review.submit`` on a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QWidget

from app.audit.events import AuditEvent, EventKind
from app.audit.events import Outcome as AuditOutcome
from app.domain import AIResult, AIStatus, Finding, Region, StudyRef, Verdict
from app.errors import CompanionError
from app.results.ann_reader import AnnotationGroupInfo, is_bulk_annotations, read_bulk_annotations
from app.review.services import ReviewServices
from app.review.session import ReviewSession
from app.review.slide_regions import (
    on_base_pixels,
    reader_groups,
    slide_image_uid,
    slide_region,
)
from app.review.slide_sr import sr_groups, sr_numbers
from app.review.submit import ImageRef, SubmitReceipt, submit_review
from ui.async_ops import AsyncOps, OpFailed
from ui.findings_panel import FindingsPanel
from ui.review_dialogs import FindingDialog, RejectDialog
from ui.study_view import StudyView
from viewers.slide_editor import SlideEditor

log = logging.getLogger(__name__)


IN_SLIDE_MM = (
    "This region is given in slide coordinates (mm): its outline cannot be edited here; "
    "confirm, reject or change its type (M)"
)


class ReviewController(QObject):
    """One open study's review; ``open`` starts it, ``act`` carries out an action."""

    sig_submitted = Signal(str)  # study UID, once its review is committed to the outbox
    sig_message = Signal(str)  # a short status line for the reader

    def __init__(
        self,
        services: ReviewServices | None,
        panel: FindingsPanel,
        study_view: StudyView,
        ops: AsyncOps,
        *,
        dialog_parent: QWidget,
        new_uid: Callable[[], str] = generate_uid,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.panel = panel
        self.study_view = study_view
        self.ops = ops
        self._dialog_parent = dialog_parent
        self._new_uid = new_uid
        self.session: ReviewSession | None = None
        self._ai_srs: dict[str, Dataset] = {}
        self._study: StudyRef | None = None
        self._submitting = False
        self._images: dict[str, ImageRef] = {}  # images regions were drawn on
        self._slide_editor: SlideEditor | None = None  # see connect_editor
        self._slide_groups: tuple[AnnotationGroupInfo, ...] = ()  # the AI's, as read
        # those groups placed on the shown slide's base pixels, for that slide's pyramid
        self._placed: tuple[object, list[AnnotationGroupInfo]] = (None, [])
        editor = study_view.viewer.editor
        editor.sig_region_edited.connect(self._on_region_edited)
        editor.sig_region_drawn.connect(self._on_region_drawn)
        panel.sig_action.connect(self.act)

    def connect_editor(self, editor: SlideEditor | None) -> None:
        """Review slide findings (bulk annotations) on a slide viewer's ``editor``: E edits a
        region's vertices, D redraws it, A draws a missed region, and the slide view shows
        the reader's version of the groups after every change. Call it again for a new
        viewer; the previous one is let go. None: the slide viewer is gone (before it is
        deleted)."""
        if self._slide_editor is not None:
            self._slide_editor.cancel()
            self._slide_editor.sig_region_edited.disconnect(self._on_region_edited)
            self._slide_editor.sig_region_drawn.disconnect(self._on_region_drawn)
        self._slide_editor = editor
        if editor is None:
            return
        editor.sig_region_edited.connect(self._on_region_edited)
        editor.sig_region_drawn.connect(self._on_region_drawn)
        self._show_slide_groups()

    def set_dialog_parent(self, widget: QWidget) -> None:
        """Where the reject / modify dialogs open (the sidecar, when it is the window shown)."""
        self._dialog_parent = widget

    # -- opening -----------------------------------------------------------------------
    def open(
        self,
        study: StudyRef,
        results: Sequence[AIResult],
        ai_srs: Mapping[str, Dataset],
        status: AIStatus,
        problems: Sequence[str],
    ) -> None:
        """Start reviewing ``study``; a saved draft of this reader is restored."""
        self.close()
        self._study = study
        self._ai_srs = dict(ai_srs)
        self._placed = (None, [])
        self._slide_groups = tuple(
            g
            for ds in self._ai_srs.values()
            if is_bulk_annotations(ds)
            for g in read_bulk_annotations(ds).groups
        )
        if self.services is None:
            findings = [f for r in results if r.readable for f in r.findings]
            self.panel.set_findings(findings, status, problems)
            return
        session = ReviewSession(
            study.study_uid,
            results,
            self.services.reader,
            new_uid=self._new_uid,
            observer=self.services.observer,
        )
        draft = self.services.store.load_draft(study.study_uid, self.services.reader.user_id)
        restored = session.restore(draft) if draft else 0
        self.session = session
        session.subscribe(self._on_session_changed)
        self.panel.set_review(session, status, problems)
        self._audit_open(study, results)
        self._show_slide_groups()
        if restored:
            self.sig_message.emit(f"Restored {restored} unsubmitted decision(s) from your draft")

    def close(self) -> None:
        self.study_view.viewer.editor.cancel()
        if self._slide_editor is not None:
            self._slide_editor.cancel()
        self._slide_groups = ()
        self._placed = (None, [])
        self.session = None
        self._ai_srs = {}
        self._images = {}
        self._study = None

    def current_findings(self) -> list[Finding]:
        """The findings to draw: the reader's versions, added ones included."""
        if self.session is None:
            return []
        return [i.current for i in self.session.items] + list(self.session.read_only)

    # -- actions -----------------------------------------------------------------------
    def act(self, name: str, tracking_uid: str = "") -> None:
        """Carry out a review action on ``tracking_uid`` (default: the selected card)."""
        if name in ("next", "previous"):
            self.panel.step(1 if name == "next" else -1)
            return
        session = self.session
        if session is None or self._submitting:
            return
        handlers: dict[str, Callable[[str], None]] = {
            "confirm": self._confirm,
            "reject": self._reject,
            "modify": self._modify,
            "clear": session.clear,
            "edit_region": self._edit_region,
            "redraw_region": self._redraw_region,
            "jump": self._jump,
        }
        if name in ("undo", "redo"):
            self.study_view.viewer.editor.cancel()  # an edit in progress is of the old state
            if self._slide_editor is not None:
                self._slide_editor.cancel()
        try:
            if name == "undo":
                session.undo() if session.can_undo else self.sig_message.emit("Nothing to undo")
            elif name == "redo":
                session.redo() if session.can_redo else self.sig_message.emit("Nothing to redo")
            elif name == "add":
                self._add()
            elif name == "submit":
                self.ops.start(self.submit())
            elif name in handlers:
                uid = tracking_uid or self._target()
                if uid:
                    handlers[name](uid)
        except CompanionError as exc:
            self.ops.show_error(str(exc))

    def _target(self) -> str:
        """The selected card, else the first undecided one (selected for the reader)."""
        if self.panel.selected:
            return self.panel.selected
        session = self.session
        undecided = session.undecided() if session else []
        if undecided:
            self._select(undecided[0])
            return undecided[0]
        self.sig_message.emit("Select a finding first (J / K)")
        return ""

    def _select(self, uid: str) -> None:
        self.panel.select(uid)
        region = self._slide_region(uid)
        self.study_view.show_finding(uid)  # a slide study also frames the region
        if region is not None and self._slide_editor is not None:
            # the reader may have moved it: fly to the reader's version
            xs = [p[0] for p in region.coordinates]
            ys = [p[1] for p in region.coordinates]
            self._slide_editor.viewer.show_region(min(xs), min(ys), max(xs), max(ys))

    def _advance(self, uid: str) -> None:
        """After a decision, go on to the next undecided finding (keyboard reading)."""
        session = self.session
        if session is None:
            return
        undecided = session.undecided()
        if undecided:
            self._select(undecided[0])
        else:
            self.panel.select(uid)
            self.sig_message.emit("All findings decided: submit with Ctrl+Enter")

    def _confirm(self, uid: str) -> None:
        assert self.session is not None
        self.session.confirm(uid)
        self._advance(uid)

    def _reject(self, uid: str) -> None:
        assert self.session is not None
        item = self.session.item(uid)
        dialog = RejectDialog(item.current, self._dialog_parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.session.reject(uid, dialog.reason, dialog.comment.text())
        self._advance(uid)

    def _modify(self, uid: str) -> None:
        assert self.session is not None
        item = self.session.item(uid)
        current = item.current
        added = item.verdict is Verdict.ADDED
        dialog = FindingDialog(
            "Edit added finding" if added else "Modify finding",
            finding_type=current.finding,
            site=current.site,
            urgency=current.urgency,
            certainty=current.certainty,
            measurements=current.measurements,
            comment=item.decision.comment if item.decision else "",
            slide=self._slide_region(uid) is not None,
            parent=self._dialog_parent,
        )
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        form = dialog.result_form()
        self.session.modify(uid, form.apply_to(current), form.comment)
        self.panel.select(uid)

    def _jump(self, uid: str) -> None:
        self._select(uid)

    def _edit_region(self, uid: str) -> None:
        slide = self._slide_region(uid)
        if self._in_slide_mm(slide):
            return
        if slide is not None and self._slide_editor is not None:
            self._select(uid)
            if self._slide_editor.edit(uid, slide):
                self.sig_message.emit(
                    "Drag a corner to move it, Backspace removes the one under the cursor; "
                    "Enter keeps, Esc cancels"
                )
            else:
                self.sig_message.emit("Only outlines can be edited corner by corner; redraw (D)")
            return
        region = self._region_on_screen(uid)
        if region is not None:
            self.study_view.viewer.editor.edit(uid, region)
            self.sig_message.emit("Drag to move, drag a handle to resize; Enter keeps, Esc cancels")

    def _redraw_region(self, uid: str) -> None:
        slide = self._slide_region(uid)
        if self._in_slide_mm(slide):
            return
        if slide is not None and self._slide_editor is not None:
            self._select(uid)
            self._slide_editor.draw(slide.referenced_sop_uid or "", owner=uid)
            self.sig_message.emit("Click the new outline's corners; Enter closes, Esc cancels")
            return
        region = self._region_on_screen(uid)
        if region is not None and self.study_view.viewer.editor.redraw(uid, region):
            self.sig_message.emit("Draw the new outline on the image; Esc cancels")

    def _add(self) -> None:
        image_uid = self._slide_image_uid()
        if not image_uid and self._slide_editor is not None and self._slide_annotations_in_mm():
            self.sig_message.emit(
                "This slide's AI annotations are in slide coordinates (mm): a region drawn "
                "on it cannot be added to them here"
            )
            return
        if image_uid and self._slide_editor is not None:
            self._slide_editor.draw(image_uid)
            self.sig_message.emit(
                "Click the missed region's corners on the slide; Enter closes, Esc cancels"
            )
            return
        if self.study_view.volume is None:
            self.sig_message.emit("Open an image series to draw the missed finding on")
            return
        self.study_view.viewer.editor.draw()
        self.sig_message.emit("Draw the missed finding's outline on the image; Esc cancels")

    def _region_on_screen(self, uid: str) -> Region | None:
        assert self.session is not None
        finding = self.session.item(uid).current
        if not finding.regions:
            self.sig_message.emit(f"{finding.finding.meaning} has no image region to edit")
            return None
        self._select(uid)
        if self.study_view.volume is None or not self.study_view.show_finding(uid):
            self.sig_message.emit("The finding's image is not on screen")
            return None
        return finding.regions[0]

    def _slide_region(self, uid: str) -> Region | None:
        """The region of a slide finding, when a slide editor is connected."""
        if self.session is None or self._slide_editor is None:
            return None
        return slide_region(self.session, uid)

    def _in_slide_mm(self, region: Region | None) -> bool:
        """A slide region in slide coordinates (mm), whose outline is not edited here:
        says so to the reader."""
        if region is None or not region.is_3d:
            return False
        self.sig_message.emit(IN_SLIDE_MM)
        return True

    def _slide_annotations_in_mm(self) -> bool:
        """Whether the study's slide annotations are in 3D slide coordinates."""
        return self.session is not None and any(
            f.template == "ANN" and f.regions and f.regions[0].is_3d
            for r in self.session.results
            for f in r.findings
        )

    def _slide_image_uid(self) -> str:
        return slide_image_uid(self.session) if self.session is not None else ""

    def _show_slide_groups(self) -> None:
        """The reader's version of the slide's groups on the slide viewer."""
        if self._slide_editor is None or self.session is None:
            return
        viewer = self._slide_editor.viewer
        pyramid = viewer.source.pyramid
        if self._placed[0] is not pyramid:  # placed once per slide, not per decision
            placed = [on_base_pixels(g, pyramid) for g in self._slide_groups]
            # the groups that cannot be placed: SlideStudy says why
            self._placed = (pyramid, [g for g in placed if not isinstance(g, str)])
        groups = self._placed[1]
        items = self.session.items
        # SR findings on the slide: as the reader left them, a rejected one not drawn
        numbers = sr_numbers([i.original for i in items if i.original is not None])
        shown = [i.current for i in items if i.verdict is not Verdict.REJECTED]
        viewer.set_groups((*reader_groups(groups, items), *sr_groups(shown, pyramid, numbers)))

    def _remember_image(self, region: Region) -> None:
        """Where the image a region is on lives, for an SR that must reference it."""
        volume = self.study_view.volume
        uid = region.referenced_sop_uid
        if volume is None or not uid or uid not in volume.sop_uids:
            return
        index = volume.sop_uids.index(uid)
        sop_class = volume.sop_class_uids[index] if index < len(volume.sop_class_uids) else ""
        self._images[uid] = ImageRef(
            volume.series_uid, region.referenced_sop_class_uid or sop_class
        )

    def _on_region_edited(self, uid: str, region: Region) -> None:
        session = self.session
        if session is None:
            return
        self._remember_image(region)
        current = session.item(uid).current
        comment = session.item(uid).decision.comment if session.item(uid).decision else ""
        try:
            session.modify(uid, replace(current, regions=(region, *current.regions[1:])), comment)
        except CompanionError as exc:
            self.ops.show_error(str(exc))

    def _on_region_drawn(self, region: Region) -> None:
        session = self.session
        if session is None:
            return
        self._remember_image(region)
        image = self._slide_image_uid()
        on_slide = bool(image) and region.referenced_sop_uid == image
        dialog = FindingDialog(
            "Add a finding the AI missed", slide=on_slide, parent=self._dialog_parent
        )
        if dialog.exec() != QDialog.DialogCode.Accepted:
            self.sig_message.emit("Nothing added")
            return
        form = dialog.result_form()
        try:
            uid = session.add(
                form.finding_type,
                region,
                site=form.site,
                urgency=form.urgency,
                comment=form.comment,
            )
        except CompanionError as exc:
            self.ops.show_error(str(exc))
            return
        self._select(uid)
        self.sig_message.emit(f"Added {form.finding_type.meaning} (undo with Ctrl+Z)")

    def _on_session_changed(self) -> None:
        session = self.session
        if session is None or self.services is None:
            return
        try:
            self.services.store.save_draft(
                session.study_uid, session.reader.user_id, session.decisions()
            )
        except CompanionError as exc:  # shown, and the decisions are still on screen
            self.ops.show_error(f"Your draft could not be saved: {exc}")
        self.panel.refresh_review()
        self.study_view.set_findings(self.current_findings())
        self._show_slide_groups()

    # -- submit --------------------------------------------------------------------------
    async def submit(self) -> SubmitReceipt | None:
        """Commit the review to the outbox (worker thread) and wake the sender."""
        session, services = self.session, self.services
        if session is None or services is None or self._submitting:
            return None
        undecided = session.undecided()
        if undecided:
            self._select(undecided[0])
            self.ops.show_error(
                f"{len(undecided)} finding(s) not decided yet: confirm, reject or modify each "
                "before submitting"
            )
            return None
        self._submitting = True
        self.panel.submit_button.setEnabled(False)
        ai_srs = dict(self._ai_srs)
        try:
            receipt = await self.ops.run(
                "Submitting review",
                lambda _r: submit_review(
                    session,
                    ai_srs,
                    outbox=services.outbox,
                    audit=services.audit,
                    store=services.store,
                    new_uid=self._new_uid,
                    images=dict(self._images),
                ),
            )
        except OpFailed:
            self.panel.refresh_review()
            return None
        finally:
            self._submitting = False
        services.wake_senders()
        if self.session is session:
            self.session = None  # submitted: the cards stay, read-only
            self.panel.set_submitted(len(receipt.sop_uids))
        self.sig_message.emit(
            f"Review submitted: {len(receipt.sop_uids)} DICOM object(s) queued for the archive"
        )
        self.sig_submitted.emit(session.study_uid)
        return receipt

    # -- audit -----------------------------------------------------------------------------
    def audit_query(self, studies: int, errors: int) -> None:
        """A worklist search of the archive (PS3.15 "Query")."""
        services = self.services
        if services is None:
            return
        event = AuditEvent(
            kind=EventKind.QUERY,
            user=services.reader.user_id,
            outcome=AuditOutcome.MINOR_FAILURE if errors else AuditOutcome.SUCCESS,
            details={
                "what": "worklist",
                "query": "QIDO-RS: studies; instances with Modality=SR",
                "destination": services.destination,
                "studies": studies,
                "problems": errors,
            },
        )
        try:
            services.audit.append(event)
        except CompanionError as exc:
            self.ops.show_error(f"The audit trail could not be written: {exc}")

    def _audit_open(self, study: StudyRef, results: Sequence[AIResult]) -> None:
        services = self.services
        if services is None:
            return
        user = services.reader.user_id
        common = {
            "user": user,
            "study_uid": study.study_uid,
            "patient_id": study.patient_id or None,
            "patient_name": study.patient_name or None,
        }
        events = [AuditEvent(kind=EventKind.STUDY_OPENED, **common)]
        shown = [r for r in results if r.readable]
        if shown:
            events.append(
                AuditEvent(
                    kind=EventKind.FINDINGS_SHOWN,
                    sop_uids=tuple(r.sop_instance_uid for r in shown),
                    details={
                        "findings": [f.tracking_uid for r in shown for f in r.findings],
                        "algorithms": sorted(
                            {
                                f"{r.algorithm.name} {r.algorithm.version}"
                                for r in shown
                                if r.algorithm
                            }
                        ),
                    },
                    **common,
                )
            )
        try:
            services.audit.append_many(events)
        except CompanionError as exc:
            self.ops.show_error(f"The audit trail could not be written: {exc}")
