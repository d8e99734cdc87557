"""Append-only, tamper-evident audit trail and its DICOM PS3.15 A.5 export (Qt-free)."""

from app.audit.events import AuditEvent, EventKind, Outcome
from app.audit.log import AuditEntry, AuditLog, VerifyResult

__all__ = ["AuditEntry", "AuditEvent", "AuditLog", "EventKind", "Outcome", "VerifyResult"]
