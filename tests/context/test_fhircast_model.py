"""Parsing FHIRcast STU3 messages and following rules, without a hub (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.context.fhircast_config import backoff_delay, config_from_settings
from app.context.fhircast_follow import ContextFollower
from app.context.fhircast_model import (
    ConnectionState,
    ContextChange,
    FhircastError,
    FhircastStatus,
    context_change,
    current_context_change,
    heartbeat_period,
    parse_notification,
    parse_timestamp,
    study_uid_of,
)
from app.errors import ConfigError
from app.settings import FhircastSettings, Settings
from tests.support.fhircast_hub import (
    PATIENT_ID,
    patient_entry,
    report_context,
    study_context,
    study_resource,
)

UID = "1.2.826.0.1.3680043.8.498.77"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-01-08T01:37:05.14", datetime(2018, 1, 8, 1, 37, 5, 140000, tzinfo=UTC)),
        ("2021-05-19T10:24:58.614989800Z", datetime(2021, 5, 19, 10, 24, 58, 614989, tzinfo=UTC)),
        ("2019-09-10T16:58:45+02:00", datetime(2019, 9, 10, 14, 58, 45, tzinfo=UTC)),
    ],
)
def test_timestamps_in_the_forms_hubs_send(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_unreadable_timestamp_is_none() -> None:
    assert parse_timestamp("2023-04-01T011:03:04.08") is None  # sic, from a spec example
    assert parse_timestamp(None) is None


def test_study_uid_from_urn_oid_and_bad_uids_refused() -> None:
    assert study_uid_of(study_resource(UID)) == UID
    bad = {"identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.03.x"}]}
    assert study_uid_of(bad) is None
    assert study_uid_of({"identifier": [{"system": "other", "value": UID}]}) is None


def test_imagingstudy_open_maps_uid_accession_and_opaque_patient() -> None:
    change = context_change("imagingstudy-OPEN", study_context(UID, "A-77"), event_id="e1")
    assert change is not None
    assert (change.kind, change.anchor, change.hub_event) == (
        "open",
        "ImagingStudy",
        "ImagingStudy-open",
    )
    assert (change.study_uid, change.accession, change.patient_ref) == (
        UID,
        "A-77",
        f"Patient/{PATIENT_ID}",
    )
    assert "A-77" not in repr(change) and PATIENT_ID not in repr(change)


def test_diagnosticreport_accession_from_the_order_and_several_studies() -> None:
    context = report_context("r1", UID, "A-1")
    second = "1.2.826.0.1.3680043.8.498.78"
    context.append({"key": "study", "resource": study_resource(second)})
    change = context_change("DiagnosticReport-open", context)
    assert change is not None
    assert (change.report_id, change.study_uid, change.study_uids) == ("r1", UID, (UID, second))
    assert change.accession == "A-1"


def test_select_with_resources_array_and_other_events() -> None:
    context = [
        {"key": "report", "resource": {"resourceType": "DiagnosticReport", "id": "r2"}},
        {"key": "select", "resources": [{"resourceType": "Observation", "id": "o9"}]},
    ]
    change = context_change("DiagnosticReport-select", context)
    assert change is not None and (change.report_id, change.selected) == ("r2", ("Observation/o9",))
    assert context_change("Patient-open", [patient_entry()]) is None
    assert context_change("syncerror", []) is None


def test_notification_fields_and_errors() -> None:
    note = parse_notification(
        {"timestamp": "2024-01-01T00:00:00Z", "id": "x", "event": {"hub.event": "HEARTBEAT"}}
    )
    assert (note.id, note.event, note.context) == ("x", "heartbeat", [])
    with pytest.raises(FhircastError):
        parse_notification({"id": "x"})
    assert heartbeat_period([{"key": "period", "decimal": "10"}]) == 10.0
    assert heartbeat_period([{"key": "period", "decimal": "soon"}]) is None


def test_current_context_empty_and_opened() -> None:
    empty = current_context_change({"context.type": "", "context.versionId": "v", "context": []})
    assert (empty.kind, empty.source, empty.study_uid) == ("close", "current-context", None)
    opened = current_context_change(
        {"context.type": "ImagingStudy", "context.versionId": "v2", "context": study_context(UID)}
    )
    assert (opened.kind, opened.study_uid, opened.event_id) == ("open", UID, "v2")
    with pytest.raises(FhircastError):
        current_context_change(["not", "an", "object"])


def test_follower_ignores_a_close_of_another_study() -> None:
    seen: list[ContextChange] = []
    follower = ContextFollower(seen.append)
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert follower.on_event("ImagingStudy-open", study_context(UID), "1", t) == 200
    other = "1.2.826.0.1.3680043.8.498.99"
    follower.on_event("ImagingStudy-close", study_context(other), "2", t)
    assert [c.study_uid for c in seen] == [UID]
    follower.on_event("ImagingStudy-close", study_context(UID), "3", t)
    assert [c.kind for c in seen] == ["open", "close"]


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_delay(0, 1.0, 60.0, lambda: 0.0) == 0.5
    assert backoff_delay(0, 1.0, 60.0, lambda: 1.0) == 1.0
    assert backoff_delay(3, 1.0, 60.0, lambda: 1.0) == 8.0
    assert backoff_delay(50, 1.0, 60.0, lambda: 1.0) == 60.0
    assert backoff_delay(50, 1.0, 60.0, lambda: 0.0) == 30.0


def test_status_text_for_the_status_bar() -> None:
    status = FhircastStatus(ConnectionState.RECONNECTING, "hub unreachable", retry_in=4.2)
    assert status.text() == "FHIRcast: reconnecting in 4 s (hub unreachable)"
    assert FhircastStatus(ConnectionState.FAILED, "HTTP 401").text() == "FHIRcast: failed: HTTP 401"


def test_fhircast_settings_round_trip_and_checks() -> None:
    settings = Settings.from_json(
        {"fhircast": {"enabled": True, "hub_url": "https://hub/api", "topic": "t1"}}
    )
    assert settings.fhircast.token_source == ""
    assert Settings.from_json(settings.to_json()) == settings
    config = config_from_settings(settings.fhircast)
    assert (config.hub_url, config.topic, config.lease_seconds) == ("https://hub/api", "t1", 7200)
    with pytest.raises(ConfigError):
        FhircastSettings(enabled=True, hub_url="", topic="t")
    with pytest.raises(ConfigError):
        FhircastSettings(hub_url="ftp://hub")
    with pytest.raises(ConfigError):
        Settings.from_json({"fhircast": {"hub": "x"}})
    assert Settings().fhircast.enabled is False
