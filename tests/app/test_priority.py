"""The worklist score: each term explained, critical first, waiting and order priority count."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.domain import AIResult, AIStatus, Algorithm, Code, Finding, StudyRef, Urgency
from app.settings import WorklistWeights
from app.worklist.priority import format_waiting, score_study

NOW = datetime(2026, 11, 28, 12, 0, 0)
ALGO = Algorithm("ICH Detect", "2.1.0", "Demo AI Labs")


def _finding(
    urgency: Urgency, certainty: float | None, meaning: str = "Intracranial hemorrhage"
) -> Finding:
    return Finding(
        tracking_uid="1.2.3",
        finding=Code("1386000", "SCT", meaning),
        site=None,
        certainty=certainty,
        urgency=urgency,
        algorithm=ALGO,
        regions=(),
        measurements=(),
        source_sop_uid="1.2.9",
    )


def _result(*findings: Finding, readable: bool = True) -> AIResult:
    return AIResult("1.2.9", "1.2.8", "1.2.7", "TID1500", ALGO, tuple(findings), readable=readable)


def _study(minutes: float, order: str = "") -> StudyRef:
    return StudyRef("1.2.7", study_datetime=NOW - timedelta(minutes=minutes), order_priority=order)


def test_critical_reason_reads_like_the_spec() -> None:
    s = score_study(
        _study(42),
        AIStatus.DONE,
        [_result(_finding(Urgency.CRITICAL, 0.93))],
        WorklistWeights(),
        NOW,
    )
    assert s.reason == "Critical AI finding: intracranial hemorrhage, 0.93 · waiting 42 min"
    assert s.critical
    assert {t.name for t in s.terms} == {"urgency", "certainty", "waiting"}
    assert s.total == sum(t.points for t in s.terms)


def test_critical_outranks_routine_waiting_long() -> None:
    w = WorklistWeights()
    critical = score_study(
        _study(5), AIStatus.DONE, [_result(_finding(Urgency.CRITICAL, 0.6))], w, NOW
    )
    routine = score_study(
        _study(600), AIStatus.DONE, [_result(_finding(Urgency.ROUTINE, 0.99))], w, NOW
    )
    assert critical.total > routine.total


def test_weights_are_settings() -> None:
    w = WorklistWeights(critical=0, routine=500)
    critical = score_study(
        _study(5), AIStatus.DONE, [_result(_finding(Urgency.CRITICAL, 0.6))], w, NOW
    )
    routine = score_study(
        _study(5), AIStatus.DONE, [_result(_finding(Urgency.ROUTINE, 0.6))], w, NOW
    )
    assert routine.total > critical.total


def test_order_priority_and_statuses() -> None:
    w = WorklistWeights()
    stat = score_study(_study(10, "STAT"), AIStatus.NONE, [], w, NOW)
    plain = score_study(_study(10), AIStatus.NONE, [], w, NOW)
    assert stat.total > plain.total and "order STAT" in stat.reason
    assert plain.reason == "No AI result · waiting 10 min"
    nothing = score_study(_study(10), AIStatus.DONE, [_result()], w, NOW)
    assert nothing.reason.startswith("AI: no finding") and not nothing.critical
    bad = score_study(_study(10), AIStatus.UNREADABLE, [_result(readable=False)], w, NOW)
    assert bad.reason.startswith("AI result unreadable") and bad.total > plain.total


def test_top_finding_and_more_count() -> None:
    s = score_study(
        _study(0),
        AIStatus.DONE,
        [_result(_finding(Urgency.ROUTINE, 0.99, "Nodule"), _finding(Urgency.URGENT, 0.5, "Mass"))],
        WorklistWeights(),
        NOW,
    )
    assert s.reason.startswith("Urgent AI finding: mass, 0.50 (+1 more)")


def test_waiting_text() -> None:
    assert format_waiting(5) == "waiting 5 min"
    assert format_waiting(125) == "waiting 2 h 5 min"
    assert format_waiting(60 * 24 * 3) == "waiting 3 d"
