"""One running companion per user: a second launch hands its request over and exits.

A reader clicks a ``companion://`` link in the PACS or runs ``companion --open UID``
while the companion is already open: the running one should open that study and come
to the front, not a second window with a second outbox and journal. The first
instance listens on a per-user local socket (a Unix socket in the user's runtime
folder, a named pipe on Windows) through ``multiprocessing.connection``, which
authenticates each client with a key only this user can read. A later launch
connects, sends its request, waits for the answer and exits.

A socket left behind by a crash is found out (nobody answers on it) and replaced.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path

import platformdirs

from app.settings import APP_NAME

log = logging.getLogger(__name__)

_KEY_FILE = "instance.key"
_SOCKET_FILE = "instance.sock"
_TIMEOUT_S = 5.0
_MAX_UNIX_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


@dataclass(frozen=True)
class HandOver:
    """What a later launch asks of the running instance (all empty: just come to the front)."""

    study_uid: str | None = None
    accession: str | None = None
    link: str | None = None  # a companion:// link, checked by the running instance
    sidecar: bool = False


def runtime_dir() -> Path:
    """A folder only this user can read: where the socket and its key live."""
    home = os.environ.get("COMPANION_HOME")
    if home:
        folder = Path(home) / "run"
    elif sys.platform.startswith("linux"):
        folder = Path(platformdirs.user_runtime_dir(APP_NAME, appauthor=False))
    else:
        folder = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "run"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "nt":
        os.chmod(folder, 0o700)
    return folder


def _address(folder: Path) -> tuple[str, str]:
    if os.name == "nt":
        user = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
        return rf"\\.\pipe\{APP_NAME}-{user}", "AF_PIPE"
    path = str(folder / _SOCKET_FILE)
    if len(path) > _MAX_UNIX_PATH:  # a deep home folder: a short name in the temp folder
        digest = hashlib.sha256(path.encode()).hexdigest()[:16]
        path = str(Path(tempfile.gettempdir()) / f"{APP_NAME}-{digest}.sock")
    return path, "AF_UNIX"


class InstanceServer:
    """The running instance's listener; ``on_request`` is called on its own thread."""

    def __init__(
        self,
        listener: Listener,
        address: tuple[str, str],
        key: bytes,
        on_request: Callable[[HandOver], None],
    ) -> None:
        self._listener = listener
        self._address = address
        self._key = key
        self._on_request = on_request
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="single-instance", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn = self._listener.accept()
            except Exception as exc:  # noqa: BLE001 - the listener must outlive a bad client
                # Closed, a client without this user's key, or one that hung up mid-way.
                if self._closed.is_set():
                    return
                log.warning("a launch could not hand its request over: %s", type(exc).__name__)
                continue
            if self._closed.is_set():
                conn.close()
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: Connection) -> None:
        with conn:
            try:
                if not conn.poll(_TIMEOUT_S):
                    return
                message = conn.recv()
                request = HandOver(**message) if isinstance(message, dict) else None
            except (OSError, EOFError, TypeError) as exc:
                log.warning("unreadable hand-over request: %s", type(exc).__name__)
                return
            if request is None:
                return
            try:
                self._on_request(request)
            except Exception:  # the handler's trouble is not the sender's
                log.exception("handling a hand-over request failed")
            try:
                conn.send({"ok": True})
            except OSError:
                pass

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        # A blocked accept() does not notice close(): wake it with a last client. That
        # client waits for the listener's handshake, so it runs on a thread of its own and
        # is never waited for: closing must not hang on a listener that stopped listening.
        if self._thread.is_alive():
            threading.Thread(target=self._wake, name="single-instance-wake", daemon=True).start()
            self._thread.join(timeout=2)
        try:
            self._listener.close()
        except OSError:
            pass
        if os.name != "nt":
            Path(self._address[0]).unlink(missing_ok=True)

    def _wake(self) -> None:
        try:
            Client(self._address[0], family=self._address[1], authkey=self._key).close()
        except Exception:  # noqa: BLE001, S110 - only a wake-up call
            pass


def _write_key(folder: Path, key: bytes) -> None:
    tmp = folder / (_KEY_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    os.replace(tmp, folder / _KEY_FILE)


def _read_key(folder: Path) -> bytes | None:
    try:
        return (folder / _KEY_FILE).read_bytes()
    except OSError:
        return None


def hand_over(request: HandOver, folder: Path | None = None) -> bool:
    """Give ``request`` to the running instance; False if none answers."""
    folder = folder or runtime_dir()
    key = _read_key(folder)
    if key is None:
        return False
    address, family = _address(folder)
    try:
        with Client(address, family=family, authkey=key) as conn:
            conn.send(asdict(request))
            if not conn.poll(_TIMEOUT_S):
                return False
            answer = conn.recv()
    except (OSError, EOFError, ValueError, AuthenticationError) as exc:
        # No listener (a crash left the socket), or a key from an older instance.
        log.debug("no running instance answered: %s", type(exc).__name__)
        return False
    return isinstance(answer, dict) and bool(answer.get("ok"))


def claim(
    request: HandOver,
    on_request: Callable[[HandOver], None],
    folder: Path | None = None,
) -> InstanceServer | None:
    """Hand ``request`` to the running instance and return None, or become the running one.

    Two launches at the same moment: one binds the socket, the other finds it bound,
    looks again and hands over. A socket nobody answers on (left by a crash) is removed.
    """
    folder = folder or runtime_dir()
    address, family = _address(folder)
    for _attempt in range(3):
        if hand_over(request, folder):
            return None
        key = secrets.token_bytes(32)
        try:
            listener = Listener(address, family=family, authkey=key)
        except OSError:
            time.sleep(0.2)  # maybe an instance that is starting: give it a moment
            if hand_over(request, folder):
                return None
            if os.name != "nt":
                Path(address).unlink(missing_ok=True)
            continue
        if os.name != "nt":
            os.chmod(address, 0o600)
        # Only the instance that bound the socket writes the key, so a launch that lost
        # the race cannot replace it.
        _write_key(folder, key)
        return InstanceServer(listener, (address, family), key, on_request)
    raise OSError(f"cannot listen for later launches at {address}")
