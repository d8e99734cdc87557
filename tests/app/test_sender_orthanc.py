"""The sender against a real Orthanc (and, for answers Orthanc cannot give, a stub server).

Exactly-once is checked by QIDO-RS on the SOP Instance UID after each scenario.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pydicom.dataset import Dataset

from app.archive.client import open_dicomweb
from app.audit.events import EventKind
from app.audit.log import AuditLog
from app.delivery import cli
from app.delivery.outbox import Outbox, OutgoingObject, sha256_hex
from app.delivery.sender import Sender
from tests.support import dicom_data, orthanc

pytestmark = pytest.mark.orthanc

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class CountingSession(requests.Session):
    """A real HTTP session that counts the STOW-RS requests it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if str(method).upper() == "POST":
            self.posts += 1
        return super().request(method, url, *args, **kwargs)


def _srs(tag: str, n: int) -> list[Dataset]:
    return [dicom_data.sr(f"{tag}-{i}") for i in range(n)]


def _copies_in(server: orthanc.OrthancServer, sop_uid: str) -> int:
    response = requests.get(
        f"{server.dicomweb_url}/instances", params={"SOPInstanceUID": sop_uid}, timeout=30
    )
    response.raise_for_status()
    return len(response.json()) if response.content else 0


def test_sends_one_sr_per_request_exactly_once(
    empty_orthanc: orthanc.OrthancServer, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite3"
    srs = _srs("send", 3)
    first = Outbox(path)
    first.submit([OutgoingObject(ds, "AI SR") for ds in srs])
    first.close()  # the app quits before anything was sent

    session = CountingSession()
    outbox = Outbox(path)  # the next start picks the pending items up
    sender = Sender(outbox, open_dicomweb(empty_orthanc.dicomweb_url, session=session))
    report = sender.run_once()
    assert len(report.sent) == 3 and not report.parked and not report.retrying
    assert session.posts == 3  # one SR per STOW-RS request
    assert outbox.status().counts["sent"] == 3 and outbox.pending() == []
    for ds, item in zip(srs, outbox.items("sent"), strict=True):
        assert _copies_in(empty_orthanc, ds.SOPInstanceUID) == 1
        # The archive holds exactly the bytes that were committed.
        (found,) = requests.post(
            f"{empty_orthanc.base_url}/tools/lookup", data=ds.SOPInstanceUID, timeout=30
        ).json()
        stored = requests.get(
            f"{empty_orthanc.base_url}/instances/{found['ID']}/file", timeout=30
        ).content
        assert sha256_hex(stored) == item.sha256
    assert sender.run_once().attempted == 0


def test_archive_down_midway_then_back_sends_everything_once(tmp_path: Path) -> None:
    folder = tmp_path / "orthanc"
    server = orthanc.start_orthanc(folder)
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite3", clock=clock)
    srs = _srs("down", 5)
    try:
        outbox.submit([OutgoingObject(ds) for ds in srs[:2]])
        sender = Sender(outbox, open_dicomweb(server.dicomweb_url, timeout=5))
        assert len(sender.run_once().sent) == 2
        outbox.submit([OutgoingObject(ds) for ds in srs[2:]])
        server.stop()

        report = sender.run_once()
        assert report.unreachable and len(report.retrying) == 1 and not report.sent
        failed = outbox.get(report.retrying[0])
        assert failed.state == "pending" and failed.attempts == 1
        assert failed.next_attempt_at >= clock.now + 0.5  # backed off, not hammered
        report = sender.run_once()  # only the items not yet tried are due
        assert report.unreachable and report.retrying != [failed.id]
        assert len(outbox.pending()) == 3 and outbox.parked() == []

        # The same storage folder comes back (on new ports: a new archive URL).
        server = orthanc.start_orthanc(folder)
        sender.archive = open_dicomweb(server.dicomweb_url, timeout=5)
        clock.now += 3600
        sent: list[int] = []
        for _ in range(5):
            sent += sender.run_once().sent
        assert len(sent) == 3 and outbox.pending() == []
        for ds in srs:
            assert _copies_in(server, ds.SOPInstanceUID) == 1
        assert len(requests.get(f"{server.base_url}/instances", timeout=30).json()) == 5
    finally:
        server.stop()


def test_item_left_sending_by_a_crash_is_found_without_a_second_stow(
    empty_orthanc: orthanc.OrthancServer, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite3"
    (ds,) = _srs("crash", 1)
    before = Outbox(path)
    (item_id,) = before.submit([OutgoingObject(ds)])
    assert before.claim_next() is not None
    # The STOW reached the server, then the app died before recording the answer.
    open_dicomweb(empty_orthanc.dicomweb_url).store([ds])
    before.close()

    session = CountingSession()
    outbox = Outbox(path)
    report = Sender(outbox, open_dicomweb(empty_orthanc.dicomweb_url, session=session)).run_once()
    assert report.sent == [item_id] and session.posts == 0
    assert outbox.get(item_id).reason == "found in the archive by UID"
    assert _copies_in(empty_orthanc, ds.SOPInstanceUID) == 1


def test_corrupt_bytes_are_parked_and_never_sent(
    empty_orthanc: orthanc.OrthancServer, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite3"
    (ds,) = _srs("corrupt", 1)
    outbox = Outbox(path)
    (item_id,) = outbox.submit([OutgoingObject(ds)])
    raw = sqlite3.connect(path)
    raw.execute(
        "UPDATE outbox_item SET data = substr(data, 1, 400) || x'00' || substr(data, 402)"
        " WHERE id = ?",
        (item_id,),
    )
    raw.commit()
    raw.close()

    session = CountingSession()
    report = Sender(outbox, open_dicomweb(empty_orthanc.dicomweb_url, session=session)).run_once()
    assert report.parked == [item_id] and session.posts == 0
    assert "SHA-256" in outbox.get(item_id).reason
    assert _copies_in(empty_orthanc, ds.SOPInstanceUID) == 0


def test_background_thread_sends_what_is_submitted(
    empty_orthanc: orthanc.OrthancServer, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    sender = Sender(outbox, open_dicomweb(empty_orthanc.dicomweb_url))
    sender.start()
    try:
        (ds,) = _srs("thread", 1)
        (item_id,) = outbox.submit([OutgoingObject(ds)])
        sender.wake()
        deadline = time.monotonic() + 20
        while outbox.get(item_id).state != "sent" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    assert outbox.get(item_id).state == "sent"
    assert _copies_in(empty_orthanc, ds.SOPInstanceUID) == 1


# -- answers Orthanc cannot be made to give ------------------------------------
class StubArchive:
    """A stand-in DICOMweb server on 127.0.0.1: Orthanc cannot be made to answer a STOW
    with 403, 409, 429 + Retry-After, a Failed SOP Sequence, or to drop the connection
    after reading the request, so this answers what each test sets. QIDO-RS answers
    list the instances in ``stored``."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self.body = b""
        self.drop = False  # read the request, store the instance, close without answering
        self.stored: list[dict[str, Any]] = []
        self.posts = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                stub.posts += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if stub.drop:
                    stub.stored.append(stub.pending_instance)
                    self.close_connection = True
                    return
                self.send_response(stub.status)
                for key, value in {"Content-Type": "application/dicom+json",
                                   **stub.headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(stub.body)))
                self.end_headers()
                self.wfile.write(stub.body)

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                offset = int(query.get("offset", ["0"])[0])
                body = json.dumps(stub.stored[offset:]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.pending_instance: dict[str, Any] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _qido_instance(ds: Dataset) -> dict[str, Any]:
    return {
        "00080016": {"vr": "UI", "Value": [str(ds.SOPClassUID)]},
        "00080018": {"vr": "UI", "Value": [str(ds.SOPInstanceUID)]},
        "0020000D": {"vr": "UI", "Value": [str(ds.StudyInstanceUID)]},
        "0020000E": {"vr": "UI", "Value": [str(ds.SeriesInstanceUID)]},
    }


@pytest.fixture()
def stub() -> Iterator[StubArchive]:
    server = StubArchive()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def one_sr() -> Dataset:
    return dicom_data.sr("stub-0")


@pytest.mark.parametrize("status", [400, 403, 409, 415])
def test_refusals_are_parked_with_the_server_message_and_not_retried(
    stub: StubArchive, one_sr: Dataset, tmp_path: Path, status: int
) -> None:
    stub.status, stub.body = status, b"You may not store here"
    stub.headers = {"Content-Type": "text/plain"}
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite3", clock=clock)
    (item_id,) = outbox.submit([OutgoingObject(one_sr)])
    sender = Sender(outbox, open_dicomweb(stub.url))
    assert sender.run_once().parked == [item_id]
    item = outbox.get(item_id)
    assert item.reason.startswith(f"HTTP {status}")
    assert item.server_message == "You may not store here"
    clock.now += 86400
    assert sender.run_once().attempted == 0 and stub.posts == 1  # never in a loop


def test_429_backs_off_for_retry_after(stub: StubArchive, one_sr: Dataset, tmp_path: Path) -> None:
    stub.status, stub.headers = 429, {"Retry-After": "120"}
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite3", clock=clock)
    (item_id,) = outbox.submit([OutgoingObject(one_sr)])
    sender = Sender(outbox, open_dicomweb(stub.url))
    assert sender.run_once().retrying == [item_id]
    assert outbox.get(item_id).next_attempt_at >= clock.now + 120
    clock.now += 60
    assert sender.run_once().attempted == 0 and stub.posts == 1

    reference = Dataset()
    reference.ReferencedSOPSequence = [Dataset()]
    reference.ReferencedSOPSequence[0].ReferencedSOPClassUID = SR_CLASS
    reference.ReferencedSOPSequence[0].ReferencedSOPInstanceUID = one_sr.SOPInstanceUID
    stub.status, stub.headers = 200, {}
    stub.body = json.dumps(reference.to_json_dict()).encode()
    clock.now += 61
    assert sender.run_once().sent == [item_id] and stub.posts == 2


def test_failed_sop_sequence_in_a_202_is_parked_with_its_reason(
    stub: StubArchive, one_sr: Dataset, tmp_path: Path
) -> None:
    answer = Dataset()
    answer.FailedSOPSequence = [Dataset()]
    answer.FailedSOPSequence[0].ReferencedSOPClassUID = SR_CLASS
    answer.FailedSOPSequence[0].ReferencedSOPInstanceUID = one_sr.SOPInstanceUID
    answer.FailedSOPSequence[0].FailureReason = 0xA900
    stub.status, stub.body = 202, json.dumps(answer.to_json_dict()).encode()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    (item_id,) = outbox.submit([OutgoingObject(one_sr)])
    assert Sender(outbox, open_dicomweb(stub.url)).run_once().parked == [item_id]
    assert "0xA900" in outbox.get(item_id).reason
    assert "does not match SOP class" in outbox.get(item_id).reason


def test_connection_dropped_after_sending_is_looked_up_not_resent(
    stub: StubArchive, one_sr: Dataset, tmp_path: Path
) -> None:
    stub.drop, stub.pending_instance = True, _qido_instance(one_sr)
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite3", clock=clock)
    (item_id,) = outbox.submit([OutgoingObject(one_sr)])
    sender = Sender(outbox, open_dicomweb(stub.url))
    report = sender.run_once()
    # The lookup right after the broken answer already finds it.
    assert report.sent == [item_id] and stub.posts == 1
    assert "found in the archive" in outbox.get(item_id).reason


def test_5xx_is_unclear_and_looked_up_before_the_next_send(
    stub: StubArchive, one_sr: Dataset, tmp_path: Path
) -> None:
    stub.status, stub.body = 500, b"internal error"
    stub.headers = {"Content-Type": "text/plain"}
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.sqlite3", clock=clock)
    (item_id,) = outbox.submit([OutgoingObject(one_sr)])
    sender = Sender(outbox, open_dicomweb(stub.url))
    assert sender.run_once().retrying == [item_id]
    assert outbox.get(item_id).verify_first
    stub.stored = [_qido_instance(one_sr)]  # the server had stored it after all
    clock.now += 3600
    assert sender.run_once().sent == [item_id] and stub.posts == 1


# -- CLI flush ----------------------------------------------------------------
def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="companion")
    sub = parser.add_subparsers(dest="command")
    cli.add_parsers(sub)
    return parser.parse_args(argv)


def test_cli_flush_to_orthanc_and_to_a_dead_server(
    empty_orthanc: orthanc.OrthancServer,
    capsys: pytest.CaptureFixture[str],
    memory_keyring: object,
) -> None:
    srs = _srs("cli", 2)
    outbox = Outbox()
    ids = outbox.submit([OutgoingObject(ds, "assessment SR") for ds in srs])
    outbox.close()

    dead = f"http://127.0.0.1:{orthanc.free_port()}/dicom-web"
    assert cli.run(_parse(["outbox", "flush", "--server", dead, "--timeout", "10"])) == 1
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert "unreachable" in line and "2 item(s) still pending" in line

    # The backed-off item waits; a later flush sends the other, then (when due) both.
    args = _parse(["outbox", "flush", "--server", empty_orthanc.dicomweb_url])
    assert cli.run(args) == 0
    out = capsys.readouterr().out
    assert f"#{ids[1]}" in out and "sent" in out
    waiting = Outbox().get(ids[0])
    assert waiting.state == "pending" and waiting.attempts == 1
    raw = sqlite3.connect(Outbox().path)
    raw.execute("UPDATE outbox_item SET next_attempt_at = 0")
    raw.commit()
    raw.close()
    assert cli.run(args) == 0
    assert "1 sent, 0 parked, 0 still pending" in capsys.readouterr().out
    for ds in srs:
        assert _copies_in(empty_orthanc, ds.SOPInstanceUID) == 1
    # Every attempt is in the audit trail, committed with the item's state.
    with AuditLog(Outbox().path) as audit:
        sends = [e.event for e in audit.entries() if e.event.kind == EventKind.SEND_OUTCOME]
        assert audit.verify().ok
    actions = [(e.sop_uids[0], e.details["action"]) for e in sends]
    uid0, uid1 = (str(ds.SOPInstanceUID) for ds in srs)
    assert actions == [(uid0, "retry"), (uid1, "sent"), (uid0, "sent")]
    assert all(e.details["destination"] == empty_orthanc.dicomweb_url.rstrip("/")
               for e in sends[1:])
