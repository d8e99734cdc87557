"""What a reader decided about AI findings: plain models, no I/O, no Qt.

A ``Decision`` is the reader's verdict on one finding, keyed by its Tracking UID.
``Assessment`` is a whole study's review as it is submitted: the AI result that
was assessed, one decision per AI finding, the findings the reader added, who
and when. The SR writers (``app.results.assessment_writer``, ``edited_sr``) turn
an ``Assessment`` into DICOM; ``app.review`` builds one from the reader's actions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.models import AIResult, Code, Finding


class Verdict(enum.StrEnum):
    """A finding's review state. Stored by value; never rename a value once released."""

    UNDECIDED = "undecided"
    CONFIRMED = "confirmed"  # the AI finding is right as it is
    REJECTED = "rejected"  # the AI finding is wrong (with a coded reason)
    MODIFIED = "modified"  # right in substance, corrected by the reader
    ADDED = "added"  # a finding the AI missed, added by the reader


@dataclass(frozen=True)
class Reader:
    """The person who reviews: ``user_id`` as the sign-in knows it, ``name`` as a
    DICOM person name (``FAMILY^GIVEN``) for the SR's person observer."""

    user_id: str
    name: str
    organization: str = ""
    role: str = ""


@dataclass(frozen=True)
class Decision:
    """The reader's verdict on one finding.

    ``finding`` is the finding as the reader left it: the AI's own for CONFIRMED
    and REJECTED, the corrected one for MODIFIED, the new one for ADDED (its
    Tracking UID is new). ``reason`` is one of ``app.results.codes.REJECT_REASONS``
    for REJECTED; ``comment`` is free text for any verdict.
    """

    tracking_uid: str
    verdict: Verdict
    finding: Finding
    reason: Code | None = None
    comment: str = ""
    decided_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "tracking_uid": self.tracking_uid,
            "verdict": self.verdict.value,
            "reason": self.reason.to_json() if self.reason else None,
            "comment": self.comment,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "finding": self.finding.to_json(),
        }


@dataclass(frozen=True)
class Assessment:
    """One study's review, as submitted.

    ``assessed`` is the AI result (SR) the decisions are about; ``decisions``
    holds one decision per AI finding of it (none UNDECIDED) followed by the
    ADDED ones. ``completed_at`` is when the reader submitted.
    """

    study_uid: str
    assessed: AIResult
    decisions: tuple[Decision, ...]
    reader: Reader
    completed_at: datetime

    @property
    def changed(self) -> bool:
        """True when an edited SR is needed: something was modified or added."""
        return any(d.verdict in (Verdict.MODIFIED, Verdict.ADDED) for d in self.decisions)

    def kept_findings(self) -> tuple[Finding, ...]:
        """The findings of the edited SR: confirmed, modified and added ones (rejected
        ones are left out; the assessment SR keeps the record of them)."""
        return tuple(d.finding for d in self.decisions if d.verdict != Verdict.REJECTED)


@dataclass(frozen=True)
class RecordedDecision:
    """One finding's verdict as read back from an assessment SR."""

    tracking_uid: str
    verdict: Verdict
    reason: Code | None = None
    comment: str = ""
    finding: Code | None = None  # the finding type as the reader left it
    tracking_id: str = ""
    decided_at: datetime | None = None
    changed: tuple[Code, ...] = ()  # concepts of what a modification changed


@dataclass(frozen=True)
class AssessmentRecord:
    """An assessment SR as read back (``app.results.assessment_reader``): which AI
    result (SR) it assesses, who assessed it and when, and the verdict per finding."""

    sop_instance_uid: str
    series_instance_uid: str
    study_uid: str
    assessed_sop_uid: str
    assessed_series_uid: str
    reader_name: str
    completed_at: datetime | None
    decisions: tuple[RecordedDecision, ...]
    reader_user_id: str = ""
    reader_organization: str = ""
    reader_role: Code | None = None
    edited_sop_uid: str = ""  # the edited SR it points to, if any

    def decision(self, tracking_uid: str) -> RecordedDecision | None:
        for d in self.decisions:
            if d.tracking_uid == tracking_uid:
                return d
        return None
