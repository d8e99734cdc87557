"""The outbox's storage and states, the retry/park policy, and ``outbox status`` (no server)."""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import threading
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset

from app.delivery import cli
from app.delivery.outbox import Outbox, OutboxError, OutgoingObject, sha256_hex
from app.delivery.policy import (
    MAX_DELAY_S,
    Action,
    backoff_delay,
    classify_error,
    classify_response,
    classify_status,
    retry_delay,
)
from app.errors import ArchiveHTTPError, ArchiveUnreachable
from app.settings import journal_path
from tests.support import dicom_data


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def srs() -> list[Dataset]:
    return [dicom_data.sr(f"unit-{i}") for i in range(3)]


def test_submit_commits_frozen_bytes_that_survive_a_restart(tmp_path: Path, srs: list[Dataset]) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path)
    ids = outbox.submit([OutgoingObject(ds, "AI SR") for ds in srs])
    outbox.close()  # the "process" ends

    again = Outbox(path)
    pending = again.pending()
    assert [item.id for item in pending] == ids
    for item, ds in zip(pending, srs, strict=True):
        assert item.state == "pending"
        assert item.sop_instance_uid == ds.SOPInstanceUID
        assert item.study_instance_uid == ds.StudyInstanceUID
        assert item.series_instance_uid == ds.SeriesInstanceUID
        assert item.sop_class_uid == ds.SOPClassUID
        data = again.data(item.id)
        assert sha256_hex(data) == item.sha256
        assert data[128:132] == b"DICM"  # preamble + file meta, as Orthanc needs
        back = pydicom.dcmread(BytesIO(data))
        assert back.SOPInstanceUID == ds.SOPInstanceUID
        assert back.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_database_is_wal_with_full_sync(tmp_path: Path, srs: list[Dataset]) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    outbox.submit([OutgoingObject(srs[0])])
    assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    other = sqlite3.connect(tmp_path / "o.sqlite3")
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_default_path_is_in_the_data_dir(srs: list[Dataset]) -> None:
    from app.settings import data_dir

    outbox = Outbox()
    assert outbox.path == data_dir() / "journal.sqlite3"


def test_extra_rows_share_the_transaction(tmp_path: Path, srs: list[Dataset]) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")

    def decisions(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS decision (finding TEXT, verdict TEXT)")
        db.execute("INSERT INTO decision VALUES ('f1', 'accepted')")

    outbox.submit([OutgoingObject(srs[0])], extra=decisions)

    def failing(db: sqlite3.Connection) -> None:
        decisions(db)
        raise RuntimeError("the review layer failed half-way")

    with pytest.raises(RuntimeError):
        outbox.submit([OutgoingObject(srs[1])], extra=failing)
    # All or nothing: the failed submit left neither its object nor its decision.
    assert [i.sop_instance_uid for i in outbox.pending()] == [srs[0].SOPInstanceUID]
    rows = outbox._db.execute("SELECT COUNT(*) FROM decision").fetchone()[0]
    assert rows == 1


def test_an_object_without_uids_is_refused(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    with pytest.raises(OutboxError, match="SOPInstanceUID"):
        outbox.submit([OutgoingObject(Dataset(), "empty")])
    assert outbox.pending() == []


def test_states_backoff_and_user_actions(tmp_path: Path, srs: list[Dataset]) -> None:
    clock = FakeClock()
    outbox = Outbox(tmp_path / "o.sqlite3", clock=clock)
    a, b, c = outbox.submit([OutgoingObject(ds) for ds in srs])

    first = outbox.claim_next()
    assert first is not None and first.id == a and first.state == "sending"
    outbox.mark_retry(a, 30.0, "HTTP 503", verify_first=True)
    item = outbox.get(a)
    assert (item.state, item.attempts, item.verify_first) == ("pending", 1, True)
    assert item.next_attempt_at == clock.now + 30.0

    # a is not due: the next claims are b then c.
    second, third = outbox.claim_next(), outbox.claim_next()
    assert second is not None and third is not None and (second.id, third.id) == (b, c)
    assert outbox.claim_next() is None
    assert outbox.next_due_in() == 30.0
    outbox.mark_sent(b)
    outbox.mark_parked(c, "HTTP 403: the archive refused (not allowed)", "Forbidden by policy")
    clock.now += 31
    again = outbox.claim_next()
    assert again is not None and again.id == a

    status = outbox.status()
    assert status.counts["sent"] == 1 and status.counts["parked"] == 1
    assert status.pending == 1
    assert status.parked[0].server_message == "Forbidden by policy"

    with pytest.raises(OutboxError, match="sent"):
        outbox.retry(b)  # only a parked item can be retried
    outbox.retry(c)
    assert outbox.get(c).state == "pending" and outbox.get(c).verify_first
    outbox.discard(c)
    assert outbox.get(c).state == "discarded"
    with pytest.raises(OutboxError, match="no outbox item"):
        outbox.get(999)


def test_items_left_sending_by_a_crash_are_looked_up_first(tmp_path: Path, srs: list[Dataset]) -> None:
    path = tmp_path / "o.sqlite3"
    outbox = Outbox(path)
    (item_id,) = outbox.submit([OutgoingObject(srs[0])])
    assert outbox.claim_next() is not None
    outbox.close()  # crash while sending

    again = Outbox(path)
    assert again.get(item_id).state == "sending"
    assert again.recover_interrupted() == 1
    item = again.get(item_id)
    assert item.state == "pending" and item.verify_first


def test_concurrent_submits_from_threads(tmp_path: Path, srs: list[Dataset]) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3")
    ids: list[int] = []

    def work() -> None:
        for _ in range(5):
            ids.extend(outbox.submit([OutgoingObject(srs[0])]))
            outbox.status()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 20 and len(outbox.pending()) == 20


# -- policy -------------------------------------------------------------------
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 415, 422])
def test_client_errors_park(status: int) -> None:
    outcome = classify_status(status, "why")
    assert outcome.action is Action.PARK
    assert outcome.reason.startswith(f"HTTP {status}") and outcome.server_message == "why"


@pytest.mark.parametrize(
    ("status", "action"),
    [(408, Action.RETRY), (429, Action.RETRY), (500, Action.UNCLEAR), (502, Action.UNCLEAR),
     (503, Action.UNCLEAR), (504, Action.UNCLEAR)],
)
def test_server_errors_retry(status: int, action: Action) -> None:
    assert classify_status(status).action is action


def _http_error(status: int, headers: dict[str, str], body: str = "") -> ArchiveHTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response._content = body.encode()
    error = ArchiveHTTPError(f"HTTP {status}", status=status, server_message=body)
    error.__cause__ = requests.exceptions.HTTPError(response=response)
    return error


def test_retry_after_is_honoured() -> None:
    outcome = classify_error(_http_error(429, {"Retry-After": "120"}))
    assert outcome.action is Action.RETRY and outcome.retry_after_s == 120.0
    assert retry_delay(outcome, 0, random.Random(1)) >= 120.0
    dated = classify_error(_http_error(503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}))
    assert dated.action is Action.RETRY and dated.retry_after_s is not None
    assert retry_delay(dated, 0) == 3600.0  # a far date is capped


def test_connection_errors_retry_and_broken_answers_are_unclear() -> None:
    refused = ArchiveUnreachable("Cannot reach the archive: connection refused")
    refused.__cause__ = requests.exceptions.ConnectionError(
        "HTTPConnectionPool: Max retries exceeded (Caused by NewConnectionError: "
        "[Errno 111] Connection refused)"
    )
    assert classify_error(refused).action is Action.RETRY
    assert classify_error(refused).unreachable
    for cause in (
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())"),
        requests.exceptions.ChunkedEncodingError("broken"),
    ):
        error = ArchiveUnreachable("lost")
        error.__cause__ = cause
        assert classify_error(error).action is Action.UNCLEAR, cause
    timeout = ArchiveUnreachable("timed out")
    timeout.__cause__ = requests.exceptions.ConnectTimeout("connect timed out")
    assert classify_error(timeout).action is Action.RETRY


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, rng=rng) for n in range(12)]
    for n, delay in enumerate(delays):
        full = min(MAX_DELAY_S, 2.0**n)
        assert max(1.0, full / 2) <= delay <= full
    assert delays[-1] <= MAX_DELAY_S


def _uid_item(uid: str, **more: object) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.34"
    item.ReferencedSOPInstanceUID = uid
    for keyword, value in more.items():
        setattr(item, keyword, value)
    return item


def test_stow_answers_are_read_per_instance() -> None:
    ok = Dataset()
    ok.ReferencedSOPSequence = [_uid_item("1.2.3")]
    assert classify_response(ok, "1.2.3").action is Action.SENT

    failed = Dataset()
    failed.FailedSOPSequence = [_uid_item("1.2.3", FailureReason=0xC000)]
    outcome = classify_response(failed, "1.2.3")
    assert outcome.action is Action.PARK and "0xC000" in outcome.reason

    busy = Dataset()
    busy.FailedSOPSequence = [_uid_item("1.2.3", FailureReason=0xA700)]
    assert classify_response(busy, "1.2.3").action is Action.UNCLEAR

    other = Dataset()
    other.ReferencedSOPSequence = [_uid_item("9.9.9")]
    assert classify_response(other, "1.2.3").action is Action.UNCLEAR
    assert classify_response(Dataset(), "1.2.3").action is Action.UNCLEAR


# -- CLI ----------------------------------------------------------------------
def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="companion")
    sub = parser.add_subparsers(dest="command")
    cli.add_parsers(sub)
    return parser.parse_args(argv)


def test_cli_status_json(capsys: pytest.CaptureFixture[str], srs: list[Dataset]) -> None:
    # No server and no profile: like the app, the CLI is on the offline demo's journal.
    outbox = Outbox(journal_path(demo=True))
    ids = outbox.submit([OutgoingObject(ds, "assessment SR") for ds in srs])
    assert outbox.claim_next() is not None
    outbox.mark_parked(ids[0], "HTTP 403: the archive refused (not allowed)", "no write access")
    outbox.close()

    assert cli.run(_parse(["outbox", "status", "--json"])) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pending"] == 2
    assert out["counts"]["parked"] == 1 and out["counts"]["sent"] == 0
    (parked,) = out["parked"]
    assert parked["id"] == ids[0] and parked["label"] == "assessment SR"
    assert parked["reason"].startswith("HTTP 403") and parked["server_message"] == "no write access"

    assert cli.run(_parse(["outbox", "status"])) == 0
    text = capsys.readouterr().out
    assert "pending: 2" in text and "parked: 1" in text and "no write access" in text

    assert cli.run(_parse(["outbox", "retry", str(ids[0])])) == 0
    assert cli.run(_parse(["outbox", "retry", str(ids[0])])) != 0  # no longer parked
    assert "expected one of parked" in capsys.readouterr().err


def test_sends_to_the_embedded_local_archive(tmp_path: Path, srs: list[Dataset]) -> None:
    """The offline demo's archive (DICOMfileClient) takes the same path as a server."""
    from app.archive.client import open_local
    from app.delivery.sender import Sender

    archive = open_local(tmp_path / "archive")
    outbox = Outbox(tmp_path / "o.sqlite3")
    (item_id,) = outbox.submit([OutgoingObject(srs[0])])
    assert Sender(outbox, archive).run_once().sent == [item_id]
    refs = archive.search_instances(srs[0].StudyInstanceUID, srs[0].SeriesInstanceUID)
    assert [ref.sop_uid for ref in refs] == [srs[0].SOPInstanceUID]
