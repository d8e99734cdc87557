"""The reader's assessment SR and edited SR: outside validators and round trips.

Every variant (all confirmed; rejected with reasons; modified in region, type/site,
measurement and urgency; a finding added; everything rejected) is written to
disk and checked with dciodvfy, pixelmed and dsrdump, then read back with
``read_assessment`` / ``read_ai_result`` and compared with what was decided.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.domain import (
    AIResult,
    Assessment,
    Code,
    Decision,
    Finding,
    Measurement,
    Reader,
    Region,
    Urgency,
    Verdict,
)
from app.errors import ResultParseError
from app.results import codes
from app.results.assessment_reader import is_assessment_sr, read_assessment
from app.results.assessment_writer import build_assessment_sr
from app.results.edited_sr import build_edited_sr
from app.results.sr_reader import read_ai_result
from app.results.sr_writer import build_ai_result_sr
from app.review.session import READER_ALGORITHM
from tests.support.dicom_data import ALGO, image
from tests.support.validators import dciodvfy, dsrdump, pixelmed, write

READER = Reader("rad17", "Doe^Jane", "General Hospital", "Radiologist")
T0 = datetime(2025, 3, 4, 8, 15, 30, tzinfo=UTC)
R = codes.REJECT_REASONS


def _uid(name: str) -> str:
    return generate_uid(entropy_srcs=[f"assessment-test-{name}"])


def _square(img: Dataset, x: float, y: float, side: float = 20.0) -> Region:
    points = ((x, y), (x + side, y), (x + side, y + side), (x, y))
    return Region("POLYLINE", points, referenced_sop_uid=str(img.SOPInstanceUID))


@pytest.fixture(scope="module")
def img() -> Dataset:
    return image("assess", prefix="aira")


@pytest.fixture(scope="module")
def ai_sr(img: Dataset) -> Dataset:
    """An AI SR with four findings (same region kind, so pixelmed checks every group)."""
    specs = [
        ("f1", codes.INTRACRANIAL_HEMORRHAGE, codes.BRAIN, Urgency.CRITICAL, 0.95, ()),
        ("f2", codes.NODULE, codes.BRAIN, Urgency.ROUTINE, 0.6, ()),
        (
            "f3",
            codes.MASS,
            codes.BRAIN,
            Urgency.URGENT,
            0.8,
            (Measurement(codes.AREA, 42.5, codes.SQUARE_MILLIMETER),),
        ),
        ("f4", codes.INTRACRANIAL_HEMORRHAGE, None, Urgency.URGENT, None, ()),
    ]
    findings = [
        Finding(
            tracking_uid=_uid(name),
            finding=finding,
            site=site,
            certainty=certainty,
            urgency=urgency,
            algorithm=ALGO,
            regions=(_square(img, 10.0 * i, 12.0 * i),),
            measurements=measurements,
            source_sop_uid="",
            tracking_id=f"AI {name}",
        )
        for i, (name, finding, site, urgency, certainty, measurements) in enumerate(specs)
    ]
    return build_ai_result_sr(
        [img],
        ALGO,
        findings,
        series_instance_uid=_uid("ai-series"),
        sop_instance_uid=_uid("ai-sr"),
        content_datetime=datetime(2025, 3, 4, 7, 0),
    )


@pytest.fixture(scope="module")
def ai(ai_sr: Dataset) -> AIResult:
    result = read_ai_result(ai_sr)
    assert result.readable and len(result.findings) == 4
    return result


# -- the variants ------------------------------------------------------------------
Variant = Callable[[AIResult, Dataset], tuple[list[Decision], dict[str, list[Code]]]]


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _confirmed(ai: AIResult, img: Dataset) -> tuple[list[Decision], dict[str, list[Code]]]:
    decisions = [
        Decision(f.tracking_uid, Verdict.CONFIRMED, f, decided_at=_at(i))
        for i, f in enumerate(ai.findings)
    ]
    return decisions, {}


def _rejected(ai: AIResult, img: Dataset) -> tuple[list[Decision], dict[str, list[Code]]]:
    f1, f2, f3, f4 = ai.findings
    decisions = [
        Decision(
            f1.tracking_uid, Verdict.REJECTED, f1, R["false_positive"], "calcification", _at(1)
        ),
        Decision(f2.tracking_uid, Verdict.REJECTED, f2, R["poor_image_quality"], "", _at(2)),
        Decision(f3.tracking_uid, Verdict.REJECTED, f3, R["other"], "old scar, see 2019", _at(3)),
        Decision(f4.tracking_uid, Verdict.CONFIRMED, f4, comment="agree", decided_at=_at(4)),
    ]
    return decisions, {}


def _all_rejected(ai: AIResult, img: Dataset) -> tuple[list[Decision], dict[str, list[Code]]]:
    reasons = [
        R["duplicate"],
        R["wrong_location"],
        R["clinically_insignificant"],
        R["wrong_finding_type"],
    ]
    decisions = [
        Decision(f.tracking_uid, Verdict.REJECTED, f, reason, f"reason {i}", _at(i))
        for i, (f, reason) in enumerate(zip(ai.findings, reasons, strict=True))
    ]
    return decisions, {}


def _modified(ai: AIResult, img: Dataset) -> tuple[list[Decision], dict[str, list[Code]]]:
    f1, f2, f3, f4 = ai.findings
    moved = Region(
        "POLYLINE",
        tuple((x + 7.0, y + 3.5) for x, y in f1.regions[0].coordinates),
        referenced_sop_uid=str(img.SOPInstanceUID),
    )
    m1 = dataclasses.replace(f1, regions=(moved,))
    m2 = dataclasses.replace(f2, finding=codes.MASS, site=codes.LUNG)
    m3 = dataclasses.replace(
        f3, measurements=(Measurement(codes.AREA, 61.25, codes.SQUARE_MILLIMETER),)
    )
    m4 = dataclasses.replace(f4, urgency=Urgency.CRITICAL)
    decisions = [
        Decision(f1.tracking_uid, Verdict.MODIFIED, m1, comment="moved", decided_at=_at(1)),
        Decision(f2.tracking_uid, Verdict.MODIFIED, m2, decided_at=_at(2)),
        Decision(f3.tracking_uid, Verdict.MODIFIED, m3, comment="remeasured", decided_at=_at(3)),
        Decision(f4.tracking_uid, Verdict.MODIFIED, m4, decided_at=_at(4)),
    ]
    changed = {
        f1.tracking_uid: [codes.IMAGE_REGION],
        f2.tracking_uid: [codes.FINDING, codes.FINDING_SITE],
        f3.tracking_uid: [codes.AREA],
        f4.tracking_uid: [codes.URGENCY],
    }
    return decisions, changed


def _added(ai: AIResult, img: Dataset) -> tuple[list[Decision], dict[str, list[Code]]]:
    f1, f2, f3, f4 = ai.findings
    new = Finding(
        tracking_uid=_uid("added"),
        finding=codes.NODULE,
        site=codes.BRAIN,
        certainty=None,
        urgency=Urgency.URGENT,
        algorithm=READER_ALGORITHM,
        regions=(_square(img, 70.0, 80.0, 8.0),),
        measurements=(Measurement(codes.DIAMETER, 6.0, codes.MILLIMETER),),
        source_sop_uid="",
        tracking_id="reader 1",
    )
    decisions = [
        Decision(f1.tracking_uid, Verdict.CONFIRMED, f1, decided_at=_at(1)),
        Decision(f2.tracking_uid, Verdict.REJECTED, f2, R["false_positive"], decided_at=_at(2)),
        Decision(f3.tracking_uid, Verdict.CONFIRMED, f3, decided_at=_at(3)),
        Decision(f4.tracking_uid, Verdict.CONFIRMED, f4, decided_at=_at(4)),
        Decision(new.tracking_uid, Verdict.ADDED, new, comment="missed by AI", decided_at=_at(5)),
    ]
    return decisions, {}


VARIANTS: dict[str, Variant] = {
    "confirmed": _confirmed,
    "rejected": _rejected,
    "all-rejected": _all_rejected,
    "modified": _modified,
    "added": _added,
}


def _assessment(ai: AIResult, decisions: list[Decision]) -> Assessment:
    return Assessment(ai.study_instance_uid, ai, tuple(decisions), READER, _at(10))


def _same_finding(read: Finding, want: Finding) -> None:
    assert read.tracking_uid == want.tracking_uid
    assert read.tracking_id == want.tracking_id
    assert read.finding.same_concept(want.finding)
    assert (read.site is None) == (want.site is None)
    assert read.site is None or want.site is None or read.site.same_concept(want.site)
    assert read.urgency is want.urgency
    assert (
        read.certainty == pytest.approx(want.certainty)
        if want.certainty
        else read.certainty is None
    )
    assert [(m.concept.value, m.value, m.unit.value) for m in read.measurements] == [
        (m.concept.value, m.value, m.unit.value) for m in want.measurements
    ]
    assert [r.coordinates for r in read.regions] == [r.coordinates for r in want.regions]
    assert [r.referenced_sop_uid for r in read.regions] == [
        r.referenced_sop_uid for r in want.regions
    ]
    assert read.algorithm.name == want.algorithm.name
    assert read.algorithm.version == want.algorithm.version


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_is_valid_and_reads_back(
    variant: str, ai: AIResult, ai_sr: Dataset, img: Dataset, tmp_path: Path
) -> None:
    decisions, changed = VARIANTS[variant](ai, img)
    assessment = _assessment(ai, decisions)
    edited_uid = _uid(f"edited-{variant}")
    edited = build_edited_sr(
        assessment, ai_sr, series_instance_uid=_uid("edited-series"), sop_instance_uid=edited_uid
    )
    record_sr = build_assessment_sr(
        assessment,
        ai_sr,
        series_instance_uid=_uid("assessment-series"),
        sop_instance_uid=_uid(f"assessment-{variant}"),
        edited_sr=edited,
    )

    # outside validators, on the files as stored
    edited_path = write(edited, tmp_path / f"{variant}-edited.dcm")
    record_path = write(record_sr, tmp_path / f"{variant}-assessment.dcm")
    assert dciodvfy(edited_path) == []
    assert dciodvfy(record_path) == []
    assert pixelmed(edited_path) == []
    assert pixelmed(record_path, root_template=None) == []
    dump = dsrdump(record_path)
    assert "AI Result Assessment" in dump and "Doe^Jane" in dump
    assert "Imaging Measurement Report" in dsrdump(edited_path)

    # the assessment SR reads back decision by decision
    assert is_assessment_sr(record_sr) and not is_assessment_sr(edited)
    record = read_assessment(record_sr)
    assert record.sop_instance_uid == record_sr.SOPInstanceUID
    assert record.study_uid == ai.study_instance_uid
    assert record.assessed_sop_uid == ai_sr.SOPInstanceUID
    assert record.assessed_series_uid == ai_sr.SeriesInstanceUID
    assert record.edited_sop_uid == edited_uid
    assert record.reader_name == READER.name
    assert record.reader_user_id == READER.user_id
    assert record.reader_organization == READER.organization
    assert record.reader_role is not None and record.reader_role.meaning == "Physician"
    assert record.completed_at == assessment.completed_at
    assert [d.tracking_uid for d in record.decisions] == [d.tracking_uid for d in decisions]
    for read, want in zip(record.decisions, decisions, strict=True):
        assert read.verdict is want.verdict
        assert (read.reason is None) == (want.reason is None)
        if want.reason is not None:
            assert read.reason is not None and read.reason.same_concept(want.reason)
            assert read.reason.meaning == want.reason.meaning
        assert read.comment == want.comment
        assert read.finding is not None and read.finding.same_concept(want.finding.finding)
        assert read.tracking_id == want.finding.tracking_id
        assert read.decided_at == want.decided_at
        assert [(c.value, c.scheme) for c in read.changed] == [
            (c.value, c.scheme) for c in changed.get(want.tracking_uid, [])
        ]

    # the edited SR is a new TID 1500 of the kept findings, superseding the AI SR
    result = read_ai_result(edited)
    assert result.readable and result.template == "TID1500"
    assert result.sop_instance_uid == edited_uid != ai_sr.SOPInstanceUID
    assert result.study_instance_uid == ai.study_instance_uid
    assert result.predecessor_uids == (str(ai_sr.SOPInstanceUID),)
    kept = assessment.kept_findings()
    assert [f.tracking_uid for f in result.findings] == [f.tracking_uid for f in kept]
    for read_finding, want_finding in zip(result.findings, kept, strict=True):
        _same_finding(read_finding, want_finding)
    assert edited.PatientID == ai_sr.PatientID
    assert edited.StudyInstanceUID == ai_sr.StudyInstanceUID


def test_observer_contexts(ai: AIResult, ai_sr: Dataset, img: Dataset) -> None:
    decisions, _ = _added(ai, img)
    edited = build_edited_sr(
        _assessment(ai, decisions), ai_sr, series_instance_uid=_uid("s"), sop_instance_uid=_uid("e")
    )
    context = {
        item.ConceptNameCodeSequence[0].CodeMeaning: item
        for item in edited.ContentSequence
        if item.RelationshipType == "HAS OBS CONTEXT"
    }
    assert str(context["Person Observer Name"].PersonName) == READER.name
    assert context["Device Observer Name"].TextValue == ALGO.name
    read = read_ai_result(edited)
    assert read.findings[0].algorithm.manufacturer == ALGO.manufacturer
    assert read.findings[-1].algorithm.name == ""  # the added one: no TID 4019


def test_ai_sr_has_no_predecessors(ai: AIResult) -> None:
    assert ai.predecessor_uids == ()


def test_is_assessment_sr_is_cheap_and_strict(ai_sr: Dataset) -> None:
    assert not is_assessment_sr(ai_sr)
    assert not is_assessment_sr(Dataset())
    with pytest.raises(ResultParseError, match="not an AI result assessment"):
        read_assessment(ai_sr)


def _record(ai: AIResult, ai_sr: Dataset, img: Dataset) -> Dataset:
    decisions, _ = _rejected(ai, img)
    return build_assessment_sr(
        _assessment(ai, decisions), ai_sr, series_instance_uid=_uid("s"), sop_instance_uid=_uid("a")
    )


def _finding_containers(ds: Dataset) -> list[Dataset]:
    return [
        item
        for item in ds.ContentSequence
        if item.ConceptNameCodeSequence[0].CodeValue == codes.FINDING_ASSESSMENT.value
    ]


def _drop(container: Dataset, code: Code) -> None:
    container.ContentSequence = [
        c for c in container.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue != code.value
    ]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no-tracking-uid", "no Tracking UID"),
        ("no-verdict", "no verdict"),
        ("unknown-verdict", "unknown verdict"),
        ("no-assessed", "names no assessed"),
        ("no-observer", "no person observer"),
    ],
)
def test_malformed_assessment_raises(
    breakage: str, message: str, ai: AIResult, ai_sr: Dataset, img: Dataset
) -> None:
    ds = _record(ai, ai_sr, img)
    read_assessment(ds)  # intact, it reads
    container = _finding_containers(ds)[1]
    if breakage == "no-tracking-uid":
        _drop(container, codes.TRACKING_UID)
    elif breakage == "no-verdict":
        _drop(container, codes.VERDICT)
    elif breakage == "unknown-verdict":
        for item in container.ContentSequence:
            if item.ConceptNameCodeSequence[0].CodeValue == codes.VERDICT.value:
                item.ConceptCodeSequence[0].CodeValue = "MAYBE"
    elif breakage == "no-assessed":
        _drop(ds, codes.ASSESSED_RESULT)
    elif breakage == "no-observer":
        _drop(ds, codes.PERSON_OBSERVER_NAME)
    with pytest.raises(ResultParseError, match=message):
        read_assessment(ds)


def test_writers_refuse_input_that_does_not_fit(ai: AIResult, ai_sr: Dataset, img: Dataset) -> None:
    decisions, _ = _confirmed(ai, img)
    good = _assessment(ai, decisions)
    kw = {"series_instance_uid": _uid("s"), "sop_instance_uid": _uid("x")}
    other_sr = copy.deepcopy(ai_sr)
    other_sr.SOPInstanceUID = _uid("another-sr")
    for build in (build_assessment_sr, build_edited_sr):
        with pytest.raises(ValueError, match="not the assessed AI result"):
            build(good, other_sr, **kw)
        undecided = [dataclasses.replace(decisions[0], verdict=Verdict.UNDECIDED), *decisions[1:]]
        with pytest.raises(ValueError, match="undecided"):
            build(_assessment(ai, undecided), ai_sr, **kw)
        stranger = dataclasses.replace(decisions[0].finding, tracking_uid=_uid("unknown"))
        wrong = [
            dataclasses.replace(decisions[0], tracking_uid=stranger.tracking_uid, finding=stranger)
        ]
        with pytest.raises(ValueError, match="not a finding of the assessed"):
            build(_assessment(ai, wrong), ai_sr, **kw)
    with pytest.raises(ValueError, match="sop_instance_uid must be new"):
        build_edited_sr(
            good, ai_sr, series_instance_uid=_uid("s"), sop_instance_uid=str(ai_sr.SOPInstanceUID)
        )


def test_added_finding_on_another_image_needs_its_header(
    ai: AIResult, ai_sr: Dataset, img: Dataset, tmp_path: Path
) -> None:
    other = copy.deepcopy(img)
    other.SeriesInstanceUID = _uid("other-series")
    other.SOPInstanceUID = _uid("other-image")
    decisions, _ = _added(ai, img)
    added = decisions[-1]
    moved = dataclasses.replace(added.finding, regions=(_square(other, 5.0, 5.0),))
    decisions[-1] = dataclasses.replace(added, finding=moved)
    assessment = _assessment(ai, decisions)
    kw = {"series_instance_uid": _uid("s"), "sop_instance_uid": _uid("x")}
    with pytest.raises(ValueError, match="extra_evidence"):
        build_edited_sr(assessment, ai_sr, **kw)
    edited = build_edited_sr(assessment, ai_sr, extra_evidence=[other], **kw)
    assert dciodvfy(write(edited, tmp_path / "extra.dcm")) == []
    series = {
        s.SeriesInstanceUID
        for study in edited.CurrentRequestedProcedureEvidenceSequence
        for s in study.ReferencedSeriesSequence
    }
    assert series == {img.SeriesInstanceUID, other.SeriesInstanceUID}
    (read_added,) = [
        f for f in read_ai_result(edited).findings if f.tracking_uid == moved.tracking_uid
    ]
    assert read_added.regions[0].referenced_sop_uid == other.SOPInstanceUID
