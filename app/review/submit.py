"""Submit a study's review: SRs, decisions and audit entries in one outbox transaction.

``submit_review`` builds, for every assessed AI result, an assessment SR and —
when the reader modified or added findings — an edited TID 1500 SR with a new
SOP Instance UID (for slide annotations, an edited bulk annotations object:
``app.results.edited_ann``); then commits, in one SQLite transaction on the journal:
the frozen SRs (the outbox), the submission and its decisions (``ReviewStore``),
one audit entry per decision plus one for the submit, and the removal of the
draft. The background sender stores the SRs afterwards; nothing here talks to
the archive, so a submit works offline and loses nothing.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydicom.dataset import Dataset

from app.audit.events import AuditEvent, EventKind
from app.audit.log import AuditLog
from app.delivery.outbox import Outbox, OutgoingObject
from app.domain import Assessment, Decision
from app.errors import ReviewError
from app.results.assessment_writer import build_assessment_sr
from app.results.edited_ann import ann_changed, build_edited_ann, is_ann_assessment
from app.results.edited_sr import build_edited_sr
from app.results.review_context import evidence_refs
from app.review.session import ReviewSession
from app.review.store import ReviewStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitReceipt:
    """What a submit committed: the outbox items and the SRs they hold."""

    submission_id: int
    outbox_ids: tuple[int, ...]
    assessment_uids: tuple[str, ...]
    edited_uids: tuple[str, ...]

    @property
    def sop_uids(self) -> tuple[str, ...]:
        return self.assessment_uids + self.edited_uids


@dataclass(frozen=True)
class ImageRef:
    """Where an image a reader drew on lives (for images the AI SR does not list)."""

    series_uid: str
    sop_class_uid: str


def build_review_objects(
    assessments: list[Assessment],
    ai_srs: Mapping[str, Dataset],
    new_uid: Callable[[], str],
    images: Mapping[str, ImageRef] | None = None,
) -> tuple[list[OutgoingObject], list[str], list[str]]:
    """The SRs of a review: (objects to send, assessment SR UIDs, edited SR UIDs).

    ``images`` maps SOP Instance UIDs of images shown to the reader to their series
    and SOP class, for regions drawn on images the AI SR does not reference."""
    objects: list[OutgoingObject] = []
    assessment_uids: list[str] = []
    edited_uids: list[str] = []
    for assessment in assessments:
        sop_uid = assessment.assessed.sop_instance_uid
        ai_sr = ai_srs.get(sop_uid)
        if ai_sr is None:
            raise ReviewError(
                f"the assessed AI result {sop_uid} was not loaded with the study; reopen it"
            )
        edited: Dataset | None = None
        if is_ann_assessment(assessment) and ann_changed(assessment):
            uid = new_uid()
            edited = build_edited_ann(
                assessment, ai_sr, series_instance_uid=new_uid(), sop_instance_uid=uid
            )
            edited_uids.append(uid)
        elif assessment.changed:
            uid = new_uid()
            edited = build_edited_sr(
                assessment,
                ai_sr,
                series_instance_uid=new_uid(),
                sop_instance_uid=uid,
                extra_evidence=_extra_evidence(assessment, ai_sr, images or {}),
            )
            edited_uids.append(uid)
        uid = new_uid()
        objects.append(
            OutgoingObject(
                build_assessment_sr(
                    assessment,
                    ai_sr,
                    series_instance_uid=new_uid(),
                    sop_instance_uid=uid,
                    edited_sr=edited,
                ),
                label="assessment SR",
            )
        )
        assessment_uids.append(uid)
        if edited is not None:
            label = (
                "edited AI annotations" if is_ann_assessment(assessment) else "edited AI result SR"
            )
            objects.append(OutgoingObject(edited, label=label))
    return objects, assessment_uids, edited_uids


def _extra_evidence(
    assessment: Assessment, ai_sr: Dataset, images: Mapping[str, ImageRef]
) -> list[Dataset]:
    """Headers (UIDs only) of images the reader's regions are on that the AI SR lacks."""
    known = {ref.sop_uid for ref in evidence_refs(ai_sr)}
    extra: list[Dataset] = []
    for finding in assessment.kept_findings():
        for region in finding.regions[:1]:
            uid = region.referenced_sop_uid
            if region.is_3d or not uid or uid in known:
                continue
            image = images.get(uid)
            if image is None:
                raise ReviewError(
                    f"the image {uid} a region is drawn on is not known; reopen the study"
                )
            ds = Dataset()
            ds.StudyInstanceUID = assessment.study_uid
            ds.SeriesInstanceUID = image.series_uid
            ds.SOPInstanceUID = uid
            ds.SOPClassUID = region.referenced_sop_class_uid or image.sop_class_uid
            extra.append(ds)
            known.add(uid)
    return extra


def submit_review(
    session: ReviewSession,
    ai_srs: Mapping[str, Dataset],
    *,
    outbox: Outbox,
    audit: AuditLog,
    store: ReviewStore,
    new_uid: Callable[[], str],
    images: Mapping[str, ImageRef] | None = None,
) -> SubmitReceipt:
    """Commit the review (see the module text). Raises ``ReviewError`` when findings are
    undecided, ``OutboxError``/``AuditError`` when the journal cannot be written — in
    which case nothing was committed and the draft is still there."""
    session.check_may_decide()  # an observer never submits (NotPermitted)
    for path in (audit.path, store.path):
        if path.resolve() != outbox.path.resolve():
            raise ReviewError(
                f"the audit log and review records must share the outbox's database "
                f"({outbox.path}), got {path}"
            )
    assessments = session.assessments()
    try:
        objects, assessment_uids, edited_uids = build_review_objects(
            assessments, ai_srs, new_uid, images
        )
    except ValueError as exc:  # the writers name the argument and value
        raise ReviewError(f"the review SRs cannot be written: {exc}") from exc
    sop_uids = assessment_uids + edited_uids
    completed = assessments[0].completed_at
    pairs: list[tuple[str, Decision]] = [
        (a.assessed.sop_instance_uid, d) for a in assessments for d in a.decisions
    ]
    first_sr = ai_srs[assessments[0].assessed.sop_instance_uid]
    patient_id = str(first_sr.get("PatientID", "")) or None
    patient_name = str(first_sr.get("PatientName", "")) or None
    user = session.reader.user_id
    events = [
        AuditEvent(
            kind=EventKind.DECISION,
            user=user,
            study_uid=session.study_uid,
            sop_uids=(assessed,),
            patient_id=patient_id,
            patient_name=patient_name,
            details={
                "tracking_uid": d.tracking_uid,
                "verdict": d.verdict.value,
                "reason": d.reason.to_json() if d.reason else None,
                "comment": d.comment,
                "finding": d.finding.finding.to_json(),
            },
            time=d.decided_at or completed,
        )
        for assessed, d in pairs
    ]
    events.append(
        AuditEvent(
            kind=EventKind.SUBMIT,
            user=user,
            study_uid=session.study_uid,
            sop_uids=tuple(sop_uids),
            patient_id=patient_id,
            patient_name=patient_name,
            details={
                "assessed": [a.assessed.sop_instance_uid for a in assessments],
                "assessment_srs": assessment_uids,
                "edited_srs": edited_uids,
                "decisions": len(pairs),
            },
            time=completed,
        )
    )
    recorded: dict[str, int] = {}

    def write(conn: sqlite3.Connection) -> None:
        marks = ", ".join("?" for _ in sop_uids)
        ids = [
            int(r[0])
            for r in conn.execute(
                f"SELECT id FROM outbox_item WHERE sop_instance_uid IN ({marks}) ORDER BY id",
                sop_uids,
            )
        ]
        recorded["submission"] = store.record_in(
            conn,
            study_uid=session.study_uid,
            user_id=user,
            submitted_at=completed,
            decisions=pairs,
            sop_uids=sop_uids,
            outbox_ids=ids,
        )
        audit.append_in(conn, events)

    outbox_ids = outbox.submit(objects, extra=write)
    log.info(
        "review submitted: %d decision(s), %d SR(s) in the outbox", len(pairs), len(objects)
    )
    return SubmitReceipt(
        submission_id=recorded["submission"],
        outbox_ids=tuple(outbox_ids),
        assessment_uids=tuple(assessment_uids),
        edited_uids=tuple(edited_uids),
    )
