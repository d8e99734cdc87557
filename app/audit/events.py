"""What one audit entry says: who did what to which study, when, and how it ended.

Patient ID and name are allowed here and only here: the audit trail is the place for
patient-identifying facts; application logs never carry them (DESIGN.md §3.5).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.errors import AuditError


class EventKind(enum.StrEnum):
    """What happened. Stored by value; never rename a value once released."""

    STUDY_OPENED = "study_opened"
    FINDINGS_SHOWN = "findings_shown"
    DECISION = "decision"
    SUBMIT = "submit"
    SEND = "send"
    SEND_OUTCOME = "send_outcome"
    QUERY = "query"
    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"
    LOCK = "lock"
    UNLOCK = "unlock"
    CONTEXT_CHANGE = "context_change"
    EXPORT = "export"


class Outcome(enum.IntEnum):
    """How it ended; the values are PS3.15 A.5.1 EventOutcomeIndicator values."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(value: datetime) -> str:
    """UTC, fixed width, so stored times sort and compare as text."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise AuditError(f"audit time must be timezone-aware, got naive {value.isoformat()!r}")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuditEvent:
    """One thing a person (or the app on their behalf) did.

    ``user`` is the reader's id as the sign-in knows it. ``details`` must be
    JSON-serialisable (str keys; str, number, bool, None, list, dict values).
    """

    kind: EventKind
    user: str
    outcome: Outcome = Outcome.SUCCESS
    study_uid: str | None = None
    sop_uids: tuple[str, ...] = ()
    patient_id: str | None = None
    patient_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    time: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", EventKind(self.kind))
        except ValueError as exc:
            raise AuditError(f"audit event kind: unknown value {self.kind!r}") from exc
        try:
            object.__setattr__(self, "outcome", Outcome(self.outcome))
        except ValueError as exc:
            raise AuditError(
                f"audit event outcome must be 0, 4, 8 or 12, got {self.outcome!r}"
            ) from exc
        if not isinstance(self.user, str) or not self.user:
            raise AuditError(f"audit event user must be a non-empty string, got {self.user!r}")
        object.__setattr__(self, "sop_uids", tuple(self.sop_uids))
        format_time(self.time)  # raises on a naive time
        try:
            canonical_json(self.details)
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit event details are not JSON-serialisable: {exc}") from exc

    def to_record(self) -> dict[str, Any]:
        """The stored fields, in the form that is MAC'd (see ``canonical_json``)."""
        return {
            "time": format_time(self.time),
            "kind": self.kind.value,
            "user": self.user,
            "outcome": int(self.outcome),
            "study_uid": self.study_uid,
            "sop_uids": list(self.sop_uids),
            "patient_id": self.patient_id,
            "patient_name": self.patient_name,
            "details": json.loads(canonical_json(self.details)),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AuditEvent:
        return cls(
            kind=EventKind(record["kind"]),
            user=record["user"],
            outcome=Outcome(record["outcome"]),
            study_uid=record["study_uid"],
            sop_uids=tuple(record["sop_uids"]),
            patient_id=record["patient_id"],
            patient_name=record["patient_name"],
            details=record["details"],
            time=parse_time(record["time"]),
        )


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, no NaN, UTF-8 text kept as is."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
