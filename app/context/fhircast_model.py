"""What a FHIRcast (STU3) message says, as plain values the UI can follow.

Parses event notifications (spec 2-5), the get-current-context response (2-9) and the
context of the ImagingStudy-* (3-5-x) and DiagnosticReport-* (3-6-x) events into a
``ContextChange``. Patient data is kept only as an opaque FHIR reference
(``Patient/<id>``), never as a name or identifier, and is left out of ``repr`` so a
logged change cannot leak it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from app.context.launch import LaunchError, check_study_uid
from app.errors import CompanionError

DICOM_UID_SYSTEM = "urn:dicom:uid"
ACCESSION_TYPE_CODE = "ACSN"  # HL7 v2-0203 identifier type "Accession ID"
HEARTBEAT = "heartbeat"
CURRENT_CONTEXT = "get-current-context"

ChangeKind = Literal["open", "close", "select"]
AnchorType = Literal["ImagingStudy", "DiagnosticReport"]


class FhircastError(CompanionError):
    """The hub cannot be reached or answered with something the subscriber cannot use."""


class HubAuthError(FhircastError):
    """The hub refused the bearer token (HTTP 401/403): retrying will not help until sign-in."""


class SubscriptionDenied(FhircastError):
    """The hub sent a subscription denial (spec 2-4) over the websocket."""


class ConnectionState(enum.StrEnum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    SUBSCRIBED = "subscribed"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


@dataclass(frozen=True)
class FhircastStatus:
    """For a status-bar indicator. ``retry_in`` is set while RECONNECTING."""

    state: ConnectionState
    message: str = ""
    retry_in: float | None = None

    def text(self) -> str:
        if self.state is ConnectionState.RECONNECTING and self.retry_in is not None:
            return f"FHIRcast: reconnecting in {self.retry_in:.0f} s ({self.message})"
        if self.state is ConnectionState.FAILED:
            return f"FHIRcast: failed: {self.message}"
        return f"FHIRcast: {self.state.value}"


@dataclass(frozen=True)
class ContextChange:
    """One context change the app follows.

    ``kind`` is "open", "close" or "select" (the suffix of the event name). For the
    context fetched on (re)connect ``source`` is "current-context", ``hub_event`` is
    "get-current-context" and ``kind`` is "open", or "close" when nothing is open.
    ``study_uid`` is the Study Instance UID of the (first) study in context;
    ``study_uids`` lists all of them; ``selected`` holds the references a
    DiagnosticReport-select made (empty: selection cleared).
    """

    kind: ChangeKind
    hub_event: str
    anchor: AnchorType | None = None
    study_uid: str | None = None
    accession: str | None = field(default=None, repr=False)
    report_id: str | None = None
    study_uids: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    patient_ref: str | None = field(default=None, repr=False)
    event_id: str | None = None
    timestamp: datetime | None = None
    source: Literal["event", "current-context"] = "event"

    def same_context(self, other: ContextChange | None) -> bool:
        """True when ``other`` leaves the app showing the same thing as this change."""
        if other is None:
            return False
        return (self.kind, self.anchor, self.study_uid, self.report_id, self.selected) == (
            other.kind,
            other.anchor,
            other.study_uid,
            other.report_id,
            other.selected,
        )


@dataclass(frozen=True)
class Notification:
    """An event notification (spec 2-5): ``event`` is the lower-cased event name."""

    id: str
    timestamp: datetime | None
    event: str
    topic: str
    context: list[dict[str, Any]]


_FRACTION = re.compile(r"^(.*T\d{1,2}:\d{2}:\d{2})(\.\d+)?(.*)$")


def parse_timestamp(text: object) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime; None when it cannot be read.

    Hubs send anything from no fraction to nanoseconds and sometimes no zone (the
    spec says UTC), so the fraction is cut to microseconds and a missing zone is UTC.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    match = _FRACTION.match(value)
    if match:
        value = match.group(1) + (match.group(2) or "")[:7] + match.group(3)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_notification(message: dict[str, Any]) -> Notification:
    """The fields of an event notification; ``FhircastError`` when one is missing."""
    event = message.get("event")
    event_id = message.get("id")
    if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
        raise FhircastError("event notification without an 'id' or an 'event' object")
    name = event.get("hub.event")
    if not isinstance(name, str) or not name:
        raise FhircastError("event notification without 'event.hub.event'")
    context = event.get("context", [])
    if not isinstance(context, list):
        raise FhircastError("event notification whose 'event.context' is not an array")
    return Notification(
        id=event_id,
        timestamp=parse_timestamp(message.get("timestamp")),
        event=name.lower(),  # event names are case-insensitive (spec 2-3)
        topic=str(event.get("hub.topic", "")),
        context=[c for c in context if isinstance(c, dict)],
    )


def heartbeat_period(context: list[dict[str, Any]]) -> float | None:
    """The ``period`` (seconds) of a heartbeat event (spec 3-2-2), if it has one."""
    for entry in context:
        if entry.get("key") == "period":
            value = entry.get("decimal", entry.get("valueDecimal"))
            try:
                period = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return None
            return period if period > 0 else None
    return None


# -- context entries --------------------------------------------------------------------


def _resources(context: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Resources under ``key``: an entry holds a ``resource`` or a ``resources`` array."""
    found: list[dict[str, Any]] = []
    for entry in context:
        if entry.get("key") != key:
            continue
        if isinstance(entry.get("resource"), dict):
            found.append(entry["resource"])
        resources = entry.get("resources")
        if isinstance(resources, list):
            found.extend(r for r in resources if isinstance(r, dict))
    return found


def _references(context: list[dict[str, Any]], key: str) -> list[str]:
    """``Type/id`` strings under ``key``, whether given as resources or as references."""
    refs = [
        f"{r['resourceType']}/{r['id']}"
        for r in _resources(context, key)
        if isinstance(r.get("resourceType"), str) and isinstance(r.get("id"), str)
    ]
    for entry in context:
        if entry.get("key") != key:
            continue
        reference = entry.get("reference")
        items = reference if isinstance(reference, list) else [reference]
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("reference"), str):
                refs.append(item["reference"])
            elif isinstance(item, str):
                refs.append(item)
    return refs


def _has_type_code(identifier: dict[str, Any], code: str) -> bool:
    coding = (identifier.get("type") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("code") == code for c in coding)


def _identifiers(resource: dict[str, Any]) -> Iterable[dict[str, Any]]:
    ids = [i for i in resource.get("identifier") or [] if isinstance(i, dict)]
    for based_on in resource.get("basedOn") or []:  # R5 style: accession on the order
        if isinstance(based_on, dict) and isinstance(based_on.get("identifier"), dict):
            ids.append(based_on["identifier"])
    return ids


def study_uid_of(study: dict[str, Any]) -> str | None:
    """The Study Instance UID: the identifier with system ``urn:dicom:uid``."""
    for identifier in _identifiers(study):
        value = identifier.get("value")
        if identifier.get("system") == DICOM_UID_SYSTEM and isinstance(value, str):
            uid = value.removeprefix("urn:oid:").strip()
            try:
                return check_study_uid(uid)
            except LaunchError:
                return None
    return None


def accession_of(resource: dict[str, Any]) -> str | None:
    """The Accession Number: the identifier typed ACSN (on the resource or its order)."""
    for identifier in _identifiers(resource):
        value = identifier.get("value")
        if _has_type_code(identifier, ACCESSION_TYPE_CODE) and isinstance(value, str) and value:
            return value.strip()
    return None


def _patient_ref(context: list[dict[str, Any]], *resources: dict[str, Any]) -> str | None:
    refs = _references(context, "patient")
    if refs:
        return refs[0]
    for resource in resources:
        subject = resource.get("subject")
        if isinstance(subject, dict) and isinstance(subject.get("reference"), str):
            return str(subject["reference"])
    return None


def _id_of(ref: str | None) -> str | None:
    return ref.rsplit("/", 1)[-1] if ref else None


def context_change(
    event: str,
    context: list[dict[str, Any]],
    *,
    event_id: str | None = None,
    timestamp: datetime | None = None,
    source: Literal["event", "current-context"] = "event",
) -> ContextChange | None:
    """The change an ImagingStudy-*/DiagnosticReport-* event makes; None for other events."""
    anchor_name, _, suffix = event.lower().partition("-")
    if suffix not in ("open", "close", "select"):
        return None
    if anchor_name not in ("imagingstudy", "diagnosticreport"):
        return None
    kind: ChangeKind = suffix  # type: ignore[assignment]
    studies = _resources(context, "study")
    uids = tuple(u for u in (study_uid_of(s) for s in studies) if u)
    accession = next((a for a in (accession_of(s) for s in studies) if a), None)
    anchor: AnchorType = "ImagingStudy" if anchor_name == "imagingstudy" else "DiagnosticReport"
    common: dict[str, Any] = {
        "kind": kind,
        "anchor": anchor,
        # the spec's spelling, whatever case the hub used (names are case-insensitive)
        "hub_event": f"{anchor}-{kind}" if source == "event" else CURRENT_CONTEXT,
        "event_id": event_id,
        "timestamp": timestamp,
        "source": source,
    }
    if anchor_name == "imagingstudy" and kind != "select":
        return ContextChange(
            study_uid=uids[0] if uids else None,
            study_uids=uids,
            accession=accession,
            patient_ref=_patient_ref(context, *studies),
            **common,
        )
    if anchor_name == "diagnosticreport":
        reports = _resources(context, "report")
        report_ref = next(iter(_references(context, "report")), None)
        report = reports[0] if reports else {}
        return ContextChange(
            study_uid=uids[0] if uids else None,
            study_uids=uids,
            accession=accession or accession_of(report),
            report_id=_id_of(report_ref),
            selected=tuple(_references(context, "select")) if kind == "select" else (),
            patient_ref=_patient_ref(context, report, *studies),
            **common,
        )
    return None


def current_context_change(body: object) -> ContextChange:
    """The get-current-context response (spec 2-9) as an "open" change, or "close" if empty."""
    if not isinstance(body, dict):
        raise FhircastError("the hub's current context is not a JSON object")
    anchor = body.get("context.type") or ""
    context = body.get("context") or []
    if not isinstance(anchor, str) or not isinstance(context, list):
        raise FhircastError("the hub's current context has a bad 'context.type' or 'context'")
    version = body.get("context.versionId")
    version_id = version if isinstance(version, str) else None
    change = None
    if anchor and context:
        change = context_change(
            f"{anchor}-open",
            [c for c in context if isinstance(c, dict)],
            event_id=version_id,
            source="current-context",
        )
    return change or ContextChange(
        kind="close", hub_event=CURRENT_CONTEXT, event_id=version_id, source="current-context"
    )
