"""ReviewSession (decisions, undo/redo, assessments) and ReviewStore (drafts) — no I/O but SQLite."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.domain import AIResult, Algorithm, Finding, Reader, Region, Urgency, Verdict
from app.errors import ReviewError
from app.results import codes
from app.review.session import READER_ALGORITHM, ReviewSession
from app.review.store import ReviewStore

ALGO = Algorithm("ICH Detect", "2.1.0", "Demo AI Labs")
READER = Reader("dr.house", "HOUSE^GREGORY", "Princeton-Plainsboro", "Radiologist")


def _finding(n: int, sr_uid: str = "1.2.3.100") -> Finding:
    return Finding(
        tracking_uid=f"1.2.3.{n}",
        finding=codes.INTRACRANIAL_HEMORRHAGE,
        site=codes.BRAIN,
        certainty=0.8,
        urgency=Urgency.CRITICAL,
        algorithm=ALGO,
        regions=(
            Region(
                "POLYLINE",
                ((1.0, 1.0), (5.0, 1.0), (5.0, 5.0), (1.0, 1.0)),
                referenced_sop_uid="1.2.3.9",
                referenced_sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
            ),
        ),
        measurements=(),
        source_sop_uid=sr_uid,
    )


def _result(sop_uid: str, *findings: Finding, template: str = "TID1500") -> AIResult:
    return AIResult(sop_uid, "1.2.3.200", "1.2.3.300", template, ALGO, tuple(findings))


def _session(*results: AIResult) -> ReviewSession:
    counter = itertools.count(1)
    ticks = itertools.count()
    start = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    return ReviewSession(
        "1.2.3.300",
        results or (_result("1.2.3.100", _finding(1), _finding(2), _finding(3)),),
        READER,
        new_uid=lambda: f"2.25.{next(counter)}",
        clock=lambda: start + timedelta(seconds=next(ticks)),
    )


def test_decisions_undo_redo_and_listeners() -> None:
    session = _session()
    calls: list[int] = []
    session.subscribe(lambda: calls.append(1))
    assert session.undecided() == ["1.2.3.1", "1.2.3.2", "1.2.3.3"]
    session.confirm("1.2.3.1")
    session.reject("1.2.3.2", codes.REJECT_REASONS["false_positive"], " calcification ")
    moved = replace(
        _finding(3),
        regions=(replace(_finding(3).regions[0], coordinates=((2.0, 2.0), (6.0, 2.0), (2.0, 2.0))),),
    )
    session.modify("1.2.3.3", moved)
    assert [i.verdict for i in session.items] == [
        Verdict.CONFIRMED, Verdict.REJECTED, Verdict.MODIFIED
    ]
    assert session.item("1.2.3.2").decision.comment == "calcification"  # type: ignore[union-attr]
    assert session.item("1.2.3.3").current == moved
    assert len(calls) == 3 and session.undecided() == []

    session.undo()
    assert session.verdict("1.2.3.3") is Verdict.UNDECIDED
    assert session.item("1.2.3.3").current == _finding(3)
    session.undo()
    assert session.verdict("1.2.3.2") is Verdict.UNDECIDED
    session.redo()
    assert session.verdict("1.2.3.2") is Verdict.REJECTED
    assert session.can_redo and session.redo_text() == "modify Intracranial hemorrhage"
    session.confirm("1.2.3.3")  # a new action drops the redo history
    assert not session.can_redo
    assert len(calls) == 7  # 3 decisions, 2 undos, 1 redo, 1 decision


def test_modify_back_to_original_is_a_confirmation_and_noop_is_not_recorded() -> None:
    session = _session()
    session.modify("1.2.3.1", replace(_finding(1), urgency=Urgency.ROUTINE))
    assert session.verdict("1.2.3.1") is Verdict.MODIFIED
    session.modify("1.2.3.1", _finding(1))
    assert session.verdict("1.2.3.1") is Verdict.CONFIRMED
    depth = len(session._undo)
    session.confirm("1.2.3.1")  # the same decision again: no new undo step
    assert len(session._undo) == depth


def test_rules_and_errors_name_the_problem() -> None:
    session = _session(
        _result("1.2.3.100", _finding(1)),
        _result("1.2.3.101", replace(_finding(9), editable=False), template="TID2000"),
    )
    with pytest.raises(ReviewError, match="read-only"):
        session.confirm("1.2.3.9")
    with pytest.raises(ReviewError, match="not in this study"):
        session.confirm("9.9.9")
    with pytest.raises(ReviewError, match="listed reasons"):
        session.reject("1.2.3.1", codes.PNEUMOTHORAX)
    with pytest.raises(ReviewError, match="needs a comment"):
        session.reject("1.2.3.1", codes.REJECT_REASONS["other"], "  ")
    with pytest.raises(ReviewError, match="certainty"):
        session.modify("1.2.3.1", replace(_finding(1), certainty=1.5))
    with pytest.raises(ReviewError, match="Tracking UID"):
        session.modify("1.2.3.1", _finding(2))
    with pytest.raises(ReviewError, match="nothing to undo"):
        session.undo()
    with pytest.raises(ReviewError, match="not decided"):
        session.assessments()
    assert [f.tracking_uid for f in session.read_only] == ["1.2.3.9"]


def test_added_findings_and_assessments_per_result() -> None:
    session = _session(
        _result("1.2.3.100", _finding(1)),
        _result("1.2.3.101", _finding(2, "1.2.3.101")),
    )
    region = Region("POLYLINE", ((0.0, 0.0), (3.0, 0.0), (0.0, 0.0)), "1.2.3.9", "1.2.840.1")
    uid = session.add(codes.NODULE, region, site=codes.LUNG)
    assert uid == "2.25.1" and session.verdict(uid) is Verdict.ADDED
    added = session.item(uid).current
    assert added.algorithm == READER_ALGORITHM and added.regions == (region,)
    with pytest.raises(ReviewError, match="added finding"):
        session.confirm(uid)
    session.modify(uid, replace(added, urgency=Urgency.URGENT))
    assert session.verdict(uid) is Verdict.ADDED  # stays added when changed
    session.confirm("1.2.3.1")
    session.reject("1.2.3.2", codes.REJECT_REASONS["duplicate"])
    first, second = session.assessments()
    assert first.assessed.sop_instance_uid == "1.2.3.100"
    assert [d.verdict for d in first.decisions] == [Verdict.CONFIRMED, Verdict.ADDED]
    assert first.changed and first.kept_findings()[1].urgency is Urgency.URGENT
    assert [d.verdict for d in second.decisions] == [Verdict.REJECTED]
    assert not second.changed and second.kept_findings() == ()
    assert first.reader == READER and first.completed_at.tzinfo is not None
    session.undo()
    session.undo()
    session.undo()
    session.undo()  # the add itself
    with pytest.raises(ReviewError):
        session.item(uid)


def test_draft_round_trip_restores_every_decision(tmp_path) -> None:
    store = ReviewStore(tmp_path / "journal.sqlite3")
    session = _session()
    session.confirm("1.2.3.1")
    session.reject("1.2.3.2", codes.REJECT_REASONS["wrong_location"], "left, not right")
    session.modify("1.2.3.3", replace(_finding(3), certainty=0.4))
    region = Region("POINT", ((4.0, 4.0),), "1.2.3.9", "1.2.840.1", referenced_frame=2)
    session.add(codes.MASS, region)
    store.save_draft(session.study_uid, READER.user_id, session.decisions())
    assert store.drafts(READER.user_id) == [session.study_uid]
    assert store.load_draft(session.study_uid, "someone.else") == []

    again = _session()
    assert again.restore(store.load_draft(session.study_uid, READER.user_id)) == 4
    assert again.decisions() == session.decisions()
    assert not again.can_undo
    store.save_draft(session.study_uid, READER.user_id, [])
    assert store.drafts(READER.user_id) == []
