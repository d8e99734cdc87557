"""Audit entries for the context changes the app follows (issue 7, item 4).

Each followed change becomes one ``context_change`` entry in the audit trail. The
kind is not exported as a PS3.15 A.5 message: following a study is not itself an
access to its instances (opening it logs ``study_opened``), and no DICOM audit event
describes a context switch; the entry stays in the tamper-evident chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.audit import AuditEvent, AuditLog, EventKind
from app.context.fhircast_model import ContextChange


def context_audit_event(change: ContextChange, user: str) -> AuditEvent:
    """The audit event for one followed change. The patient is kept only as the hub's
    opaque reference, in ``details`` (the audit trail may hold patient facts; logs may not)."""
    details: dict[str, Any] = {
        "source": "fhircast",
        "hub_event": change.hub_event,
        "change": change.kind,
        "origin": change.source,
    }
    optional = {
        "anchor": change.anchor,
        "event_id": change.event_id,
        "event_time": change.timestamp.isoformat() if change.timestamp else None,
        "accession": change.accession,
        "report_id": change.report_id,
        "patient_ref": change.patient_ref,
    }
    details.update({k: v for k, v in optional.items() if v is not None})
    if len(change.study_uids) > 1:
        details["study_uids"] = list(change.study_uids)
    if change.kind == "select":
        details["selected"] = list(change.selected)
    return AuditEvent(
        kind=EventKind.CONTEXT_CHANGE, user=user, study_uid=change.study_uid, details=details
    )


def audit_context_change(log: AuditLog, user: str, change: ContextChange) -> int:
    """Append one ``context_change`` entry; returns its sequence number."""
    return log.append(context_audit_event(change, user))


def context_audit(log: AuditLog, user: str | Callable[[], str]) -> Callable[[ContextChange], None]:
    """The ``audit`` callback for ``FhircastSubscriber``: ``user`` may be a callable so the
    entry names whoever is signed in when the change arrives."""

    def record(change: ContextChange) -> None:
        audit_context_change(log, user() if callable(user) else user, change)

    return record
