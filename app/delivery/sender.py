"""The background sender: stores outbox items in the archive with STOW-RS.

One object per STOW-RS request, so one bad object never holds back the others
and every answer is about exactly one instance. Before sending, the frozen
bytes are checked against the SHA-256 committed with them. After any unclear
outcome (see ``policy``) the instance is looked up by UID (QIDO-RS) before it is
sent again; found means sent. dicomweb-client's own retries are off
(``open_dicomweb``): this module owns retrying. A pass runs only while it holds
the outbox's send lock (``lock``), so two processes never send the same item.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from app.archive.protocol import ImageArchive
from app.delivery.lock import SendLock
from app.delivery.outbox import Extra, Outbox, OutboxItem, sha256_hex
from app.delivery.policy import Action, Outcome, classify_error, classify_response, retry_delay
from app.errors import ArchiveError, NotFoundError, SignInRequired

log = logging.getLogger(__name__)

IDLE_POLL_S = 5.0
SIGN_IN_WAIT_S = 60.0  # an item that met SignInRequired waits this long, or until ``resume``


@dataclass
class RunReport:
    """What one ``run_once`` did, by outbox item id."""

    sent: list[int] = field(default_factory=list)
    parked: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    unreachable: str = ""  # why the archive could not be reached, when it could not
    busy: bool = False  # another sender (another process) holds the outbox: nothing was tried
    sign_in_required: str = ""  # the archive needs a new sign-in: items wait, nothing parked

    @property
    def attempted(self) -> int:
        return len(self.sent) + len(self.parked) + len(self.retrying)


class Sender:
    """Sends due outbox items to ``archive``; ``run_once`` for a pass, ``start`` for a thread."""

    def __init__(
        self,
        outbox: Outbox,
        archive: ImageArchive,
        *,
        rng: random.Random | None = None,
        on_change: Callable[[RunReport], None] | None = None,
        journal: Callable[[OutboxItem, Outcome], Extra | None] | None = None,
        destination: str | None = None,
    ) -> None:
        """``journal(item, outcome)`` may return rows to write in the same transaction as
        the item's new state (the audit entry of each send; see ``app.delivery.journal``).
        ``destination`` limits the sender to the items submitted for that archive."""
        self.outbox = outbox
        self.destination = destination
        self._journal = journal
        self.archive = archive
        self._rng = rng or random.Random()
        self._on_change = on_change
        self._send_lock = SendLock(Path(f"{outbox.path}.send-lock"))
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()

    # -- one pass ---------------------------------------------------------------
    def run_once(self) -> RunReport:
        """Send every item that is due now. Stops early when the archive is unreachable
        (the rest stay due and are tried on the next pass); does nothing (``busy``) while
        another sender holds the outbox."""
        with self._run_lock:
            report = RunReport()
            if not self._send_lock.try_acquire():
                report.busy = True
                return report
            try:
                self._send_due(report)
            finally:
                self._send_lock.release()
        if report.attempted and self._on_change is not None:
            self._on_change(report)
        return report

    def _send_due(self, report: RunReport) -> None:
        # With the lock held no other sender is running, so an item still in "sending"
        # was left by one that died: its outcome is unknown, look it up first.
        self.outbox.recover_interrupted()
        while not self._stop.is_set():
            item = self.outbox.claim_next(self.destination)
            if item is None:
                break
            try:
                outcome = self._deliver(item)
            except SignInRequired as exc:
                # Nothing reached the archive; the item waits for the sign-in (``resume``),
                # no attempt is counted and nothing is parked.
                self.outbox.hold(item.id, SIGN_IN_WAIT_S, "waiting for sign-in")
                report.sign_in_required = str(exc)
                log.info("outbox item %d waits for a sign-in", item.id)
                break
            except Exception as exc:  # never leave an item in "sending" for this process
                log.exception("outbox item %d: unexpected failure while sending", item.id)
                outcome = Outcome(Action.UNCLEAR, f"unexpected failure: {type(exc).__name__}")
            self._record(item, outcome, report)
            if outcome.unreachable and outcome.action in (Action.RETRY, Action.UNCLEAR):
                report.unreachable = outcome.reason
                break

    def _deliver(self, item: OutboxItem) -> Outcome:
        data = self.outbox.data(item.id)
        if sha256_hex(data) != item.sha256:
            log.error("outbox item %d: stored bytes do not match their SHA-256", item.id)
            return Outcome(Action.PARK, "integrity check failed: the stored bytes do not match "
                           "their SHA-256; not sent")
        if item.verify_first:
            found = self._lookup(item)
            if isinstance(found, Outcome):
                return found
            if found:
                return Outcome(Action.SENT, "found in the archive by UID")
        try:
            response = self._store(data)
        except ArchiveError as exc:
            outcome = classify_error(exc)
        else:
            outcome = classify_response(response, item.sop_instance_uid)
        if outcome.action is Action.UNCLEAR:
            found = self._lookup(item)
            if found is True:
                return Outcome(Action.SENT, "found in the archive by UID after an unclear answer")
        return outcome

    def _store(self, data: bytes) -> Dataset:
        return self.archive.store([pydicom.dcmread(BytesIO(data))])

    def _lookup(self, item: OutboxItem) -> bool | Outcome:
        """Is the instance in the archive? An ``Outcome`` when the lookup itself failed."""
        try:
            refs = self.archive.search_instances(
                study_uid=item.study_instance_uid, series_uid=item.series_instance_uid
            )
        except NotFoundError:
            return False
        except ArchiveError as exc:
            outcome = classify_error(exc)
            # Whatever the lookup's problem, the item's outcome stays unknown.
            return Outcome(Action.UNCLEAR, f"lookup by UID failed: {outcome.reason}",
                           outcome.server_message, outcome.retry_after_s,
                           unreachable=outcome.unreachable)
        return any(ref.sop_uid == item.sop_instance_uid for ref in refs)

    def _record(self, item: OutboxItem, outcome: Outcome, report: RunReport) -> None:
        extra = self._journal(item, outcome) if self._journal is not None else None
        if outcome.action is Action.SENT:
            self.outbox.mark_sent(item.id, outcome.reason, extra=extra)
            report.sent.append(item.id)
            log.info("outbox item %d stored (%s)", item.id, outcome.reason or "ok")
        elif outcome.action is Action.PARK:
            self.outbox.mark_parked(item.id, outcome.reason, outcome.server_message, extra=extra)
            report.parked.append(item.id)
            log.warning("outbox item %d parked: %s", item.id, outcome.reason)
        else:
            delay = retry_delay(outcome, item.attempts, self._rng)
            self.outbox.mark_retry(
                item.id, delay, outcome.reason,
                verify_first=outcome.action is Action.UNCLEAR,
                server_message=outcome.server_message,
                extra=extra,
            )
            report.retrying.append(item.id)
            log.info("outbox item %d: %s; next try in %.1f s", item.id, outcome.reason, delay)

    # -- background thread ------------------------------------------------------
    def start(self) -> None:
        """Run passes on a daemon thread until ``stop``; ``wake`` after a submit."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="outbox-sender", daemon=True)
        self._thread.start()

    def resume(self) -> None:
        """After a sign-in: the items that waited for it are due now; send them."""
        self.outbox.make_due(self.destination)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a broken pass must not end the thread; the next one retries
                log.exception("outbox sender pass failed")
            due_in = self.outbox.next_due_in(self.destination)
            wait = IDLE_POLL_S if due_in is None else min(max(due_in, 0.05), IDLE_POLL_S)
            self._wake.wait(wait)
            self._wake.clear()
