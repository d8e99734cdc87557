"""One sender per outbox file at a time (``app.delivery.lock``): a second sender — in
this process or another — finds the outbox busy and sends nothing, so it can never
take the first one's in-flight item for a crashed one and store it twice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from app.archive.client import open_local
from app.delivery.lock import SendLock
from app.delivery.outbox import Outbox, OutgoingObject
from app.delivery.sender import Sender
from tests.support import dicom_data


def test_a_second_sender_waits_while_the_outbox_is_held(tmp_path: Path) -> None:
    archive = open_local(tmp_path / "archive")
    outbox = Outbox(tmp_path / "journal.sqlite3")
    (item_id,) = outbox.submit([OutgoingObject(dicom_data.sr("lock", prefix="lock"))])
    assert outbox.claim_next() is not None  # a first sender is sending it right now

    held = SendLock(Path(f"{outbox.path}.send-lock"))
    assert held.try_acquire()
    report = Sender(outbox, archive).run_once()
    assert report.busy and report.attempted == 0
    assert outbox.get(item_id).state == "sending"  # not taken for a crashed one
    held.release()

    # The first sender is gone (its lock with it): the next pass recovers and sends.
    report = Sender(outbox, archive).run_once()
    assert not report.busy and report.sent == [item_id]
    assert outbox.get(item_id).state == "sent"


def test_the_lock_is_held_across_processes_and_freed_when_one_dies(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3.send-lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         ("import time; from pathlib import Path; from app.delivery.lock import SendLock;"
          f"lock = SendLock(Path({str(path)!r})); assert lock.try_acquire();"
          "print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        lock = SendLock(path)
        assert not lock.try_acquire()
        holder.kill()  # the holder crashes: the OS drops its lock
        holder.wait()
        deadline = time.monotonic() + 5
        while not lock.try_acquire():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert lock.held
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
