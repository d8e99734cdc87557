"""Composition of the FHIRcast subscriber from the settings (what app.main hands the UI)."""

from __future__ import annotations

from collections.abc import Callable

from app.audit import AuditLog
from app.context.fhircast import ContextChange, FhircastStatus, FhircastSubscriber
from app.context.fhircast_audit import context_audit
from app.context.fhircast_config import config_from_settings
from app.settings import Settings

SubscriberFactory = Callable[
    [Callable[[ContextChange], None], Callable[[FhircastStatus], None]], FhircastSubscriber
]


def fhircast_factory(
    settings: Settings,
    token: Callable[[], str | None],
    audit: AuditLog | None = None,
    user: str = "",
) -> SubscriberFactory | None:
    """A maker of the subscriber the UI starts, or None when FHIRcast is off.

    ``ConfigError`` when it is on but incomplete (no hub URL or topic)."""
    if not settings.fhircast.enabled:
        return None
    config = config_from_settings(settings.fhircast)
    record = context_audit(audit, user) if audit is not None else None

    def make(
        on_context: Callable[[ContextChange], None], on_status: Callable[[FhircastStatus], None]
    ) -> FhircastSubscriber:
        return FhircastSubscriber(
            config, token=token, on_context=on_context, on_status=on_status, audit=record
        )

    return make
