"""Audit entries for the sender: every send and its outcome, committed with the item's state.

Kept apart from ``sender`` so the delivery code does not depend on the audit log;
the composition root (``app.main``, the CLI) wires them together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from app.audit.events import AuditEvent, EventKind
from app.audit.events import Outcome as AuditOutcome
from app.audit.log import AuditLog
from app.delivery.outbox import Extra, OutboxItem
from app.delivery.policy import Action, Outcome

_AUDIT_OUTCOME = {
    Action.SENT: AuditOutcome.SUCCESS,
    Action.RETRY: AuditOutcome.MINOR_FAILURE,
    Action.UNCLEAR: AuditOutcome.MINOR_FAILURE,
    Action.PARK: AuditOutcome.SERIOUS_FAILURE,
}


def send_audit_hook(
    audit: AuditLog, user: str, destination: str
) -> Callable[[OutboxItem, Outcome], Extra]:
    """A ``Sender(journal=...)`` hook writing one SEND_OUTCOME entry per attempt.

    ``audit`` must be on the outbox's database file (the journal), so the entry
    commits with the item's state; ``destination`` names the archive (its URL)."""

    def hook(item: OutboxItem, outcome: Outcome) -> Extra:
        event = AuditEvent(
            kind=EventKind.SEND_OUTCOME,
            user=user,
            outcome=_AUDIT_OUTCOME.get(outcome.action, AuditOutcome.MINOR_FAILURE),
            study_uid=item.study_instance_uid,
            sop_uids=(item.sop_instance_uid,),
            details={
                "outbox_item": item.id,
                "label": item.label,
                "action": outcome.action.name.lower(),
                "reason": outcome.reason,
                "server_message": outcome.server_message[:300],
                "attempt": item.attempts + 1,
                "destination": destination,
                "sop_class_uid": item.sop_class_uid,
            },
        )

        def write(conn: sqlite3.Connection) -> None:
            audit.append_in(conn, [event])

        return write

    return hook
