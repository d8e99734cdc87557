"""The FHIRcast subscriber against a hub, end to end over HTTP and websockets.

No FHIRcast hub can be installed on this machine, so these tests run a small hub that
follows the STU3 spec (tests/support/fhircast_hub.py: subscription checks and bearer
token, confirmation, denial, current context, event distribution, heartbeats, acks) on
loopback, and take it away or cut its websockets to test reconnection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.audit import AuditLog, EventKind
from app.context.fhircast import (
    DEFAULT_EVENTS,
    ConnectionState,
    ContextChange,
    FhircastConfig,
    FhircastStatus,
    FhircastSubscriber,
)
from app.context.fhircast_audit import context_audit
from tests.support.fhircast_hub import (
    PATIENT_FAMILY,
    PATIENT_ID,
    PATIENT_MRN,
    TOKEN,
    FhircastHub,
    free_port,
    report_context,
    select_context,
    study_context,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

UID_A = "1.2.826.0.1.3680043.8.498.101"
UID_B = "1.2.826.0.1.3680043.8.498.202"
UID_C = "1.2.826.0.1.3680043.8.498.303"


class Recorder:
    """Collects what the subscriber reports (on its own thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changes: list[ContextChange] = []
        self.statuses: list[FhircastStatus] = []

    def on_context(self, change: ContextChange) -> None:
        with self.lock:
            self.changes.append(change)

    def on_status(self, status: FhircastStatus) -> None:
        with self.lock:
            self.statuses.append(status)

    def states(self) -> list[ConnectionState]:
        with self.lock:
            return [s.state for s in self.statuses]

    def count(self, state: ConnectionState) -> int:
        return self.states().count(state)

    def last(self) -> FhircastStatus | None:
        with self.lock:
            return self.statuses[-1] if self.statuses else None


@pytest.fixture()
def hub() -> Iterator[FhircastHub]:
    h = FhircastHub().start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture()
def subscribers() -> Iterator[list[FhircastSubscriber]]:
    made: list[FhircastSubscriber] = []
    yield made
    for sub in made:
        sub.stop()


def make(
    hub: FhircastHub,
    made: list[FhircastSubscriber],
    token: Any = TOKEN,
    audit: Any = None,
    **config: Any,
) -> tuple[FhircastSubscriber, Recorder]:
    rec = Recorder()
    config.setdefault("backoff_initial", 0.2)
    config.setdefault("backoff_max", 1.0)
    config.setdefault("http_timeout", 3.0)
    sub = FhircastSubscriber(
        FhircastConfig(hub.url, hub.topic, **config),
        token=token if callable(token) else (lambda: token),
        on_context=rec.on_context,
        on_status=rec.on_status,
        audit=audit,
    )
    made.append(sub)
    return sub, rec


def subscribed(rec: Recorder, times: int = 1, timeout: float = 5.0) -> bool:
    return wait_until(lambda: rec.count(ConnectionState.SUBSCRIBED) >= times, timeout)


def n_changes(rec: Recorder, n: int, timeout: float = 5.0) -> list[ContextChange]:
    assert wait_until(lambda: len(rec.changes) >= n, timeout), rec.changes
    return list(rec.changes)


# -- subscribing ---------------------------------------------------------------------------


def test_subscribe_request_follows_the_spec_and_is_confirmed(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers, lease_seconds=600)
    sub.start()
    assert subscribed(rec), rec.statuses
    assert rec.states()[:2] == [ConnectionState.CONNECTING, ConnectionState.SUBSCRIBED]
    assert hub.refused == []
    form = hub.subscribe_requests[0]
    assert form["hub.channel.type"] == "websocket"
    assert form["hub.mode"] == "subscribe"
    assert form["hub.topic"] == hub.topic
    assert form["hub.events"].split(",") == list(DEFAULT_EVENTS)
    assert form["hub.lease_seconds"] == "600"
    assert "hub.channel.endpoint" not in form
    assert hub.ws_connects == 1
    assert "600" in rec.last().message  # the lease the hub's confirmation granted


def test_current_context_is_fetched_and_delivered_first(hub, subscribers) -> None:
    hub.publish("ImagingStudy-open", study_context(UID_A, "ACC-1"))  # before anyone subscribes
    sub, rec = make(hub, subscribers)
    sub.start()
    first = n_changes(rec, 1)[0]
    assert first.source == "current-context"
    assert first.hub_event == "get-current-context"
    assert (first.kind, first.anchor, first.study_uid, first.accession) == (
        "open",
        "ImagingStudy",
        UID_A,
        "ACC-1",
    )
    assert first.patient_ref == f"Patient/{PATIENT_ID}"
    assert hub.context_gets == 1
    hub.publish("ImagingStudy-open", study_context(UID_B))
    assert n_changes(rec, 2)[1].study_uid == UID_B
    assert sub.current is not None and sub.current.study_uid == UID_B


def test_empty_current_context_is_delivered_as_nothing_open(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)
    sub.start()
    first = n_changes(rec, 1)[0]
    assert (first.kind, first.source, first.study_uid, first.anchor) == (
        "close",
        "current-context",
        None,
        None,
    )


# -- events --------------------------------------------------------------------------------


def test_imagingstudy_open_then_close_are_followed_and_acked(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)
    sub.start()
    n_changes(rec, 1)
    opened = hub.publish("ImagingStudy-open", study_context(UID_A, "ACC-9"))
    change = n_changes(rec, 2)[1]
    assert (change.kind, change.study_uid, change.accession) == ("open", UID_A, "ACC-9")
    assert change.event_id == opened["id"]
    assert change.timestamp is not None and change.timestamp.tzinfo is not None
    closed = hub.publish("ImagingStudy-close", study_context(UID_A, "ACC-9"))
    change = n_changes(rec, 3)[2]
    assert (change.kind, change.anchor, change.study_uid) == ("close", "ImagingStudy", UID_A)
    assert wait_until(lambda: hub.acks_for(closed["id"]))
    assert hub.acks_for(opened["id"]) == [{"id": opened["id"], "status": 200}]
    assert hub.acks_for(closed["id"]) == [{"id": closed["id"], "status": 200}]


def test_diagnosticreport_open_select_close_are_mapped(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)
    sub.start()
    n_changes(rec, 1)
    hub.publish("DiagnosticReport-open", report_context("rpt-1", UID_B, "ACC-22"))
    opened = n_changes(rec, 2)[1]
    assert (opened.kind, opened.anchor, opened.report_id) == ("open", "DiagnosticReport", "rpt-1")
    assert (opened.study_uid, opened.study_uids, opened.accession) == (UID_B, (UID_B,), "ACC-22")
    hub.publish("DiagnosticReport-select", select_context("rpt-1", "Observation/obs-7"))
    selected = n_changes(rec, 3)[2]
    assert (selected.kind, selected.report_id, selected.selected) == (
        "select",
        "rpt-1",
        ("Observation/obs-7",),
    )
    assert selected.study_uid == UID_B  # the report's study, carried from the open event
    hub.publish("DiagnosticReport-select", select_context("rpt-1"))  # selection cleared
    assert n_changes(rec, 4)[3].selected == ()
    hub.publish("DiagnosticReport-close", report_context("rpt-1", UID_B))
    closed = n_changes(rec, 5)[4]
    assert (closed.kind, closed.report_id, closed.study_uid) == ("close", "rpt-1", UID_B)


def test_stale_and_duplicate_events_are_acked_but_not_followed(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)
    sub.start()
    n_changes(rec, 1)
    now = datetime.now(UTC)
    a = hub.publish("ImagingStudy-open", study_context(UID_A), timestamp=now.isoformat())
    n_changes(rec, 2)
    hub.send(a)  # the hub retries: same id
    old = (now - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")  # nanoseconds
    b = hub.publish("ImagingStudy-open", study_context(UID_B), timestamp=old)
    other = hub.publish("ImagingStudy-close", study_context(UID_C))  # not the followed study
    c = hub.publish("ImagingStudy-open", study_context(UID_C))
    n_changes(rec, 3)
    assert wait_until(lambda: hub.acks_for(c["id"]))
    assert [ch.study_uid for ch in rec.changes] == [None, UID_A, UID_C]
    assert len(hub.acks_for(a["id"])) == 2  # each delivery is answered
    assert hub.acks_for(b["id"]) == [{"id": b["id"], "status": 200}]
    assert hub.acks_for(other["id"]) == [{"id": other["id"], "status": 200}]


def test_a_retried_select_is_not_followed_twice(hub, subscribers) -> None:
    """A select changes something each time, so only its id shows it is a retry."""
    sub, rec = make(hub, subscribers)
    sub.start()
    n_changes(rec, 1)
    hub.publish("DiagnosticReport-open", report_context("rpt-3", UID_A))
    select = hub.publish("DiagnosticReport-select", select_context("rpt-3", "Observation/o2"))
    n_changes(rec, 3)
    hub.send(select)
    assert wait_until(lambda: len(hub.acks_for(select["id"])) == 2)
    assert [c.kind for c in rec.changes] == ["close", "open", "select"]


def test_a_failing_context_handler_is_answered_with_500(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)

    fetched: list[ContextChange] = []

    def broken(change: ContextChange) -> None:
        if change.source == "event":
            raise RuntimeError("UI trouble")
        fetched.append(change)

    sub._follower._deliver = broken  # the handler the UI would pass
    sub.start()
    assert subscribed(rec)
    # SUBSCRIBED comes before the current context is fetched. Publish only after that fetch
    # was delivered: published earlier, the event would make UID_A the hub's current
    # context, the fetch would deliver it, and the event (already followed) would get 200.
    assert wait_until(lambda: fetched)
    assert fetched[0].study_uid is None  # nothing was open at the hub
    event = hub.publish("ImagingStudy-open", study_context(UID_A))
    assert wait_until(lambda: hub.acks_for(event["id"]))
    assert hub.acks_for(event["id"]) == [{"id": event["id"], "status": 500}]


# -- keeping the connection ----------------------------------------------------------------


def test_missed_heartbeats_reconnect_resubscribe_and_refetch(subscribers) -> None:
    hub = FhircastHub(heartbeat_period=0.2).start()
    try:
        sub, rec = make(hub, subscribers)
        sub.start()
        assert subscribed(rec)
        assert wait_until(lambda: len(hub.acks) >= 2)  # heartbeats arrive and are answered
        hub.heartbeats_paused = True
        assert wait_until(lambda: rec.count(ConnectionState.RECONNECTING) >= 1, 3)
        status = next(s for s in rec.statuses if s.state is ConnectionState.RECONNECTING)
        assert "heartbeat" in status.message
        assert status.retry_in is not None and 0.1 <= status.retry_in <= 0.2
        # The PACS moves on while the link is down: the re-fetch brings the new study.
        hub.publish("ImagingStudy-open", study_context(UID_B))
        hub.heartbeats_paused = False
        assert subscribed(rec, times=2)
        change = n_changes(rec, 2)[1]
        assert (change.source, change.study_uid) == ("current-context", UID_B)
        assert len(hub.subscribe_requests) >= 2  # (more if a loaded machine missed a beat)
        assert hub.context_gets == len(hub.subscribe_requests)  # every session re-fetches
        assert "hub.channel.endpoint" not in hub.subscribe_requests[1]  # a new subscription
    finally:
        hub.stop()


def test_a_dropped_websocket_is_reconnected(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)
    sub.start()
    assert subscribed(rec)
    hub.drop_websockets()
    assert subscribed(rec, times=2)
    assert hub.ws_connects == 2
    event = hub.publish("ImagingStudy-open", study_context(UID_A))
    assert wait_until(lambda: hub.acks_for(event["id"]))


def test_hub_down_at_start_is_retried_with_growing_backoff(subscribers) -> None:
    hub = FhircastHub(http_port=free_port())  # not started yet
    sub, rec = make(hub, subscribers, backoff_initial=0.1, backoff_max=0.4)
    sub.start()
    assert wait_until(lambda: rec.count(ConnectionState.RECONNECTING) >= 4, 5)
    delays = [s.retry_in for s in rec.statuses if s.state is ConnectionState.RECONNECTING]
    assert all(d is not None and 0.05 <= d <= 0.4 for d in delays), delays
    assert delays[:3] == sorted(delays[:3]) and delays[0] <= 0.1 < delays[2]  # it grows...
    assert all(d >= 0.2 for d in delays[2:])  # ...and stays near the cap (jitter: half+)
    hub.start()
    try:
        assert subscribed(rec)
        assert n_changes(rec, 1)[0].source == "current-context"
    finally:
        hub.stop()


def test_hub_restart_is_followed_by_a_new_subscription(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)
    sub.start()
    assert subscribed(rec)
    hub.stop()
    assert wait_until(lambda: rec.count(ConnectionState.RECONNECTING) >= 1)
    hub.start()
    assert subscribed(rec, times=2)
    assert hub.context_gets >= 1  # the restarted hub was asked again


def test_a_denied_subscription_is_reported_and_retried(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)
    sub.start()
    assert subscribed(rec)
    hub.deny_all("session unexpectedly stopped")
    assert wait_until(lambda: rec.count(ConnectionState.RECONNECTING) >= 1)
    denied = next(s for s in rec.statuses if s.state is ConnectionState.RECONNECTING)
    assert "denied" in denied.message and "session unexpectedly stopped" in denied.message
    assert subscribed(rec, times=2)


def test_lease_is_renewed_on_the_same_websocket(subscribers) -> None:
    hub = FhircastHub(lease_seconds=1).start()  # grants 1 s whatever is asked
    try:
        sub, rec = make(hub, subscribers)
        sub.start()
        assert subscribed(rec)
        assert wait_until(lambda: len(hub.subscribe_requests) >= 3, 5)
        endpoints = {f.get("hub.channel.endpoint") for f in hub.subscribe_requests[1:]}
        assert len(endpoints) == 1 and None not in endpoints  # renewals name the endpoint
        assert hub.ws_connects == 1
        assert rec.count(ConnectionState.RECONNECTING) == 0
    finally:
        hub.stop()


def test_bad_token_fails_clearly_without_a_retry_loop(hub, subscribers) -> None:
    token = {"value": "not-the-token-1234"}
    sub, rec = make(hub, subscribers, token=lambda: token["value"])
    sub.start()
    assert wait_until(lambda: rec.count(ConnectionState.FAILED) >= 1)
    failed = rec.last()
    assert failed is not None and failed.state is ConnectionState.FAILED
    assert "401" in failed.message and "sign in" in failed.message
    assert "failed" in failed.text()
    time.sleep(1.0)  # backoff here would be 0.2 s: a loop would have tried several times
    assert [r for r in hub.refused if r[0] == 401] == [(401, "bad or missing bearer token")]
    assert ConnectionState.RECONNECTING not in rec.states()
    token["value"] = TOKEN  # sign-in got a good token
    sub.retry()
    assert subscribed(rec)


def test_stop_unsubscribes_and_closes_with_1000(hub, subscribers) -> None:
    sub, rec = make(hub, subscribers)
    sub.start()
    assert subscribed(rec)
    sub.stop()
    assert len(hub.unsubscribes) == 1
    form = hub.unsubscribes[0]
    assert form["hub.mode"] == "unsubscribe"
    assert form["hub.channel.type"] == "websocket"
    assert form["hub.topic"] == hub.topic
    assert form["hub.channel.endpoint"].startswith(f"ws://127.0.0.1:{hub.ws_port}/")
    assert "hub.events" not in form
    assert wait_until(lambda: hub.close_codes)
    assert hub.close_codes == [1000]
    assert rec.last() == FhircastStatus(ConnectionState.STOPPED, "stopped")
    assert rec.count(ConnectionState.RECONNECTING) == 0


# -- audit and logs ------------------------------------------------------------------------


def test_followed_changes_go_into_the_audit_trail(hub, subscribers, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "journal.sqlite3", key=b"k" * 32)
    hub.publish("ImagingStudy-open", study_context(UID_A, "ACC-1"))
    sub, rec = make(hub, subscribers, audit=context_audit(log, "dr.reader"))
    sub.start()
    n_changes(rec, 1)
    dup = hub.publish("DiagnosticReport-open", report_context("rpt-5", UID_B))
    hub.send(dup)  # a duplicate is not a change
    hub.publish("DiagnosticReport-select", select_context("rpt-5", "Observation/o1"))
    hub.publish("DiagnosticReport-close", report_context("rpt-5", UID_B))
    n_changes(rec, 4)
    assert wait_until(lambda: len(log) == 4)
    events = [e.event for e in log.entries()]
    assert {e.kind for e in events} == {EventKind.CONTEXT_CHANGE}
    assert {e.user for e in events} == {"dr.reader"}
    assert [(e.details["hub_event"], e.study_uid) for e in events] == [
        ("get-current-context", UID_A),
        ("DiagnosticReport-open", UID_B),
        ("DiagnosticReport-select", UID_B),
        ("DiagnosticReport-close", UID_B),
    ]
    assert events[0].details["accession"] == "ACC-1"
    assert events[1].details["report_id"] == "rpt-5"
    assert events[1].details["event_id"] == dup["id"]
    assert events[2].details["selected"] == ["Observation/o1"]
    assert events[0].details["patient_ref"] == f"Patient/{PATIENT_ID}"
    assert log.verify().ok
    log.close()


def test_no_token_or_patient_identifier_in_logs(
    hub, subscribers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything: ours, websockets, urllib3
    bad, bad_rec = make(hub, subscribers, token="wrong-secret-9f8e7d")
    bad.start()
    assert wait_until(lambda: bad_rec.count(ConnectionState.FAILED) >= 1)
    bad.stop()
    sub, rec = make(hub, subscribers)
    sub.start()
    n_changes(rec, 1)
    hub.publish("ImagingStudy-open", study_context(UID_A, "ACC-SECRET-1"))
    hub.publish("ImagingStudy-open", [{"key": "study"}])  # an odd event, logged about
    hub.publish("DiagnosticReport-open", report_context("rpt-9", UID_B))
    n_changes(rec, 4)
    logging.getLogger("test").info("changes: %r", rec.changes)  # a change's repr is safe
    sub.stop()
    text = caplog.text + "".join(s.message for s in rec.statuses + bad_rec.statuses)
    assert caplog.records  # there is something to check
    for secret in (TOKEN, "wrong-secret-9f8e7d", PATIENT_MRN, PATIENT_FAMILY, PATIENT_ID):
        assert secret not in text
    assert "ACC-SECRET-1" not in text
