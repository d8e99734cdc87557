"""A small FHIRcast STU3 hub for the tests, on loopback (no real hub can be installed here).

It follows the spec pages the subscriber is built on:
  * 2-4 Subscribing: POST form to the hub URL, checked field by field (channel type,
    mode, topic, events, lease, bearer token); 202 with ``hub.channel.endpoint``; the
    confirmation as the first websocket message; a denial after an unsubscribe;
    a re-subscribe naming an existing endpoint renews it (a new confirmation on it);
  * 2-5 Event Notification: ``{timestamp, id, event: {hub.topic, hub.event, context}}``
    to every subscriber of the event; the ``{id, status}`` responses are recorded;
  * 2-9 Get Current Context: ``GET <hub>/<topic>`` returns the last open event's context,
    or ``context.type ""`` and ``context []`` when nothing is open;
  * 3-2-2 heartbeat: sent every ``heartbeat_period`` seconds (pausable).

HTTP is a ``ThreadingHTTPServer``; the websockets server runs on an asyncio loop in a
second thread. ``stop()``/``start()`` keep the ports, so a test can take the hub away
and bring it back; ``drop_websockets()`` cuts every websocket without a close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.support.secret_scan import register_secret

TOKEN = "hub-test-token-5f2a9c"  # the one bearer token the hub accepts
register_secret(TOKEN)  # looked for in every file the session leaves


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FhircastHub:
    def __init__(
        self,
        topic: str = "topic-7f3c",
        token: str = TOKEN,
        heartbeat_period: float | None = None,
        lease_seconds: int = 7200,
        http_port: int | None = None,
    ) -> None:
        self.topic = topic
        self.token = token
        self.heartbeat_period = heartbeat_period
        self.lease_seconds = lease_seconds
        self.http_port = http_port or free_port()
        self.ws_port = free_port()
        self.lock = threading.Lock()
        # What the subscriber did, for the tests to check.
        self.subscribe_requests: list[dict[str, str]] = []  # every accepted subscribe form
        self.refused: list[tuple[int, str]] = []  # (status, why) of refused requests
        self.unsubscribes: list[dict[str, str]] = []
        self.context_gets = 0
        self.acks: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []  # notifications sent (not heartbeats)
        self.ws_connects = 0
        self.close_codes: list[int | None] = []
        self.heartbeats_paused = False
        # Hub state.
        self._subs: dict[str, dict[str, Any]] = {}  # endpoint id -> {events, lease, conn}
        self._context: dict[str, Any] = {"context.type": "", "context": []}
        self._http: ThreadingHTTPServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws_server: Server | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/hub"

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> FhircastHub:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def boot() -> None:
            self._ws_server = await serve(self._ws_handler, "127.0.0.1", self.ws_port)
            loop.create_task(self._heartbeats())
            ready.set()

        def run_loop() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(boot())
            loop.run_forever()
            loop.close()

        t = threading.Thread(target=run_loop, daemon=True, name="hub-ws")
        t.start()
        ready.wait(5)
        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), self._handler_class())
        self._http.daemon_threads = True
        h = threading.Thread(target=self._http.serve_forever, daemon=True, name="hub-http")
        h.start()
        self._threads = [t, h]
        return self

    def stop(self) -> None:
        """Take the hub away: HTTP and websockets close; subscriptions are forgotten."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        loop, server = self._loop, self._ws_server
        if loop is not None and server is not None:

            async def close() -> None:
                server.close()
                await server.wait_closed()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            asyncio.run_coroutine_threadsafe(close(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        for t in self._threads:
            t.join(5)
        self._loop = self._ws_server = None
        with self.lock:
            self._subs.clear()

    # -- what tests do -----------------------------------------------------------------
    def publish(
        self,
        event: str,
        context: list[dict[str, Any]],
        *,
        event_id: str | None = None,
        timestamp: str | None = None,
    ) -> dict[str, Any]:
        """Distribute an event (as another app would have requested it); returns it."""
        message = {
            "timestamp": timestamp or now_iso(),
            "id": event_id or uuid.uuid4().hex,
            "event": {"hub.topic": self.topic, "hub.event": event, "context": context},
        }
        anchor, _, kind = event.partition("-")
        with self.lock:
            if kind.lower() == "open":
                self._context = {
                    "context.type": anchor,
                    "context.versionId": uuid.uuid4().hex,
                    "context": context,
                }
            elif kind.lower() == "close":
                self._context = {"context.type": "", "context": []}
        self.send(message)
        return message

    def send(self, message: dict[str, Any]) -> None:
        """Send a notification as is to every subscriber of its event (resends too)."""
        name = message["event"]["hub.event"].lower()
        with self.lock:
            conns = [s["conn"] for s in self._subs.values() if s["conn"] and name in s["events"]]
            self.sent.append(message)
        for conn in conns:
            self._call(conn.send(json.dumps(message)))

    def drop_websockets(self) -> None:
        """Cut every websocket without a close handshake (a network failure)."""
        with self.lock:
            conns = [s["conn"] for s in self._subs.values() if s["conn"]]
        for conn in conns:
            self._loop.call_soon_threadsafe(conn.transport.abort)  # type: ignore[union-attr]

    def deny_all(self, reason: str = "session ended") -> None:
        """Send a subscription denial (spec 2-4) on every websocket and close it."""
        with self.lock:
            subs = list(self._subs.items())
            self._subs.clear()
        for _, sub in subs:
            conn = sub["conn"]
            if conn is None:
                continue
            denial = {
                "hub.mode": "denied",
                "hub.topic": self.topic,
                "hub.events": ",".join(sub["events_as_sent"]),
                "hub.reason": reason,
            }
            self._call(conn.send(json.dumps(denial)))
            self._call(conn.close(1000, "denied"))

    def acks_for(self, event_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [a for a in self.acks if a.get("id") == event_id]

    def _call(self, coro: Any) -> None:
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        with contextlib.suppress(Exception):  # a connection that just went away
            fut.result(5)

    # -- websockets ----------------------------------------------------------------------
    async def _ws_handler(self, conn: ServerConnection) -> None:
        endpoint_id = (conn.request.path if conn.request else "").strip("/")
        with self.lock:
            sub = self._subs.get(endpoint_id)
            if sub is None or sub["conn"] is not None:
                sub = None
            else:
                sub["conn"] = conn
                self.ws_connects += 1
        if sub is None:
            await conn.close(1008, "unknown endpoint")
            return
        await conn.send(json.dumps(self._confirmation(sub)))
        try:
            async for raw in conn:
                with self.lock:
                    self.acks.append(json.loads(raw))
        except ConnectionClosed:  # aborted connections end here
            pass
        finally:
            with self.lock:
                self.close_codes.append(conn.close_code)
                if self._subs.get(endpoint_id) is sub:
                    sub["conn"] = None

    def _confirmation(self, sub: dict[str, Any]) -> dict[str, Any]:
        return {
            "hub.mode": "subscribe",
            "hub.topic": self.topic,
            "hub.events": ",".join(sub["events_as_sent"]),
            "hub.lease_seconds": sub["lease"],
        }

    async def _heartbeats(self) -> None:
        while True:
            period = self.heartbeat_period
            await asyncio.sleep(period or 0.1)
            if period is None or self.heartbeats_paused:
                continue
            beat = {
                "timestamp": now_iso(),
                "id": uuid.uuid4().hex,
                "event": {
                    "hub.topic": self.topic,
                    "hub.event": "heartbeat",
                    "context": [{"key": "period", "decimal": str(period)}],
                },
            }
            with self.lock:
                conns = [s["conn"] for s in self._subs.values() if s["conn"]]
            for conn in conns:
                with contextlib.suppress(ConnectionClosed):
                    await conn.send(json.dumps(beat))

    # -- HTTP ----------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: object) -> None:
                data = (json.dumps(body) if not isinstance(body, str) else body).encode()
                self.send_response(status)
                ctype = "text/plain" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {hub.token}":
                    return True
                with hub.lock:
                    hub.refused.append((401, "bad or missing bearer token"))
                self._reply(401, "bad or missing bearer token")
                return False

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path != f"/hub/{hub.topic}":
                    self._reply(404, "no such topic")
                    return
                if not self._authorized():
                    return
                with hub.lock:
                    hub.context_gets += 1
                    body = dict(hub._context)
                self._reply(200, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                status, body = hub._subscription(
                    self.path, self.headers.get("Content-Type", ""), raw, self._authorized
                )
                if status:
                    self._reply(status, body)

        return Handler

    def _subscription(
        self, path: str, ctype: str, raw: str, authorized: Callable[[], bool]
    ) -> tuple[int, object]:
        """Spec 2-4 checks; (0, None) when ``authorized`` already answered."""

        def refuse(why: str) -> tuple[int, object]:
            with self.lock:
                self.refused.append((400, why))
            return 400, why

        if urlsplit(path).path != "/hub":
            return 404, "not the hub URL"
        if ctype.split(";")[0].strip() != "application/x-www-form-urlencoded":
            return refuse(f"Content-Type must be application/x-www-form-urlencoded: {ctype}")
        fields = parse_qs(raw, keep_blank_values=True)
        if any(len(v) != 1 for v in fields.values()):
            return refuse("each parameter at most once")
        form = {k: v[0] for k, v in fields.items()}
        if not authorized():
            return 0, None
        if form.get("hub.channel.type") != "websocket":
            return refuse("hub.channel.type must be websocket")
        if form.get("hub.topic") != self.topic:
            return refuse("unknown hub.topic")
        mode = form.get("hub.mode")
        if mode == "unsubscribe":
            return self._unsubscribe(form, refuse)
        if mode != "subscribe":
            return refuse("hub.mode must be subscribe or unsubscribe")
        events = [e for e in form.get("hub.events", "").split(",") if e]
        if not events:
            return refuse("hub.events is required to subscribe")
        lease = form.get("hub.lease_seconds")
        if lease is not None and (not lease.isdigit() or int(lease) <= 0):
            return refuse("hub.lease_seconds must be a positive integer")
        granted = min(int(lease), self.lease_seconds) if lease else self.lease_seconds
        endpoint = form.get("hub.channel.endpoint")
        with self.lock:
            self.subscribe_requests.append(form)
            existing = self._subs.get(self._endpoint_id(endpoint)) if endpoint else None
            if existing is not None:  # a renewal: same endpoint, new lease and events
                existing.update(
                    events={e.lower() for e in events}, events_as_sent=events, lease=granted
                )
                conn = existing["conn"]
            else:
                endpoint_id = uuid.uuid4().hex
                endpoint = f"ws://127.0.0.1:{self.ws_port}/{endpoint_id}"
                self._subs[endpoint_id] = {
                    "events": {e.lower() for e in events},
                    "events_as_sent": events,
                    "lease": granted,
                    "conn": None,
                }
                conn = None
        if conn is not None and existing is not None:
            self._call(conn.send(json.dumps(self._confirmation(existing))))
        return 202, {"hub.channel.endpoint": endpoint}

    def _unsubscribe(
        self, form: dict[str, str], refuse: Callable[[str], tuple[int, object]]
    ) -> tuple[int, object]:
        endpoint = form.get("hub.channel.endpoint", "")
        if "hub.events" in form:
            return refuse("hub.events SHALL NOT be present to unsubscribe")
        with self.lock:
            sub = self._subs.pop(self._endpoint_id(endpoint), None)
            self.unsubscribes.append(form)
        if sub is None:
            return refuse("unknown hub.channel.endpoint")
        conn = sub["conn"]
        if conn is not None:
            denial = {
                "hub.mode": "denied",
                "hub.topic": self.topic,
                "hub.events": ",".join(sub["events_as_sent"]),
                "hub.reason": "unsubscribed",
            }
            self._call(conn.send(json.dumps(denial)))
        return 202, {"hub.channel.endpoint": endpoint}

    @staticmethod
    def _endpoint_id(endpoint: str | None) -> str:
        return unquote(urlsplit(endpoint or "").path).strip("/")


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# -- event contexts as the spec pages show them (3-5-1, 3-6-1, 3-6-4) -------------------

ACSN_TYPE = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]
}
PATIENT_ID = "503824b8-fe8c-4227-b061-7181ba6c3926"
PATIENT_MRN = "MRN-4438001"
PATIENT_FAMILY = "Testpatient"


def patient_entry() -> dict[str, Any]:
    return {
        "key": "patient",
        "resource": {
            "resourceType": "Patient",
            "id": PATIENT_ID,
            "identifier": [
                {
                    "type": {"coding": [{"code": "MR"}]},
                    "system": "urn:oid:2.16.840.1.113883.19.5",
                    "value": PATIENT_MRN,
                }
            ],
            "name": [{"family": PATIENT_FAMILY, "given": ["Jo"]}],
        },
    }


def study_resource(uid: str, accession: str | None = None, based_on: bool = False) -> dict:
    identifiers: list[dict[str, Any]] = [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}]
    study: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": f"is-{uid[-6:]}",
        "status": "unknown",
        "identifier": identifiers,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    if accession and based_on:
        acsn = {"type": ACSN_TYPE, "system": "urn:oid:2.16.840.1.113883.19.5", "value": accession}
        study["basedOn"] = [{"type": "ServiceRequest", "identifier": acsn}]
    elif accession:
        identifiers.append({"type": ACSN_TYPE, "value": accession})
    return study


def study_context(uid: str, accession: str | None = None) -> list[dict[str, Any]]:
    return [{"key": "study", "resource": study_resource(uid, accession)}, patient_entry()]


def report_context(report_id: str, uid: str, accession: str | None = None) -> list[dict]:
    report = {
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "status": "unknown",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "imagingStudy": [{"reference": f"ImagingStudy/is-{uid[-6:]}"}],
    }
    return [
        {"key": "report", "resource": report},
        {"key": "study", "resource": study_resource(uid, accession, based_on=True)},
        patient_entry(),
    ]


def select_context(report_id: str, *selected: str) -> list[dict[str, Any]]:
    return [
        {"key": "report", "reference": [{"reference": f"DiagnosticReport/{report_id}"}]},
        {"key": "select", "reference": [{"reference": ref} for ref in selected]},
    ]
