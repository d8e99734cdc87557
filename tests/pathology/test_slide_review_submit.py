"""A slide review submitted end to end: session -> one outbox transaction -> real Orthanc.

Confirm one AI tumor region, reject another with a reason, move a vertex of the
third, add a region; the sender stores the assessment SR and the edited bulk
annotations; read back, the assessment holds every verdict, the edited ANN has new
UIDs, names the AI's as the one it supersedes, and only it is shown afterwards.
Both objects pass dciodvfy, the SR pixelmed too.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from app.archive.client import open_dicomweb
from app.audit.log import AuditLog
from app.delivery.outbox import Outbox
from app.delivery.sender import Sender
from app.demo.slide_annotations import NEOPLASM, build_slide_annotations
from app.domain import Code, Reader, Region, Verdict
from app.results import codes
from app.results.ann_reader import ANN_SOP_CLASS, read_bulk_annotations
from app.results.assessment_reader import read_assessment
from app.results.edited_ann import ADDED, EDITED, build_edited_ann
from app.review.session import ReviewSession
from app.review.store import ReviewStore
from app.review.submit import submit_review
from app.settings import WorklistWeights
from app.worklist.service import WorklistService
from tests.pathology.slide_data import small_slide
from tests.support import orthanc
from tests.support.validators import dciodvfy, pixelmed, write

READER = Reader("dr.path", "PATH^OLOGIST", "Seattle Grace", "Pathologist")
ADDED_REGION = ((100.0, 100.0), (180.0, 100.0), (180.0, 160.0), (100.0, 160.0))
STROMA = Code("C0038467", "UMLS", "Stroma")


def _journal(tmp_path: Path) -> tuple[Outbox, AuditLog, ReviewStore]:
    path = tmp_path / "journal.sqlite3"
    return Outbox(path), AuditLog(path, key=b"k" * 32), ReviewStore(path)


def _decide(session: ReviewSession, image_uid: str) -> dict[str, str]:
    """Confirm tumor 1 and the nuclei, reject tumor 2, move a vertex of tumor 3, add one."""
    tumors = [i.current for i in session.items if i.current.regions[0].graphic_type == "POLYGON"]
    for item in session.items:
        if item.current.regions[0].graphic_type == "MULTIPOINT":
            session.confirm(item.tracking_uid)
    session.confirm(tumors[0].tracking_uid)
    session.reject(tumors[1].tracking_uid, codes.REJECT_REASONS["false_positive"], "stroma")
    coords = list(tumors[2].regions[0].coordinates)
    coords[0] = (coords[0][0] + 20.0, coords[0][1] - 10.0)
    session.modify(
        tumors[2].tracking_uid,
        replace(tumors[2], regions=(replace(tumors[2].regions[0], coordinates=tuple(coords)),)),
    )
    added = session.add(
        NEOPLASM_CODE, Region("POLYGON", ADDED_REGION, referenced_sop_uid=image_uid)
    )
    return {
        "kept": tumors[0].tracking_uid,
        "rejected": tumors[1].tracking_uid,
        "moved": tumors[2].tracking_uid,
        "added": added,
    }


NEOPLASM_CODE = Code(NEOPLASM.value, NEOPLASM.scheme_designator, NEOPLASM.meaning)
# dciodvfy's false positive on 2D groups (the attribute is absent; see test_demo_slide.py).
# pixelmed (2022) does not know the bulk annotations IOD ("IOD (SOP Class) unrecognized").
FALSE_POSITIVE = "Error - Only valid for AnnotationCoordinateType of 3D - attribute <CommonZCoordinateValue> = <>"


def ann_errors(path: Path) -> list[str]:
    return [e for e in dciodvfy(path) if e != FALSE_POSITIVE]


@pytest.mark.orthanc
def test_slide_review_writes_assessment_and_edited_ann(
    empty_orthanc: orthanc.OrthancServer, tmp_path: Path
) -> None:
    slide = small_slide()
    ann = build_slide_annotations(slide)
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([slide.levels[0], ann])
    service = WorklistService(archive, WorklistWeights())
    results = service.results_for(slide.study_uid)
    assert [r.template for r in results] == ["ANN"] and results[0].editable
    session = ReviewSession(slide.study_uid, results, READER, new_uid=generate_uid)
    image_uid = str(slide.levels[0].SOPInstanceUID)
    uids = _decide(session, image_uid)
    outbox, audit, store = _journal(tmp_path)
    receipt = submit_review(
        session,
        {str(ann.SOPInstanceUID): ann},
        outbox=outbox,
        audit=audit,
        store=store,
        new_uid=generate_uid,
    )
    assert len(receipt.assessment_uids) == 1 and len(receipt.edited_uids) == 1
    pending = outbox.pending()
    assert [i.sop_instance_uid for i in pending] == list(receipt.sop_uids)  # one transaction
    report = Sender(outbox, archive).run_once()
    assert len(report.sent) == 2 and outbox.pending() == []

    sr_ref = archive.search_instances(slide.study_uid, modality="SR")[0]
    sr = archive.retrieve_instance(sr_ref.study_uid, sr_ref.series_uid, sr_ref.sop_uid)
    assessment = read_assessment(sr)
    assert assessment.assessed_sop_uid == str(ann.SOPInstanceUID)
    assert assessment.edited_sop_uid == receipt.edited_uids[0]
    verdicts = {d.tracking_uid: d.verdict for d in assessment.decisions}
    assert verdicts[uids["kept"]] is Verdict.CONFIRMED
    assert verdicts[uids["rejected"]] is Verdict.REJECTED
    assert verdicts[uids["moved"]] is Verdict.MODIFIED
    assert verdicts[uids["added"]] is Verdict.ADDED

    refs = {r.sop_uid: r for r in archive.search_instances(slide.study_uid, modality="ANN")}
    assert set(refs) == {str(ann.SOPInstanceUID), receipt.edited_uids[0]}
    edited_ref = refs[receipt.edited_uids[0]]
    edited = archive.retrieve_instance(
        edited_ref.study_uid, edited_ref.series_uid, edited_ref.sop_uid
    )
    assert edited.StudyInstanceUID == ann.StudyInstanceUID
    assert edited.SeriesInstanceUID != ann.SeriesInstanceUID
    assert edited.PatientID == ann.PatientID
    back = read_bulk_annotations(edited)
    assert back.result.predecessor_uids == (str(ann.SOPInstanceUID),)
    assert back.referenced_sop_uids == (image_uid,)
    groups = {g.label: g for g in back.groups}
    assert set(groups) == {
        f"Tumor region{EDITED}",
        "Ki-67 nucleus positive",
        "Ki-67 nucleus negative",
        f"{NEOPLASM.meaning}{ADDED}",
    }
    tumor = groups[f"Tumor region{EDITED}"]
    original = read_bulk_annotations(ann)
    ai_tumor = next(g for g in original.groups if g.label == "Tumor region")
    assert tumor.count == 2 and tumor.uid != ai_tumor.uid
    np.testing.assert_allclose(tumor.shapes[0], ai_tumor.shapes[0], atol=1e-3)
    moved = ai_tumor.shapes[2].copy()
    moved[0] += (20.0, -10.0)
    np.testing.assert_allclose(tumor.shapes[1], moved, atol=1e-3)
    assert tumor.probabilities is not None
    assert tumor.probabilities[0] == pytest.approx(ai_tumor.probabilities[0])  # type: ignore[index]
    gen = {
        str(g.AnnotationGroupLabel): str(g.AnnotationGroupGenerationType)
        for g in edited.AnnotationGroupSequence
    }
    assert gen[f"Tumor region{EDITED}"] == "SEMIAUTOMATIC"
    assert gen[f"{NEOPLASM.meaning}{ADDED}"] == "MANUAL"
    assert gen["Ki-67 nucleus positive"] == "AUTOMATIC"
    np.testing.assert_allclose(groups[f"{NEOPLASM.meaning}{ADDED}"].shapes[0], ADDED_REGION)
    # The unchanged nuclei groups keep their UIDs: their findings keep their Tracking UIDs.
    kept = {f.tracking_uid for f in back.result.findings}
    confirmed_points = {
        i.tracking_uid for i in session.items if i.current.regions[0].graphic_type == "MULTIPOINT"
    }
    assert confirmed_points <= kept

    # The edited annotations supersede the AI's: only they are shown now.
    shown = WorklistService(archive, WorklistWeights()).results_for(slide.study_uid)
    assert [r.sop_instance_uid for r in shown] == [receipt.edited_uids[0]]

    assert ann_errors(write(edited, tmp_path / "edited_ann.dcm")) == []
    sr_path = write(sr, tmp_path / "assessment.dcm")
    assert dciodvfy(sr_path) == []
    assert pixelmed(sr_path, root_template=None) == []


def test_relabel_points_and_reject_all_of_a_group(tmp_path: Path) -> None:
    """A relabelled polygon goes to a group of its new type; an edited point group keeps
    the remaining points' probabilities; a fully rejected group is dropped."""
    slide = small_slide()
    ann = build_slide_annotations(slide)
    result = read_bulk_annotations(ann).result
    session = ReviewSession(slide.study_uid, [result], READER, new_uid=generate_uid)
    items = session.items
    tumors = [i.current for i in items if i.current.regions[0].graphic_type == "POLYGON"]
    points = [i.current for i in items if i.current.regions[0].graphic_type == "MULTIPOINT"]
    session.modify(tumors[0].tracking_uid, replace(tumors[0], finding=STROMA))
    for t in tumors[1:]:
        session.reject(t.tracking_uid, codes.REJECT_REASONS["false_positive"])
    pts = points[0].regions[0].coordinates
    session.modify(
        points[0].tracking_uid,
        replace(points[0], regions=(replace(points[0].regions[0], coordinates=pts[1:]),)),
    )
    session.confirm(points[1].tracking_uid)
    (assessment,) = session.assessments()
    edited = build_edited_ann(
        assessment, ann, series_instance_uid=generate_uid(), sop_instance_uid=generate_uid()
    )
    back = read_bulk_annotations(edited)
    labels = [g.label for g in back.groups]
    assert f"Stroma{EDITED}" in labels and "Tumor region" not in labels
    assert not any(g.label.startswith("Tumor region") for g in back.groups)
    stroma = next(g for g in back.groups if g.label == f"Stroma{EDITED}")
    assert stroma.property_type.value == STROMA.value and stroma.count == 1
    edited_points = next(g for g in back.groups if g.label.endswith(EDITED) and g.is_points)
    original_points = next(g for g in read_bulk_annotations(ann).groups if g.is_points)
    assert edited_points.count == original_points.count - 1
    assert edited_points.probabilities is not None and original_points.probabilities is not None
    np.testing.assert_allclose(edited_points.probabilities, original_points.probabilities[1:])
    refs = [
        item.ReferencedSOPClassUID
        for s in edited.ReferencedSeriesSequence
        for item in s.ReferencedInstanceSequence
    ]
    assert ANN_SOP_CLASS in refs
    assert ann_errors(write(edited, tmp_path / "relabelled.dcm")) == []


def test_edited_ann_refuses_input_that_does_not_fit() -> None:
    slide = small_slide()
    ann = build_slide_annotations(slide)
    result = read_bulk_annotations(ann).result
    session = ReviewSession(slide.study_uid, [result], READER, new_uid=generate_uid)
    for item in session.items:
        session.reject(item.tracking_uid, codes.REJECT_REASONS["false_positive"])
    (assessment,) = session.assessments()
    with pytest.raises(ValueError, match="sop_instance_uid must be new"):
        build_edited_ann(
            assessment, ann, series_instance_uid="1.2.3", sop_instance_uid=str(ann.SOPInstanceUID)
        )
    with pytest.raises(ValueError, match="every annotation was rejected"):
        build_edited_ann(assessment, ann, series_instance_uid="1.2.3", sop_instance_uid="1.2.4")
    with pytest.raises(ValueError, match="must be bulk annotations"):
        build_edited_ann(
            assessment, slide.levels[0], series_instance_uid="1.2.3", sop_instance_uid="1.2.4"
        )


def test_an_edited_ann_can_be_reviewed_and_edited_again(tmp_path: Path) -> None:
    """The second review reads the first one's object: carried-over groups keep their
    Tracking UIDs, suffixes are not doubled, a reader-drawn group stays MANUAL, and the
    positive fraction is still derived from edited nuclei groups."""
    slide = small_slide()
    ann = build_slide_annotations(slide)
    image_uid = str(slide.levels[0].SOPInstanceUID)
    first = ReviewSession(
        slide.study_uid, [read_bulk_annotations(ann).result], READER, new_uid=generate_uid
    )
    _decide(first, image_uid)
    (assessment,) = first.assessments()
    edited = build_edited_ann(
        assessment, ann, series_instance_uid=generate_uid(), sop_instance_uid=generate_uid()
    )
    read = read_bulk_annotations(edited)
    assert {g.positive_fraction for g in read.groups if g.is_points} != {None}
    second = ReviewSession(slide.study_uid, [read.result], READER, new_uid=generate_uid)
    kept_points = {
        i.tracking_uid for i in first.items if i.current.regions[0].graphic_type == "MULTIPOINT"
    }
    assert kept_points <= {i.tracking_uid for i in second.items}
    for item in second.items:
        finding = item.current
        if finding.regions[0].graphic_type == "MULTIPOINT":
            pts = finding.regions[0].coordinates
            region = replace(finding.regions[0], coordinates=pts[1:])
            second.modify(item.tracking_uid, replace(finding, regions=(region,)))
        elif finding.regions[0].coordinates[0] == ADDED_REGION[0]:  # the reader's own
            coords = ((90.0, 90.0), *finding.regions[0].coordinates[1:])
            region = replace(finding.regions[0], coordinates=coords)
            second.modify(item.tracking_uid, replace(finding, regions=(region,)))
        else:
            second.confirm(item.tracking_uid)
    (again,) = second.assessments()
    twice = build_edited_ann(
        again, edited, series_instance_uid=generate_uid(), sop_instance_uid=generate_uid()
    )
    back = read_bulk_annotations(twice)
    assert back.result.predecessor_uids == (str(edited.SOPInstanceUID),)
    labels = sorted(g.label for g in back.groups)
    assert labels == sorted(
        [
            f"Tumor region{EDITED}",
            f"Ki-67 nucleus positive{EDITED}",
            f"Ki-67 nucleus negative{EDITED}",
            f"{NEOPLASM.meaning}{ADDED}",
        ]
    )
    gen = {
        str(g.AnnotationGroupLabel): str(g.AnnotationGroupGenerationType)
        for g in twice.AnnotationGroupSequence
    }
    assert gen[f"{NEOPLASM.meaning}{ADDED}"] == "MANUAL"
    assert gen[f"Ki-67 nucleus positive{EDITED}"] == "SEMIAUTOMATIC"
    assert {g.positive_fraction for g in back.groups if g.is_points} != {None}
    assert ann_errors(write(twice, tmp_path / "twice.dcm")) == []
