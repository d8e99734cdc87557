"""The fault-injection rig: a real Orthanc on its own storage, the proxy in front of it,
the app started as real processes, and readers of what went over the wire."""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import requests

from app.delivery.outbox import Outbox, sha256_hex
from tests.support import orthanc
from tests.support.tcp_proxy import Exchange, Pause, TcpProxy

REPO = Path(__file__).resolve().parents[2]
COMPANION = Path(sys.executable).with_name("companion")


# -- reading what went over the wire --------------------------------------------------
_SOP_UID_TAG = re.compile(rb"\x08\x00\x18\x00UI")


def request_sop_uid(body: bytes) -> str:
    """The SOP Instance UID (0008,0018) of the one Part 10 object in a STOW body
    (explicit VR little endian, as the outbox freezes it); '' when not found."""
    match = _SOP_UID_TAG.search(body)
    if match is None:
        return ""
    (length,) = struct.unpack("<H", body[match.end() : match.end() + 2])
    start = match.end() + 2
    return body[start : start + length].rstrip(b"\x00 ").decode("ascii")


def answered_uids(exchange: Exchange) -> list[str]:
    """The SOP Instance UIDs a STOW answer lists as stored (Referenced SOP Sequence)."""
    if exchange.status != 200:
        return []
    try:
        answer = json.loads(exchange.decoded_response())
    except ValueError:
        return []
    entries = answer.get("00081199", {}).get("Value", []) if isinstance(answer, dict) else []
    return [str(e["00081155"]["Value"][0]) for e in entries if "00081155" in e]


def is_stow(exchange: Exchange) -> bool:
    return exchange.method == "POST" and exchange.target.rstrip("/").endswith("/studies")


def is_lookup(exchange: Exchange) -> bool:
    return exchange.method == "GET" and "/instances" in exchange.target


# -- the rig: Orthanc, the proxy, the app processes ----------------------------------
# -- the rig ------------------------------------------------------------------------
class Rig:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.server = orthanc.start_orthanc(folder / "orthanc")
        self.proxy = TcpProxy(self.server.http_port)
        self.app_runs = 0
        self.orthanc_restarts = 0
        self.outbox_path = folder / "journal.sqlite3"  # the app's journal (outbox) file
        self.last_log = self.logs / "none.log"

    def outbox(self) -> Outbox:
        return Outbox(self.outbox_path)

    @property
    def url(self) -> str:
        return f"{self.proxy.url}/dicom-web"

    def close(self) -> None:
        self.proxy.close()
        self.server.process.kill()  # a throwaway server: no need for a graceful stop
        self.server.process.wait(10)

    # the app ----------------------------------------------------------------
    def start_app(self, mode: str, tag: str) -> subprocess.Popen[bytes]:
        """``companion outbox flush`` or the background sender, as its own process."""
        self.app_runs += 1
        if mode == "flush":
            command = [str(COMPANION), "-v", "outbox", "--outbox-file", str(self.outbox_path),
                       "flush", "--server", self.url, "--timeout", "60"]
        else:
            command = [sys.executable, "-m", "tests.reliability.sender_app", self.url,
                       "--outbox-file", str(self.outbox_path), "--timeout", "90"]
        self.last_log = self.logs / f"{self.app_runs:04d}-{tag}-{mode}.log"
        log = open(self.last_log, "wb")  # noqa: SIM115
        with log:
            return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                    env=dict(os.environ))

    def finish(self, app: subprocess.Popen[bytes], timeout: float = 120.0) -> int:
        try:
            return app.wait(timeout)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
            raise AssertionError(f"the app did not finish within {timeout:g} s: {app.args!r}")

    @staticmethod
    def kill(app: subprocess.Popen[bytes]) -> bool:
        """SIGKILL; True when it was still running (the kill landed)."""
        landed = app.poll() is None
        app.send_signal(signal.SIGKILL)
        app.wait()
        return landed

    def drain(self, tag: str) -> int:
        """Start the app again until the outbox has nothing left to send (waiting out any
        backoff, as the user would); the number of starts."""
        starts = 0
        while True:
            outbox = self.outbox()
            try:
                left = outbox.pending()
                due_in = outbox.next_due_in() or 0.0
            finally:
                outbox.close()
            if not left:
                return starts
            assert starts < 6, f"{tag}: still {len(left)} pending after {starts} app starts"
            time.sleep(min(due_in, 30.0))
            starts += 1
            rc = self.finish(self.start_app("flush", f"{tag}-restart{starts}"))
            assert rc == 0, f"{tag}: flush after restart exited {rc} (see {self.logs})"

    # Orthanc ----------------------------------------------------------------
    def take_orthanc_down(self, graceful: bool, pause: Pause | None) -> None:
        self.proxy.stop_listening()  # from now on the app's connections are refused
        process = self.server.process
        if graceful:
            process.send_signal(signal.SIGTERM)
            if pause is not None:
                pause.resume()  # the held bytes reach a server that is shutting down
            process.wait(60)
        else:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            if pause is not None:
                pause.drop()

    def bring_orthanc_back(self) -> None:
        self.server = orthanc.start_orthanc(self.server.folder)  # same storage, new ports
        self.proxy.start_listening(self.server.http_port)  # same URL for the app
        self.orthanc_restarts += 1

    # the archive, asked directly ----------------------------------------------
    def copies(self, sop_uid: str) -> int:
        response = requests.get(f"{self.server.dicomweb_url}/instances",
                                params={"SOPInstanceUID": sop_uid}, timeout=30)
        response.raise_for_status()
        return len(response.json()) if response.content else 0

    def stored_sha256(self, sop_uid: str) -> str:
        found = requests.post(f"{self.server.base_url}/tools/lookup", data=sop_uid,
                              timeout=30).json()
        (instance,) = [f for f in found if f["Type"] == "Instance"]
        data = requests.get(f"{self.server.base_url}/instances/{instance['ID']}/file",
                            timeout=30).content
        return sha256_hex(data)

    def instance_count(self) -> int:
        return int(requests.get(f"{self.server.base_url}/statistics",
                                timeout=30).json()["CountInstances"])
