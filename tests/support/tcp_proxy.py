"""A loopback TCP proxy between the app and a real server, for fault-injection tests.

The app talks to the proxy's fixed port; the proxy relays each client connection
to its own connection to the upstream server (Orthanc), one to one, so a close on
either side is mirrored to the other, as a direct connection would see it. It
reads HTTP/1.1 framing (Content-Length and chunked bodies) so that a test can stop
one exchange at an exact point and decide what happens next:

- ``BEFORE_FORWARD``: the whole request has arrived, none of it reached the server;
- ``MID_BODY``: the head and half of the body reached the server, the rest is held;
- ``AFTER_RESPONSE``: the server has answered in full; the answer is held.

``pause(...)`` arms a one-shot ``Pause``; ``Pause.wait()`` returns once the exchange
is held there, and ``resume()`` lets it go on or ``drop()`` resets both connections
(the held bytes are never delivered). ``stop_listening()`` / ``start_listening()``
close and reopen the listening socket on the same port, so that while the server
is down the app gets "connection refused", exactly as with no proxy. Every exchange
is recorded (``exchanges``) with what reached the server and what it answered.

No hook in the production code is needed: the app is simply given the proxy's URL.
"""

from __future__ import annotations

import gzip
import random
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

BEFORE_FORWARD = "before_forward"
MID_BODY = "mid_body"
AFTER_RESPONSE = "after_response"
POINTS = (BEFORE_FORWARD, MID_BODY, AFTER_RESPONSE)

_MAX_HEAD = 64 * 1024
_POLL_S = 0.2


class ProxyClosed(Exception):
    """The proxy (or one side of a relayed connection) went away."""


@dataclass
class Exchange:
    """One HTTP request relayed (or held) by the proxy, and what became of it."""

    seq: int
    method: str
    target: str
    request_body: bytes  # the body as the app sent it (chunked encoding removed)
    started: float = field(default_factory=time.monotonic)
    forwarded: str = "none"  # "none" | "partial" | "full": how much reached the server
    status: int | None = None  # the server's answer, when it answered in full
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""  # as the server sent it (still content-encoded)
    delivered: bool = False  # the answer was passed on to the app
    fault: str = ""  # the pause point that held it, if any, and what the test did

    def decoded_response(self) -> bytes:
        """The response body with gzip/deflate content-encoding undone."""
        encoding = self.response_headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            return gzip.decompress(self.response_body)
        if encoding == "deflate":
            return zlib.decompress(self.response_body)
        return self.response_body


class Pause:
    """A one-shot breakpoint in the proxy: the ``nth`` request matching ``method`` and
    ``path_contains`` (counted from when it is armed) is held at ``point``."""

    def __init__(self, point: str, method: str, path_contains: str, nth: int) -> None:
        if point not in POINTS:
            raise ValueError(f"point must be one of {', '.join(POINTS)}, got {point!r}")
        if nth < 1:
            raise ValueError(f"nth must be 1 or more, got {nth}")
        self.point = point
        self.method = method.upper()
        self.path_contains = path_contains
        self.nth = nth
        self.exchange: Exchange | None = None
        self._seen = 0
        self._reached = threading.Event()
        self._decided = threading.Event()
        self._drop = False

    def _matches(self, method: str, target: str) -> bool:
        return method.upper() == self.method and self.path_contains in target

    @property
    def reached(self) -> bool:
        return self._reached.is_set()

    def wait(self, timeout: float) -> Exchange:
        """Block until an exchange is held here; TimeoutError if none is within ``timeout``."""
        if not self._reached.wait(timeout):
            raise TimeoutError(
                f"no {self.method} *{self.path_contains}* request #{self.nth} reached "
                f"{self.point} within {timeout:g} s"
            )
        assert self.exchange is not None
        return self.exchange

    def resume(self) -> None:
        """Let the held exchange go on as if nothing happened."""
        self._drop = False
        self._decided.set()

    def drop(self) -> None:
        """Reset the held exchange's connections; nothing more of it is delivered."""
        self._drop = True
        self._decided.set()


class _Reader:
    """Buffered reads from a socket; ``ProxyClosed`` at EOF or on a socket error."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except OSError as exc:
            raise ProxyClosed(str(exc)) from exc
        if not chunk:
            raise ProxyClosed("EOF")
        self.buffer += chunk

    def until(self, marker: bytes, limit: int = _MAX_HEAD) -> bytes:
        while True:
            index = self.buffer.find(marker)
            if index >= 0:
                end = index + len(marker)
                data = bytes(self.buffer[:end])
                del self.buffer[:end]
                return data
            if len(self.buffer) > limit:
                raise ProxyClosed("header too long")
            self._fill()

    def exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def rest(self) -> bytes:
        """Everything until the peer closes (a response framed by the close)."""
        while True:
            try:
                self._fill()
            except ProxyClosed:
                data = bytes(self.buffer)
                self.buffer.clear()
                return data


@dataclass
class _Link:
    """One relayed connection: the app's side and the server's side."""

    client: socket.socket
    upstream: socket.socket
    creader: _Reader = field(init=False)
    ureader: _Reader = field(init=False)

    def __post_init__(self) -> None:
        self.creader, self.ureader = _Reader(self.client), _Reader(self.upstream)


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _read_body(reader: _Reader, headers: dict[str, str]) -> tuple[bytes, bytes] | None:
    """(raw bytes as framed, decoded body) for a message with a length or chunked framing;
    None when the message is framed by the connection's close."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        body = bytearray()
        while True:
            line = reader.until(b"\r\n")
            raw += line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = reader.until(b"\r\n")
                    raw += trailer
                    if trailer == b"\r\n":
                        return bytes(raw), bytes(body)
            data = reader.exact(size + 2)
            raw += data
            body += data[:-2]
    if "content-length" in headers:
        data = reader.exact(int(headers["content-length"]))
        return data, data
    return None


def _abort(sock: socket.socket | None) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a killed process's peer would see it."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _listen_port() -> int:
    """A free loopback port below the ephemeral range (32768+ on Linux), so that no
    outgoing connection takes it while the listener is closed and it can be reopened."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port found for the proxy")


class TcpProxy:
    """Relays 127.0.0.1:``port`` to 127.0.0.1:``upstream_port``; see the module docstring."""

    def __init__(self, upstream_port: int, *, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or _listen_port()
        self.exchanges: list[Exchange] = []
        self._pauses: list[Pause] = []
        self._lock = threading.Condition()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._closed = False
        self.start_listening()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- control ----------------------------------------------------------------
    def start_listening(self, upstream_port: int | None = None) -> None:
        """(Re)open the listening socket on the same port, optionally to a new upstream."""
        if upstream_port is not None:
            self.upstream_port = upstream_port
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.05)
        listener.listen(64)
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, args=(listener,), name=f"proxy-accept-{self.port}",
            daemon=True,
        )
        self._accept_thread.start()

    def stop_listening(self) -> None:
        """Close the listening socket: new connections are refused until ``start_listening``.
        Connections already relayed go on (they end when the server's side ends)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        if self._accept_thread is not None:
            self._accept_thread.join(5)
            self._accept_thread = None

    def pause(
        self, point: str, *, method: str = "POST", path_contains: str = "", nth: int = 1
    ) -> Pause:
        """Arm a one-shot pause for the ``nth`` matching request from now on."""
        pause = Pause(point, method, path_contains, nth)
        with self._lock:
            self._pauses.append(pause)
        return pause

    def disarm(self) -> None:
        """Forget pauses that have not fired; let any held exchange go on."""
        with self._lock:
            pauses, self._pauses = self._pauses, []
        for pause in pauses:
            pause.resume()

    def wait_for(self, predicate: Callable[[list[Exchange]], bool], timeout: float) -> bool:
        """Wait until ``predicate(exchanges)`` holds (checked on every change)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.exchanges):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, _POLL_S))
            return True

    def close(self) -> None:
        self._closed = True
        self.stop_listening()
        self.disarm()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _abort(sock)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- relaying ---------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            threading.Thread(
                target=self._relay, args=(client,), name="proxy-relay", daemon=True
            ).start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._sockets.update(socks)

    def _untrack(self, *socks: socket.socket | None) -> None:
        with self._lock:
            for sock in socks:
                if sock is not None:
                    self._sockets.discard(sock)

    def _changed(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def _connect_upstream(self) -> socket.socket | None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            return None
        upstream.settimeout(None)
        self._track(upstream)
        return upstream

    def _relay(self, client: socket.socket) -> None:
        self._track(client)
        upstream = self._connect_upstream()
        if upstream is None:
            _abort(client)  # the server is gone: the app sees its connection reset
            self._untrack(client)
            return
        link = _Link(client, upstream)
        try:
            self._relay_exchanges(link)
        except ProxyClosed:
            pass
        finally:
            _close(link.client)
            _close(link.upstream)
            self._untrack(link.client, link.upstream)

    def _reopen_if_closed(self, link: _Link) -> bool:
        """After a hold, the server may have closed the idle connection meanwhile (Orthanc
        keeps one open for 1 s): the held request then goes on a new one, as if it had
        been sent late. False when the server cannot be reached."""
        try:
            ready, _, _ = select.select([link.upstream], [], [], 0)
            closed = bool(ready) and link.upstream.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            closed = True
        if not closed:
            return True
        _close(link.upstream)
        self._untrack(link.upstream)
        upstream = self._connect_upstream()
        if upstream is None:
            return False
        link.upstream, link.ureader = upstream, _Reader(upstream)
        return True

    def _wait_for_request(self, client: socket.socket, upstream: socket.socket,
                          creader: _Reader) -> bool:
        """True when the app sent something; False when the server closed the idle
        connection (mirrored to the app by the caller's close)."""
        while not creader.buffer:
            if self._closed:
                return False
            try:
                ready, _, _ = select.select([client, upstream], [], [], _POLL_S)
            except (OSError, ValueError):
                return False
            if client in ready:
                return True
            if upstream in ready:
                try:
                    data = upstream.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    return False
                client.sendall(data)  # unsolicited bytes from the server: pass them on
        return True

    def _fire(self, method: str, target: str) -> Pause | None:
        with self._lock:
            for pause in self._pauses:
                if pause._matches(method, target):
                    pause._seen += 1
                    if pause._seen == pause.nth:
                        self._pauses.remove(pause)
                        return pause
        return None

    def _hold(self, pause: Pause | None, point: str, exchange: Exchange) -> bool:
        """Hold here if ``pause`` is for this point; True when the test dropped it."""
        if pause is None or pause.point != point:
            return False
        pause.exchange = exchange
        exchange.fault = point
        pause._reached.set()
        self._changed()
        while not pause._decided.wait(_POLL_S):
            if self._closed:
                return True
        exchange.fault += ":drop" if pause._drop else ":resume"
        return pause._drop

    def _relay_exchanges(self, link: _Link) -> None:
        client, creader = link.client, link.creader
        while True:
            if not self._wait_for_request(client, link.upstream, creader):
                return
            head = creader.until(b"\r\n\r\n")
            request_line, headers = _parse_head(head)
            method, _, rest = request_line.partition(" ")
            target = rest.rsplit(" ", 1)[0]
            framed = _read_body(creader, headers)
            raw_body, body = framed if framed is not None else (b"", b"")
            with self._lock:
                exchange = Exchange(len(self.exchanges) + 1, method.upper(), target, body)
                self.exchanges.append(exchange)
                self._lock.notify_all()
            pause = self._fire(method, target)

            if self._hold(pause, BEFORE_FORWARD, exchange):
                _abort(client)
                _abort(link.upstream)
                return
            if pause is not None and pause.point == BEFORE_FORWARD and not (
                self._reopen_if_closed(link)
            ):
                _abort(client)
                return
            upstream, ureader = link.upstream, link.ureader
            message = head + raw_body
            try:
                if pause is not None and pause.point == MID_BODY:
                    split = len(head) + max(1, len(raw_body) // 2)
                    upstream.sendall(message[:split])
                    exchange.forwarded = "partial"
                    self._changed()
                    if self._hold(pause, MID_BODY, exchange):
                        _abort(upstream)
                        _abort(client)
                        return
                    upstream.sendall(message[split:])
                else:
                    upstream.sendall(message)
            except OSError:
                _abort(client)  # the server went away while the request was sent
                return
            exchange.forwarded = "full"
            self._changed()

            try:
                response = self._read_response(ureader, method)
            except ProxyClosed:
                _abort(client)  # no (complete) answer: the app sees its connection reset
                return
            status_line, response_headers, raw_response, response_body, until_close = response
            exchange.status = int(status_line.split(" ")[1])
            exchange.response_headers = response_headers
            exchange.response_body = response_body
            self._changed()

            if self._hold(pause, AFTER_RESPONSE, exchange):
                _abort(client)
                return
            try:
                client.sendall(raw_response)
            except OSError:
                return
            exchange.delivered = True
            self._changed()
            connection = response_headers.get("connection", "").lower()
            if until_close or connection == "close":
                return

    @staticmethod
    def _read_response(
        reader: _Reader, method: str
    ) -> tuple[str, dict[str, str], bytes, bytes, bool]:
        head = reader.until(b"\r\n\r\n")
        status_line, headers = _parse_head(head)
        status = int(status_line.split(" ")[1])
        if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status_line, headers, head, b"", False
        framed = _read_body(reader, headers)
        if framed is None:
            body = reader.rest()
            return status_line, headers, head + body, body, True
        raw, body = framed
        return status_line, headers, head + raw, body, False
