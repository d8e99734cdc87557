"""Submitting a review end to end, Qt-free: session -> one journal transaction -> real Orthanc.

Checks what issue 3 asks of a submit: the decisions, the audit entries and the SRs
commit together; the sender stores both SRs; read back from Orthanc, the assessment
SR holds every decision and the edited SR the reader's findings; the worklist then
shows the study as reviewed with the edited findings, and ``companion findings``
returns them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from app.archive.client import open_dicomweb
from app.audit.events import AuditEvent, EventKind
from app.audit.log import AuditLog
from app.delivery.outbox import Outbox
from app.delivery.sender import Sender
from app.domain import Reader, Region, ReviewState, Urgency, Verdict
from app.errors import ReviewError
from app.results import codes
from app.results.assessment_reader import read_assessment
from app.results.sr_reader import read_ai_result
from app.review.services import open_review_services
from app.review.session import ReviewSession
from app.review.store import ReviewStore
from app.review.submit import ImageRef, submit_review
from app.settings import Settings, WorklistWeights
from app.worklist.service import WorklistService
from tests.app.test_worklist_orthanc import run_cli
from tests.support import dicom_data, orthanc

READER = Reader("dr.grey", "GREY^MEREDITH", "Seattle Grace", "Radiologist")


def _journal(tmp_path: Path) -> tuple[Outbox, AuditLog, ReviewStore]:
    path = tmp_path / "journal.sqlite3"
    return Outbox(path), AuditLog(path, key=b"k" * 32), ReviewStore(path)


def _decide(session: ReviewSession, second_slice: str, sop_class: str) -> dict[str, str]:
    """Confirm the hemorrhage, reject the mass, move the nodule, add a finding."""
    items = {i.current.finding.meaning: i for i in session.items}
    ich, mass, nodule = (items[n].current for n in ("Intracranial hemorrhage", "Mass", "Nodule"))
    session.confirm(ich.tracking_uid)
    session.reject(mass.tracking_uid, codes.REJECT_REASONS["false_positive"], "vessel")
    moved = tuple((x + 5.0, y + 3.0) for x, y in nodule.regions[0].coordinates)
    session.modify(
        nodule.tracking_uid,
        replace(nodule, regions=(replace(nodule.regions[0], coordinates=moved),),
                urgency=Urgency.URGENT),
    )
    added = session.add(
        codes.PNEUMOTHORAX,
        Region("POLYLINE", ((5.0, 5.0), (15.0, 5.0), (15.0, 15.0), (5.0, 5.0)),
               referenced_sop_uid=second_slice, referenced_sop_class_uid=sop_class),
        site=codes.LUNG,
        urgency=Urgency.CRITICAL,
        comment="missed by the AI",
    )
    return {"ich": ich.tracking_uid, "mass": mass.tracking_uid,
            "nodule": nodule.tracking_uid, "added": added}


def test_submit_commits_together_and_both_srs_read_back_from_orthanc(
    empty_orthanc: orthanc.OrthancServer, tmp_path: Path
) -> None:
    images, ai_sr = dicom_data.review_study("submit")
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*images, ai_sr])
    service = WorklistService(archive, WorklistWeights())
    study_uid = str(ai_sr.StudyInstanceUID)
    results = service.results_for(study_uid)
    session = ReviewSession(study_uid, results, READER, new_uid=generate_uid)
    uids = _decide(session, str(images[1].SOPInstanceUID), str(images[1].SOPClassUID))
    outbox, audit, store = _journal(tmp_path)
    store.save_draft(study_uid, READER.user_id, session.decisions())

    receipt = submit_review(
        session, {str(ai_sr.SOPInstanceUID): ai_sr},
        outbox=outbox, audit=audit, store=store, new_uid=generate_uid,
        images={str(images[1].SOPInstanceUID):
                ImageRef(str(images[1].SeriesInstanceUID), str(images[1].SOPClassUID))},
    )
    assert len(receipt.assessment_uids) == 1 and len(receipt.edited_uids) == 1
    # One transaction wrote all of it: SRs, the submission with its decisions, the audit
    # entries; the draft is gone.
    assert [i.sop_instance_uid for i in outbox.pending()] == list(receipt.sop_uids)
    (submission,) = store.submissions(study_uid)
    assert [d.verdict for _, d in store.decisions(submission.id)] == [
        Verdict.CONFIRMED, Verdict.REJECTED, Verdict.MODIFIED, Verdict.ADDED
    ]
    assert store.load_draft(study_uid, READER.user_id) == []
    kinds = [e.event.kind for e in audit.entries()]
    assert kinds == [EventKind.DECISION] * 4 + [EventKind.SUBMIT]
    assert audit.verify().ok

    report = Sender(outbox, archive).run_once()
    assert len(report.sent) == 2 and outbox.pending() == []

    # Both SRs, read back from Orthanc.
    stored = {
        ref.sop_uid: archive.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid)
        for ref in archive.search_instances(study_uid, modality="SR")
    }
    assessment = read_assessment(stored[receipt.assessment_uids[0]])
    assert assessment.assessed_sop_uid == str(ai_sr.SOPInstanceUID)
    by_uid = {d.tracking_uid: d for d in assessment.decisions}
    assert by_uid[uids["ich"]].verdict is Verdict.CONFIRMED
    assert by_uid[uids["mass"]].verdict is Verdict.REJECTED
    assert by_uid[uids["mass"]].reason == codes.REJECT_REASONS["false_positive"]
    assert by_uid[uids["mass"]].comment == "vessel"
    assert by_uid[uids["nodule"]].verdict is Verdict.MODIFIED
    assert by_uid[uids["added"]].verdict is Verdict.ADDED
    edited = read_ai_result(stored[receipt.edited_uids[0]])
    assert edited.predecessor_uids == (str(ai_sr.SOPInstanceUID),)
    found = {f.tracking_uid: f for f in edited.findings}
    assert set(found) == {uids["ich"], uids["nodule"], uids["added"]}  # rejected one left out
    assert found[uids["nodule"]].urgency is Urgency.URGENT
    original = next(f for f in results[0].findings if f.tracking_uid == uids["nodule"])
    assert found[uids["nodule"]].regions[0].coordinates[0] == pytest.approx(
        (original.regions[0].coordinates[0][0] + 5, original.regions[0].coordinates[0][1] + 3)
    )
    assert found[uids["added"]].regions[0].referenced_sop_uid == str(images[1].SOPInstanceUID)

    # The worklist shows the study reviewed, with the reader's findings only.
    item = WorklistService(archive, WorklistWeights()).build().item(study_uid)
    assert item is not None and item.review is ReviewState.REVIEWED
    assert item.reviewed_by == "GREY^MEREDITH"
    assert {f.tracking_uid for f in item.findings} == set(found)

    # `companion findings` on the study returns the edited findings.
    proc = run_cli("findings", study_uid, "--server", empty_orthanc.dicomweb_url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert {f["tracking_uid"] for f in json.loads(proc.stdout)} == set(found)


def test_a_failed_commit_leaves_nothing_half_written(tmp_path: Path) -> None:
    _images, ai_sr = dicom_data.review_study("rollback")
    result = read_ai_result(ai_sr)
    session = ReviewSession(str(ai_sr.StudyInstanceUID), [result], READER, new_uid=generate_uid)
    for item in session.items:
        session.confirm(item.tracking_uid)
    outbox, audit, store = _journal(tmp_path)
    store.save_draft(session.study_uid, READER.user_id, session.decisions())
    # An audit chain written with another key: the audit append fails inside the
    # transaction, so the SRs and the submission must roll back with it.
    other = AuditLog(outbox.path, key=b"y" * 32)
    other.append(AuditEvent(kind=EventKind.SIGN_IN, user="someone"))
    with pytest.raises(Exception, match="not the key"):
        submit_review(session, {result.sop_instance_uid: ai_sr}, outbox=outbox, audit=audit,
                      store=store, new_uid=generate_uid)
    assert outbox.items() == [] and store.submissions() == []
    assert len(store.load_draft(session.study_uid, READER.user_id)) == 3
    raw = sqlite3.connect(outbox.path)
    assert raw.execute("SELECT COUNT(*) FROM review_decision").fetchone()[0] == 0


def test_submit_refuses_undecided_and_a_foreign_journal(tmp_path: Path) -> None:
    _images, ai_sr = dicom_data.review_study("refuse")
    result = read_ai_result(ai_sr)
    session = ReviewSession(str(ai_sr.StudyInstanceUID), [result], READER, new_uid=generate_uid)
    outbox, audit, store = _journal(tmp_path)
    with pytest.raises(ReviewError, match="not decided"):
        submit_review(session, {result.sop_instance_uid: ai_sr}, outbox=outbox, audit=audit,
                      store=store, new_uid=generate_uid)
    elsewhere = AuditLog(tmp_path / "other.sqlite3", key=b"k" * 32)
    for item in session.items:
        session.confirm(item.tracking_uid)
    with pytest.raises(ReviewError, match="share the outbox"):
        submit_review(session, {result.sop_instance_uid: ai_sr}, outbox=outbox,
                      audit=elsewhere, store=store, new_uid=generate_uid)
    assert outbox.items() == []


@pytest.fixture()
def no_keyring() -> Iterator[None]:
    """keyring's "fail" backend: what a machine without a secure OS keyring has."""
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def test_demo_services_use_their_own_journal_and_a_file_key_without_keyring(
    no_keyring: None,
) -> None:
    """No secure keyring: the demo gets a file key and says so; a real connection refuses."""
    demo = open_review_services(Settings(), destination="demo", demo=True)
    try:
        assert demo.outbox.path.name == "demo-journal.sqlite3"
        assert "not tamper-evident" in demo.notice
    finally:
        demo.close()
    with pytest.raises(Exception, match="keyring"):
        open_review_services(Settings(), destination="http://x", demo=False)
