"""FHIRcast STU3 subscriber on the websocket channel: follow the study the PACS has open.

It runs its own asyncio loop on its own thread, independent of Qt. ``on_context`` and
``on_status`` are called on that thread: the UI marshals them to the Qt thread (e.g. by
emitting a signal). Which spec page each behaviour follows is in docs/fhircast.md.

    sub = FhircastSubscriber(FhircastConfig(hub_url, topic), token=get_token,
                             on_context=..., on_status=..., audit=context_audit(log, user))
    sub.start()   # returns at once; connects, subscribes, fetches the current context
    ...
    sub.stop()    # unsubscribes, closes the websocket with 1000, joins the thread

The bearer token comes from ``token`` (called before each HTTP request, never logged);
a 401/403 stops retrying (state FAILED) until ``retry()`` is called after a new sign-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import requests
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from app.context.fhircast_config import (
    DEFAULT_EVENTS,
    FhircastConfig,
    backoff_delay,
    config_from_settings,
)
from app.context.fhircast_follow import ContextFollower
from app.context.fhircast_model import (
    HEARTBEAT,
    ConnectionState,
    ContextChange,
    FhircastError,
    FhircastStatus,
    HubAuthError,
    SubscriptionDenied,
    current_context_change,
    heartbeat_period,
    parse_notification,
)

__all__ = [
    "DEFAULT_EVENTS",
    "ConnectionState",
    "ContextChange",
    "FhircastConfig",
    "FhircastError",
    "FhircastStatus",
    "FhircastSubscriber",
    "config_from_settings",
]

log = logging.getLogger(__name__)


class _ConnectionLost(FhircastError):
    """The websocket went quiet (no heartbeat in time) or the lease could not be renewed."""


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class FhircastSubscriber:
    """Subscribes to one topic and reports the context changes it follows."""

    def __init__(
        self,
        config: FhircastConfig,
        token: Callable[[], str | None],
        on_context: Callable[[ContextChange], None],
        on_status: Callable[[FhircastStatus], None] | None = None,
        audit: Callable[[ContextChange], None] | None = None,
        rnd: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._token = token
        self._follower = ContextFollower(on_context, audit)
        self._on_status = on_status
        self._rnd = rnd
        self._status = FhircastStatus(ConnectionState.STOPPED)
        self._endpoint: str | None = None
        self._ws: ClientConnection | None = None
        self._lease = float(config.lease_seconds)
        self._heartbeat_window: float | None = None
        self._confirmed = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._retry_event: asyncio.Event | None = None

    # -- public, called from any thread ------------------------------------------------
    @property
    def status(self) -> FhircastStatus:
        return self._status

    @property
    def current(self) -> ContextChange | None:
        """The context the app follows now (None before the first one)."""
        return self._follower.current

    def start(self) -> None:
        """Start the subscriber thread; returns at once. A second call does nothing."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = False
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="fhircast", daemon=True
        )
        self._thread.start()
        ready.wait(5)

    def stop(self, timeout: float = 10.0) -> None:
        """Unsubscribe, close the websocket (1000) and end the thread."""
        loop, event, thread = self._loop, self._stop_event, self._thread
        if thread is None or loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(event.set)
        thread.join(timeout)
        self._thread = None

    def retry(self) -> None:
        """Try again now (after FAILED, e.g. once sign-in has a new token, or while waiting)."""
        loop, event = self._loop, self._retry_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    # -- the loop ----------------------------------------------------------------------
    def _thread_main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._lifecycle(ready))
        finally:
            loop.close()

    async def _lifecycle(self, ready: threading.Event) -> None:
        self._stop_event = asyncio.Event()
        self._retry_event = asyncio.Event()
        ready.set()
        main = asyncio.create_task(self._run())
        stop = asyncio.create_task(self._stop_event.wait())
        await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
        self._stopping = True
        main.cancel()
        stop.cancel()
        await asyncio.gather(main, stop, return_exceptions=True)
        await self._leave()
        self._set_status(ConnectionState.STOPPED, "stopped")

    async def _run(self) -> None:
        attempt = 0
        assert self._retry_event is not None
        while True:
            self._confirmed = False
            try:
                await self._session()
                reason = "the hub closed the connection"
            except HubAuthError as exc:
                await self._drop_connection()
                log.warning("FHIRcast: %s", exc)
                self._set_status(ConnectionState.FAILED, str(exc))
                self._retry_event.clear()
                await self._retry_event.wait()  # no retry loop on a refused token
                attempt = 0
                continue
            except SubscriptionDenied as exc:
                reason = f"denied by the hub: {exc}"
            except (FhircastError, OSError, WebSocketException, TimeoutError) as exc:
                reason = _reason(exc)
            except requests.RequestException as exc:
                reason = f"hub unreachable ({type(exc).__name__})"
            await self._drop_connection()
            if self._confirmed:
                attempt = 0  # it worked once: start again from the shortest delay
            delay = backoff_delay(
                attempt, self.config.backoff_initial, self.config.backoff_max, self._rnd
            )
            attempt += 1
            log.info("FHIRcast: %s; reconnecting in %.1f s", reason, delay)
            self._set_status(ConnectionState.RECONNECTING, reason, retry_in=delay)
            self._retry_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry_event.wait(), delay)

    async def _session(self) -> None:
        """Subscribe, connect, await the confirmation, fetch the context, then follow events."""
        self._set_status(ConnectionState.CONNECTING, "subscribing")
        self._heartbeat_window = None
        endpoint = await self._subscribe()
        self._endpoint = endpoint
        self._ws = ws = await connect(
            endpoint, open_timeout=self.config.http_timeout, max_size=8 * 2**20
        )
        early = await self._await_confirmation(ws)
        self._confirmed = True
        self._set_status(ConnectionState.SUBSCRIBED, f"subscribed (lease {self._lease:.0f} s)")
        await self._fetch_current_context()
        for message in early:
            await self._handle(ws, message)
        receive = asyncio.create_task(self._receive(ws))
        renew = asyncio.create_task(self._renew())
        try:
            done, _ = await asyncio.wait({receive, renew}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            receive.cancel()
            renew.cancel()
            await asyncio.gather(receive, renew, return_exceptions=True)
        for task in done:
            task.result()  # raises what ended the session

    async def _drop_connection(self) -> None:
        if self._stopping:
            return  # _leave unsubscribes first, then closes
        ws, self._ws, self._endpoint = self._ws, None, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)

    async def _leave(self) -> None:
        """Spec 2-4 and 2-5: unsubscribe over HTTP, then close the websocket with 1000."""
        ws, endpoint = self._ws, self._endpoint
        self._ws = self._endpoint = None
        if endpoint is not None:
            data = {
                "hub.channel.type": "websocket",
                "hub.mode": "unsubscribe",
                "hub.topic": self.config.topic,
                "hub.channel.endpoint": endpoint,
            }
            try:
                response = await asyncio.to_thread(self._post, data, 5.0)
                if response.status_code >= 400:
                    log.warning("FHIRcast: unsubscribe refused (HTTP %d)", response.status_code)
            except (requests.RequestException, FhircastError) as exc:
                log.warning("FHIRcast: unsubscribe failed (%s)", type(exc).__name__)
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1000, reason="subscriber shutting down"), 3)

    # -- HTTP ---------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        try:
            token = self._token()
        except Exception as exc:  # noqa: BLE001 - the sign-in's error; its text may not be safe
            raise HubAuthError(f"no token for the hub ({type(exc).__name__})") from None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _post(self, data: dict[str, str], timeout: float | None = None) -> requests.Response:
        return requests.post(
            self.config.hub_url,
            data=data,  # requests sends application/x-www-form-urlencoded
            headers=self._headers(),
            timeout=timeout or self.config.http_timeout,
        )

    def _check(self, response: requests.Response, what: str) -> None:
        if response.status_code in (401, 403):
            raise HubAuthError(
                f"the hub refused the sign-in for {what} (HTTP {response.status_code}); "
                "sign in again"
            )
        if response.status_code >= 400:
            text = response.text.strip().replace("\n", " ")[:200]
            raise FhircastError(f"the hub refused {what} (HTTP {response.status_code}): {text}")

    async def _subscribe(self, endpoint: str | None = None) -> str:
        """Spec 2-4 subscription request; returns ``hub.channel.endpoint``."""
        data = {
            "hub.channel.type": "websocket",
            "hub.mode": "subscribe",
            "hub.topic": self.config.topic,
            "hub.events": ",".join(self.config.events),
            "hub.lease_seconds": str(self.config.lease_seconds),
            "subscriber.name": self.config.subscriber_name,
        }
        if endpoint:  # renewing keeps the same websocket
            data["hub.channel.endpoint"] = endpoint
        response = await asyncio.to_thread(self._post, data)
        self._check(response, "the subscription")
        try:
            new_endpoint = response.json()["hub.channel.endpoint"]
        except (ValueError, KeyError, TypeError):
            raise FhircastError("the hub's subscription response has no hub.channel.endpoint")
        if not isinstance(new_endpoint, str) or not new_endpoint.startswith(("ws://", "wss://")):
            raise FhircastError("the hub's hub.channel.endpoint is not a ws:// or wss:// URL")
        return new_endpoint

    async def _fetch_current_context(self) -> None:
        """Spec 2-9: GET base-hub-URL/{topic}, delivered before any event."""
        url = f"{self.config.hub_url.rstrip('/')}/{quote(self.config.topic, safe='')}"

        def get() -> requests.Response:
            return requests.get(url, headers=self._headers(), timeout=self.config.http_timeout)

        response = await asyncio.to_thread(get)
        if response.status_code in (404, 405, 501):
            log.info("FHIRcast: the hub offers no current context (HTTP %d)", response.status_code)
            return
        self._check(response, "the current context")
        try:
            change = current_context_change(response.json())
        except ValueError:
            raise FhircastError("the hub's current context is not JSON") from None
        self._follower.on_current_context(change)

    # -- websocket ----------------------------------------------------------------------
    async def _await_confirmation(self, ws: ClientConnection) -> list[dict[str, Any]]:
        """Wait for the spec 2-4 confirmation; returns events that came before it."""
        early: list[dict[str, Any]] = []
        async with asyncio.timeout(self.config.http_timeout):
            while True:
                message = self._decode(await ws.recv())
                if message is None:
                    continue
                mode = message.get("hub.mode")
                if mode == "denied":
                    raise SubscriptionDenied(str(message.get("hub.reason") or "no reason given"))
                if mode == "subscribe":
                    self._take_lease(message)
                    return early
                early.append(message)

    def _take_lease(self, confirmation: dict[str, Any]) -> None:
        with contextlib.suppress(TypeError, ValueError):
            lease = float(confirmation["hub.lease_seconds"])
            if lease > 0:
                self._lease = lease

    async def _receive(self, ws: ClientConnection) -> None:
        while True:
            window = self._heartbeat_window
            try:
                raw = await asyncio.wait_for(ws.recv(), window)
            except TimeoutError:
                raise _ConnectionLost(f"no heartbeat for {window:.1f} s") from None
            message = self._decode(raw)
            if message is not None:
                await self._handle(ws, message)

    async def _renew(self) -> None:
        """Re-subscribe on the same endpoint before the lease runs out (spec 2-4)."""
        while True:
            await asyncio.sleep(max(self._lease * self.config.renew_fraction, 0.5))
            try:
                await self._subscribe(self._endpoint)
            except (FhircastError, requests.RequestException) as exc:
                raise _ConnectionLost(f"lease renewal failed ({_reason(exc)})") from None
            log.info("FHIRcast: lease renewed")

    @staticmethod
    def _decode(raw: str | bytes) -> dict[str, Any] | None:
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("FHIRcast: ignoring a message that is not JSON")
            return None
        return message if isinstance(message, dict) else None

    async def _handle(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        mode = message.get("hub.mode")
        if mode == "denied":
            raise SubscriptionDenied(str(message.get("hub.reason") or "no reason given"))
        if mode == "subscribe":  # the confirmation of a renewal
            self._take_lease(message)
            return
        if "event" not in message:
            return
        try:
            note = parse_notification(message)
        except FhircastError as exc:
            log.warning("FHIRcast: %s", exc)
            if isinstance(message.get("id"), str):
                await self._ack(ws, message["id"], 400)
            return
        status = 200
        if note.event == HEARTBEAT:
            period = heartbeat_period(note.context)
            if period is not None:
                self._heartbeat_window = period * self.config.heartbeat_tolerance
        elif self._follower.is_duplicate(note.id):
            log.debug("FHIRcast: duplicate event ignored")
        else:
            status = self._follower.on_event(note.event, note.context, note.id, note.timestamp)
        await self._ack(ws, note.id, status)

    async def _ack(self, ws: ClientConnection, event_id: str, status: int) -> None:
        """Spec 2-5 event notification response, over the websocket."""
        await ws.send(json.dumps({"id": event_id, "status": status}))

    def _set_status(
        self, state: ConnectionState, message: str = "", retry_in: float | None = None
    ) -> None:
        self._status = FhircastStatus(state, message, retry_in)
        if self._on_status is not None:
            try:
                self._on_status(self._status)
            except Exception:  # the UI's handler must not stop the subscriber
                log.exception("FHIRcast: the status handler failed")
