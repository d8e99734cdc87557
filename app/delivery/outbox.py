"""The durable outbox: DICOM objects waiting to be stored in the archive.

Everything the reader decided reaches the archive through here. ``submit``
commits, in one SQLite transaction (WAL, ``synchronous=FULL``), the frozen bytes
of each object with its UIDs and SHA-256, plus whatever the caller's ``extra``
writes in that same transaction (decisions, audit rows). The sender then moves
each item through its states:

    pending -> sending -> sent
                       -> parked (reason + server message; the user may retry or discard)
                       -> pending again, later (backoff)
    pending | parked -> discarded

An item left in ``sending`` by a crash is put back as pending with
``verify_first`` set: its outcome is unknown, so the sender looks it up by UID
before it sends it again.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from app.errors import CompanionError
from app.journal_db import open_journal_db
from app.settings import journal_path

log = logging.getLogger(__name__)

STATES = ("pending", "sending", "sent", "parked", "discarded")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_item (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sop_instance_uid TEXT NOT NULL,
    study_instance_uid TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    destination TEXT NOT NULL DEFAULT '',
    data BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    verify_first INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    server_message TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_item_due ON outbox_item (state, next_attempt_at);
"""

_COLUMNS = (
    "id, sop_instance_uid, study_instance_uid, series_instance_uid, sop_class_uid, label, "
    "sha256, state, attempts, next_attempt_at, verify_first, reason, server_message, "
    "created_at, updated_at, destination"
)


Extra = Callable[[sqlite3.Connection], None]


class OutboxError(CompanionError):
    """The outbox file could not be used, or an item is not in a state for the action."""


@dataclass(frozen=True)
class OutgoingObject:
    """A DICOM object to store in the archive; ``label`` is a short non-identifying
    description shown in the outbox view (e.g. "assessment SR")."""

    dataset: Dataset
    label: str = ""


@dataclass(frozen=True)
class OutboxItem:
    id: int
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    label: str
    sha256: str
    state: str
    attempts: int
    next_attempt_at: float
    verify_first: bool
    reason: str
    server_message: str
    created_at: str
    updated_at: str
    destination: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sop_instance_uid": self.sop_instance_uid,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "sop_class_uid": self.sop_class_uid,
            "label": self.label,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "reason": self.reason,
            "server_message": self.server_message,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "destination": self.destination,
        }


@dataclass(frozen=True)
class OutboxStatus:
    counts: dict[str, int]
    parked: list[OutboxItem] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """Items not yet in the archive and not waiting for the user."""
        return self.counts.get("pending", 0) + self.counts.get("sending", 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "pending": self.pending,
            "parked": [item.to_json() for item in self.parked],
        }


def encode_dataset(dataset: Dataset) -> bytes:
    """Freeze a dataset as a DICOM Part 10 file (preamble + complete file meta):
    dicomweb-client and Orthanc need both (DESIGN.md §5)."""
    buffer = BytesIO()
    try:
        pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    except (ValueError, AttributeError, TypeError) as exc:
        raise OutboxError(f"cannot encode the DICOM object for the outbox: {exc}") from exc
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Outbox:
    """SQLite-backed outbox; safe to share between threads (one connection, one lock)."""

    def __init__(
        self, path: Path | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path) if path is not None else journal_path()
        self._clock = clock
        self._lock = threading.RLock()
        try:
            self._db = open_journal_db(self.path)
            self._db.executescript(_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(outbox_item)")}
            if "destination" not in columns:  # a journal from before destinations
                self._db.execute(
                    "ALTER TABLE outbox_item ADD COLUMN destination TEXT NOT NULL DEFAULT ''"
                )
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the outbox at {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writing ----------------------------------------------------------------
    def submit(
        self,
        items: Sequence[OutgoingObject],
        *,
        extra: Extra | None = None,
        destination: str = "",
    ) -> list[int]:
        """Commit the objects (and ``extra``'s rows) in one transaction; returns their ids.

        ``destination`` names the archive the objects are for (its URL); a sender made
        for another archive leaves them alone."""
        rows = []
        for item in items:
            ds = item.dataset
            for keyword in (
                "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID"
            ):
                if not str(getattr(ds, keyword, "") or ""):
                    raise OutboxError(f"outbox: the object {item.label!r} has no {keyword}")
            data = encode_dataset(ds)
            rows.append(
                (
                    str(ds.SOPInstanceUID),
                    str(ds.StudyInstanceUID),
                    str(ds.SeriesInstanceUID),
                    str(ds.SOPClassUID),
                    item.label,
                    data,
                    sha256_hex(data),
                )
            )
        now = _now_text()
        ids: list[int] = []
        with self._transaction() as db:
            for row in rows:
                cursor = db.execute(
                    "INSERT INTO outbox_item (sop_instance_uid, study_instance_uid,"
                    " series_instance_uid, sop_class_uid, label, data, sha256, state,"
                    " next_attempt_at, created_at, updated_at, destination)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                    (*row, now, now, destination),
                )
                ids.append(int(cursor.lastrowid or 0))
            if extra is not None:
                extra(db)
        log.info("outbox: %d object(s) committed (ids %s)", len(ids), ids)
        return ids

    def _update(
        self, item_id: int, allowed: Sequence[str], extra: Extra | None = None, **values: Any
    ) -> None:
        values["updated_at"] = _now_text()
        assignments = ", ".join(f"{name} = ?" for name in values)
        marks = ", ".join("?" for _ in allowed)
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE outbox_item SET {assignments} WHERE id = ? AND state IN ({marks})",
                (*values.values(), item_id, *allowed),
            )
            if cursor.rowcount != 1:
                row = db.execute("SELECT state FROM outbox_item WHERE id = ?", (item_id,))
                found = row.fetchone()
                state = found[0] if found else "missing"
                raise OutboxError(
                    f"outbox item {item_id} is {state}; expected one of {', '.join(allowed)}"
                )
            if extra is not None:
                extra(db)

    def claim_next(self, destination: str | None = None) -> OutboxItem | None:
        """The next due pending item (for ``destination``, or any when None), moved to
        ``sending``; None when nothing is due."""
        where, params = _for(destination)
        with self._transaction() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM outbox_item WHERE state = 'pending'"
                f" AND next_attempt_at <= ?{where} ORDER BY next_attempt_at, id LIMIT 1",
                (self._clock(), *params),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE outbox_item SET state = 'sending', updated_at = ? WHERE id = ?",
                (_now_text(), row[0]),
            )
        return replace(_item(row), state="sending")

    def recover_interrupted(self) -> int:
        """Items a crash left in ``sending`` become pending, to be looked up before resending."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE outbox_item SET state = 'pending', verify_first = 1, next_attempt_at = 0,"
                " updated_at = ? WHERE state = 'sending'",
                (_now_text(),),
            )
            count = cursor.rowcount
        if count:
            log.info("outbox: %d item(s) interrupted while sending; will look them up", count)
        return count

    # ``extra`` (here and in ``submit``) writes the caller's rows, e.g. an audit entry
    # for the send outcome, in the same transaction as the state change.
    def mark_sent(self, item_id: int, note: str = "", *, extra: Extra | None = None) -> None:
        self._update(item_id, ("sending", "pending"), extra, state="sent", reason=note,
                     server_message="", verify_first=0)

    def mark_parked(
        self, item_id: int, reason: str, server_message: str = "", *, extra: Extra | None = None
    ) -> None:
        self._update(item_id, ("sending", "pending"), extra, state="parked", reason=reason,
                     server_message=server_message[:1000])

    def mark_retry(
        self, item_id: int, delay_s: float, reason: str, *, verify_first: bool = False,
        server_message: str = "", extra: Extra | None = None,
    ) -> None:
        """Back to pending, due after ``delay_s``; ``verify_first`` asks for a lookup first."""
        with self._lock:
            current = self.get(item_id)
            self._update(
                item_id, ("sending", "pending"), extra, state="pending",
                attempts=current.attempts + 1,
                next_attempt_at=self._clock() + max(0.0, delay_s),
                verify_first=int(verify_first or current.verify_first),
                reason=reason, server_message=server_message[:1000],
            )

    def hold(self, item_id: int, delay_s: float, reason: str) -> None:
        """Back to pending, due after ``delay_s``, without counting an attempt: the item was
        not sent because the user must sign in first (nothing reached the archive)."""
        self._update(item_id, ("sending", "pending"), state="pending",
                     next_attempt_at=self._clock() + max(0.0, delay_s), reason=reason)

    def make_due(self, destination: str | None = None) -> int:
        """Every pending item (for ``destination``) becomes due now (after a sign-in)."""
        where, params = _for(destination)
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE outbox_item SET next_attempt_at = 0 WHERE state = 'pending'{where}",
                params,
            )
            return int(cursor.rowcount)

    def retry(self, item_id: int) -> None:
        """The user asks to send a parked item again (now, after a lookup by UID)."""
        self._update(item_id, ("parked",), state="pending", attempts=0, next_attempt_at=0,
                     verify_first=1, reason="", server_message="")

    def discard(self, item_id: int) -> None:
        """The user gives up on an item; its bytes stay in the file for the record."""
        self._update(item_id, ("parked", "pending"), state="discarded")

    # -- reading ----------------------------------------------------------------
    def get(self, item_id: int) -> OutboxItem:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox_item WHERE id = ?", (item_id,)
            ).fetchone()
        if row is None:
            raise OutboxError(f"no outbox item with id {item_id}")
        return _item(row)

    def data(self, item_id: int) -> bytes:
        """The frozen bytes of an item, as committed."""
        with self._lock:
            row = self._db.execute(
                "SELECT CAST(data AS BLOB) FROM outbox_item WHERE id = ?", (item_id,)
            ).fetchone()
        if row is None:
            raise OutboxError(f"no outbox item with id {item_id}")
        return bytes(row[0])

    def _select(self, where: str, params: Sequence[Any] = ()) -> list[OutboxItem]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox_item WHERE {where} ORDER BY id", tuple(params)
            ).fetchall()
        return [_item(row) for row in rows]

    def pending(self) -> list[OutboxItem]:
        """Items still to be stored (pending or being sent), due or not."""
        return self._select("state IN ('pending', 'sending')")

    def parked(self) -> list[OutboxItem]:
        return self._select("state = 'parked'")

    def items(self, state: str | None = None) -> list[OutboxItem]:
        if state is None:
            return self._select("1 = 1")
        if state not in STATES:
            raise OutboxError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        return self._select("state = ?", (state,))

    def next_due_in(self, destination: str | None = None) -> float | None:
        """Seconds until the next pending item is due (0 if one is due); None if none pending."""
        where, params = _for(destination)
        with self._lock:
            row = self._db.execute(
                f"SELECT MIN(next_attempt_at) FROM outbox_item WHERE state = 'pending'{where}",
                params,
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return max(0.0, float(row[0]) - self._clock())

    def status(self) -> OutboxStatus:
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM outbox_item GROUP BY state"
            ).fetchall()
        counts = {state: 0 for state in STATES}
        counts.update({str(state): int(n) for state, n in rows})
        return OutboxStatus(counts=counts, parked=self.parked())


def _for(destination: str | None) -> tuple[str, tuple[str, ...]]:
    """SQL condition (and its parameter) selecting one destination's items; an item
    submitted without a destination ("") goes to any."""
    if destination is None:
        return "", ()
    return " AND destination IN (?, '')", (destination,)


def _item(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(
        id=int(row[0]),
        sop_instance_uid=row[1],
        study_instance_uid=row[2],
        series_instance_uid=row[3],
        sop_class_uid=row[4],
        label=row[5],
        sha256=row[6],
        state=row[7],
        attempts=int(row[8]),
        next_attempt_at=float(row[9]),
        verify_first=bool(row[10]),
        reason=row[11],
        server_message=row[12],
        created_at=row[13],
        updated_at=row[14],
        destination=row[15],
    )
