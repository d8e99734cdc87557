"""The write-back services of one connection: journal (outbox, audit, reviews) and sender.

The offline demo keeps its own journal file, so demo reviews never reach a real
archive and never share an audit chain with real ones. Where the machine has no
secure OS keyring, the demo (only the demo) keeps its audit key in a file beside
its journal and says so; a real connection refuses to run the audit trail then.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from app.archive.protocol import ImageArchive
from app.audit.key import KEY_BYTES, load_key
from app.audit.log import AuditLog
from app.delivery.journal import send_audit_hook
from app.delivery.outbox import Outbox
from app.delivery.sender import Sender
from app.domain import Reader
from app.errors import AuditError
from app.review.reader import current_reader
from app.review.store import ReviewStore
from app.settings import Settings, data_dir, journal_path

log = logging.getLogger(__name__)

DEMO_KEY_FILE = "demo-audit.key"


def audit_key(demo: bool) -> tuple[bytes, str]:
    """The audit key and a notice for the user ("" normally).

    From the OS keyring; for the demo only, where no secure keyring exists, from a
    file in the data folder (with a notice). Raises ``AuditError`` otherwise."""
    try:
        return load_key(create=True), ""
    except AuditError as exc:
        if not demo:
            raise
        log.warning("demo audit key kept in a file: no secure OS keyring")
        return _demo_key(data_dir() / DEMO_KEY_FILE), (
            "Offline demo: no secure OS keyring here, so the demo's audit key is kept in a "
            f"file ({exc}). The demo audit trail is not tamper-evident."
        )


@dataclass
class ReviewServices:
    """Outbox, audit log and review records on one journal file, for one destination."""

    outbox: Outbox
    audit: AuditLog
    store: ReviewStore
    reader: Reader
    destination: str
    notice: str = ""  # shown to the user once (e.g. the demo's audit key is in a file)
    observer: bool = False  # the profile's role: an observer sees but may not decide
    _senders: list[Sender] = field(default_factory=list)

    def sender(self, archive: ImageArchive) -> Sender:
        """A sender for this destination that audits every attempt in the journal."""
        sender = Sender(
            self.outbox,
            archive,
            journal=send_audit_hook(self.audit, self.reader.user_id, self.destination),
            destination=self.destination,
        )
        self._senders.append(sender)
        return sender

    def wake_senders(self) -> None:
        """Send now (after a submit) instead of at the next idle poll."""
        for sender in self._senders:
            sender.wake()

    def resume_senders(self) -> None:
        """After a sign-in: what waited for it is due now."""
        for sender in self._senders:
            sender.resume()

    def close(self) -> None:
        for sender in self._senders:
            sender.stop()
        self.store.close()
        self.audit.close()
        self.outbox.close()


def open_review_services(
    settings: Settings, *, destination: str, demo: bool, observer: bool = False
) -> ReviewServices:
    """Open the journal for ``destination``. Raises ``AuditError`` (real connections) when
    the OS keyring cannot keep the audit key, ``OutboxError``/``ReviewError`` when the
    journal file cannot be opened."""
    path = journal_path(demo)
    key, notice = audit_key(demo)
    outbox = Outbox(path)
    return ReviewServices(
        outbox=outbox,
        audit=AuditLog(path, key=key),
        store=ReviewStore(path),
        reader=current_reader(settings),
        destination=destination,
        notice=notice,
        observer=observer,
    )


def _demo_key(path: Path) -> bytes:
    """The demo's audit key from a 0600 file, made on first use."""
    if path.exists():
        try:
            key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
        except (OSError, binascii.Error, ValueError) as exc:
            raise AuditError(f"the demo audit key file {path} cannot be read: {exc}") from exc
        if len(key) == KEY_BYTES:
            return key
        raise AuditError(f"the demo audit key file {path} does not hold {KEY_BYTES} bytes")
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key).decode("ascii"))
    return key
