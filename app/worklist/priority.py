"""The worklist's explainable score.

A study's score is a sum of named terms (AI urgency, AI certainty, time
waiting, the order's own priority, an unreadable AI result). Each term keeps the
words that explain it, so the reason line shown to the reader is exactly the
arithmetic that ranked the study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.domain import AIResult, AIStatus, Finding, ScoreTerm, StudyRef, Urgency
from app.settings import WorklistWeights

ORDER_PRIORITY_WORDS = {"STAT": "STAT", "HIGH": "high", "MEDIUM": "", "ROUTINE": "", "LOW": ""}


@dataclass(frozen=True)
class Score:
    total: float
    terms: tuple[ScoreTerm, ...]
    reason: str
    critical: bool
    waiting_minutes: float | None


def top_finding(findings: Sequence[Finding]) -> Finding | None:
    """The finding that ranks the study: most urgent, then most certain."""
    if not findings:
        return None
    return max(findings, key=lambda f: (f.urgency, f.certainty if f.certainty is not None else -1))


def waiting_minutes(study: StudyRef, now: datetime) -> float | None:
    if study.study_datetime is None:
        return None
    return max(0.0, (now - study.study_datetime).total_seconds() / 60.0)


def format_waiting(minutes: float) -> str:
    if minutes < 60:
        return f"waiting {int(minutes)} min"
    if minutes < 48 * 60:
        hours, rest = divmod(int(minutes), 60)
        return f"waiting {hours} h {rest} min" if rest else f"waiting {hours} h"
    return f"waiting {int(minutes // (24 * 60))} d"


def _meaning(finding: Finding) -> str:
    text = finding.finding.meaning or finding.finding.value
    # "Intracranial hemorrhage" -> "intracranial hemorrhage"; leave acronyms alone.
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return text


def score_study(
    study: StudyRef,
    status: AIStatus,
    results: Sequence[AIResult],
    weights: WorklistWeights,
    now: datetime,
) -> Score:
    findings = [f for r in results if r.readable for f in r.findings]
    top = top_finding(findings)
    terms: list[ScoreTerm] = []
    lead = ""
    if top is not None:
        points = {
            Urgency.CRITICAL: weights.critical,
            Urgency.URGENT: weights.urgent,
            Urgency.ROUTINE: weights.routine,
        }[top.urgency]
        label = top.urgency.label.capitalize()
        terms.append(ScoreTerm("urgency", points, f"{label} AI finding"))
        lead = f"{label} AI finding: {_meaning(top)}"
        if top.certainty is not None:
            terms.append(
                ScoreTerm("certainty", weights.certainty * top.certainty, f"{top.certainty:.2f}")
            )
            lead += f", {top.certainty:.2f}"
        others = len(findings) - 1
        if others > 0:
            lead += f" (+{others} more)"
    elif status is AIStatus.UNREADABLE:
        terms.append(ScoreTerm("unreadable", weights.unreadable, "AI result unreadable"))
        lead = "AI result unreadable"
    elif status is AIStatus.PENDING:
        lead = "AI result not retrieved yet"
    elif status is AIStatus.DONE:
        lead = "AI: no finding"
    else:
        terms.append(ScoreTerm("no_ai", weights.no_ai, "no AI result"))
        lead = "No AI result"
    if top is not None and status is AIStatus.UNREADABLE:
        lead += " · another AI result unreadable"

    parts = [lead]
    order = study.order_priority
    if order == "STAT":
        terms.append(ScoreTerm("order", weights.order_stat, "order STAT"))
        parts.append("order STAT")
    elif order == "HIGH":
        terms.append(ScoreTerm("order", weights.order_high, "order high priority"))
        parts.append("order high priority")

    minutes = waiting_minutes(study, now)
    if minutes is not None:
        hours = min(minutes / 60.0, weights.waiting_cap_hours)
        terms.append(ScoreTerm("waiting", weights.waiting_per_hour * hours, format_waiting(minutes)))
        parts.append(format_waiting(minutes))

    critical = any(f.urgency is Urgency.CRITICAL for f in findings)
    total = sum(t.points for t in terms)
    return Score(total, tuple(terms), " · ".join(parts), critical, minutes)
