"""Durable write-back: the SQLite outbox, the STOW-RS sender and its retry/park policy."""

from app.delivery.outbox import Outbox, OutboxError, OutboxItem, OutboxStatus, OutgoingObject

__all__ = ["Outbox", "OutboxError", "OutboxItem", "OutboxStatus", "OutgoingObject"]
