"""Append-only, tamper-evident audit log in SQLite (WAL, synchronous=FULL).

Each entry is chained to the one before it::

    mac[n] = HMAC-SHA256(key, mac[n-1] || canonical_json({seq: n, ...fields}))

with ``mac[0]`` 32 zero bytes. A signed head row holds the last sequence number
and MAC, ``head_mac = HMAC-SHA256(key, "head" || seq || mac)``, and is updated
in the same transaction as every append. The key lives in the OS keyring
(``app.audit.key``), never in the database.

What ``verify`` detects, for anyone who does not hold the key:
  * an entry whose fields were edited (any field, including its seq);
  * an entry removed from the middle (the next one no longer chains, and the
    sequence has a gap);
  * entries reordered (seq is inside the MAC, and so is the previous MAC);
  * an entry inserted or forged (it cannot carry a valid MAC);
  * entries cut off the end (the signed head still names the old last entry),
    and a removed or edited head;
  * a log checked with a different key than it was written with.

What it cannot detect:
  * the whole database replaced by an older, untouched copy of itself, or
    deleted (a fresh, empty log is indistinguishable from a deleted one);
  * changes made by someone who can read the key from the OS keyring (in
    practice the same OS account): they can recompute every MAC.
Ship the log (``companion audit export``) to a central audit repository to
cover those.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from app.audit.events import AuditEvent, EventKind, Outcome, canonical_json, format_time
from app.audit.key import key_fingerprint, load_key
from app.errors import AuditError
from app.journal_db import open_journal_db
from app.settings import journal_path

__all__ = ["AuditEntry", "AuditEvent", "AuditLog", "EventKind", "Outcome", "VerifyResult"]

GENESIS = bytes(32)
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_entry (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    user TEXT NOT NULL,
    outcome INTEGER NOT NULL,
    study_uid TEXT,
    sop_uids TEXT NOT NULL,
    patient_id TEXT,
    patient_name TEXT,
    details TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_entry_time ON audit_entry (time);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    mac TEXT NOT NULL,
    head_mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = (
    "seq, time, kind, user, outcome, study_uid, sop_uids, patient_id, patient_name, details, mac"
)


def default_path() -> Path:
    """The app's journal database: the audit tables live beside the outbox's, so a
    review's decisions, audit entries and SRs commit in one transaction."""
    return journal_path()


@dataclass(frozen=True)
class AuditEntry:
    """A stored event with its place in the chain."""

    seq: int
    event: AuditEvent
    mac: str


@dataclass(frozen=True)
class VerifyResult:
    """``ok`` when every entry chains and the signed head matches the last one.

    ``first_bad_seq`` names the first entry that is wrong or missing (None when
    ok, or when only the head itself is damaged); ``reason`` says what is wrong.
    """

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str = ""

    def message(self) -> str:
        if self.ok:
            return f"{self.entries} entries, chain intact"
        where = f"entry {self.first_bad_seq}: " if self.first_bad_seq is not None else ""
        return f"audit log NOT intact: {where}{self.reason}"


def _record(seq: int, row: sqlite3.Row | tuple) -> dict[str, object]:  # type: ignore[type-arg]
    _, time, kind, user, outcome, study_uid, sop_uids, patient_id, patient_name, details = row[:10]
    return {
        "seq": seq,
        "time": time,
        "kind": kind,
        "user": user,
        "outcome": outcome,
        "study_uid": study_uid,
        "sop_uids": json.loads(sop_uids),
        "patient_id": patient_id,
        "patient_name": patient_name,
        "details": json.loads(details),
    }


def _entry_mac(key: bytes, prev_mac: bytes, record: dict[str, object]) -> bytes:
    return hmac.new(key, prev_mac + canonical_json(record).encode("utf-8"), hashlib.sha256).digest()


def _head_mac(key: bytes, seq: int, mac_hex: str) -> str:
    message = b"head" + str(seq).encode("ascii") + b"|" + mac_hex.encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class AuditLog:
    """The audit trail. Safe to share between threads; several processes may append.

    ``key`` is for tests and tools; the app leaves it None so the key comes from the
    OS keyring (created on first use, refused on a plaintext or "fail" backend).
    """

    def __init__(self, path: Path | str | None = None, key: bytes | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._key = key
        self._lock = threading.Lock()
        self._conn = open_journal_db(self.path)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    self._conn.execute(statement)
                self._conn.execute(
                    "INSERT OR IGNORE INTO audit_meta (name, value) VALUES ('schema_version', ?)",
                    (SCHEMA_VERSION,),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _get_key(self, create: bool) -> bytes:
        if self._key is None:
            self._key = load_key(create=create)
        return self._key

    # -- writing -----------------------------------------------------------------
    def append(self, event: AuditEvent) -> int:
        """Store one event; returns its sequence number (1, 2, 3, ...)."""
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[AuditEvent]) -> list[int]:
        """Store several events in one transaction (all or none); returns their seqs."""
        events = list(events)
        if not events:
            return []
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")  # one writer across threads and processes
            try:
                seqs = self._write(conn, events)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return seqs

    def append_in(self, conn: sqlite3.Connection, events: Iterable[AuditEvent]) -> list[int]:
        """Write events inside a transaction the caller holds open on ``conn``.

        This is how the outbox commits a review's decisions, its audit entries and
        the SRs to send atomically: ``conn`` must be a connection to this same
        database file with a write transaction (``BEGIN IMMEDIATE``) already open;
        the caller commits or rolls back.
        """
        events = list(events)
        if not events:
            return []
        if not conn.in_transaction:
            raise AuditError("append_in needs a transaction open on the connection")
        row = conn.execute("PRAGMA database_list").fetchone()
        if row is None or not row[2] or Path(row[2]).resolve() != self.path.resolve():
            raise AuditError(
                f"append_in: the connection is to {row[2] if row else '?'}, "
                f"not to the audit log {self.path}"
            )
        return self._write(conn, events)

    def _write(self, conn: sqlite3.Connection, events: list[AuditEvent]) -> list[int]:
        """Chain and insert ``events`` and move the signed head; inside an open transaction."""
        key = self._get_key(create=True)
        seq, prev_hex = self._checked_head(conn, key, key_fingerprint(key))
        seqs = []
        for event in events:
            seq += 1
            record = {"seq": seq, **event.to_record()}
            mac_hex = _entry_mac(key, bytes.fromhex(prev_hex), record).hex()
            conn.execute(
                f"INSERT INTO audit_entry ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    seq,
                    record["time"],
                    record["kind"],
                    record["user"],
                    record["outcome"],
                    record["study_uid"],
                    canonical_json(record["sop_uids"]),
                    record["patient_id"],
                    record["patient_name"],
                    canonical_json(record["details"]),
                    mac_hex,
                ),
            )
            seqs.append(seq)
            prev_hex = mac_hex
        conn.execute(
            "INSERT OR REPLACE INTO audit_head (id, seq, mac, head_mac) VALUES (1, ?, ?, ?)",
            (seq, prev_hex, _head_mac(key, seq, prev_hex)),
        )
        return seqs

    def _checked_head(
        self, conn: sqlite3.Connection, key: bytes, fingerprint: str
    ) -> tuple[int, str]:
        """The (seq, mac) to chain the next entry to; refuses a wrong key or damaged head."""
        stored = conn.execute(
            "SELECT value FROM audit_meta WHERE name = 'key_fingerprint'"
        ).fetchone()
        if stored is None:
            conn.execute(
                "INSERT INTO audit_meta (name, value) VALUES ('key_fingerprint', ?)", (fingerprint,)
            )
        elif stored[0] != fingerprint:
            raise AuditError(
                f"the audit key in the OS keyring is not the key {self.path} was written with; "
                "refusing to append"
            )
        head = conn.execute("SELECT seq, mac, head_mac FROM audit_head WHERE id = 1").fetchone()
        if head is None:
            if conn.execute("SELECT 1 FROM audit_entry LIMIT 1").fetchone():
                raise AuditError(
                    f"the audit log {self.path} has entries but no signed head; "
                    "run 'companion audit verify'"
                )
            return 0, GENESIS.hex()
        seq, mac_hex, head_mac = head
        if not hmac.compare_digest(head_mac, _head_mac(key, seq, mac_hex)):
            raise AuditError(
                f"the signed head of the audit log {self.path} is damaged; "
                "run 'companion audit verify'"
            )
        return int(seq), str(mac_hex)

    # -- reading -----------------------------------------------------------------
    def entries(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[AuditEntry]:
        """Stored entries in seq order, optionally with start <= time < end."""
        sql = f"SELECT {_COLUMNS} FROM audit_entry"
        clauses, params = [], []
        if start is not None:
            clauses.append("time >= ?")
            params.append(format_time(start))
        if end is not None:
            clauses.append("time < ?")
            params.append(format_time(end))
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", params).fetchall()
        for row in rows:
            record = _record(row[0], row)
            del record["seq"]
            yield AuditEntry(seq=row[0], event=AuditEvent.from_record(record), mac=row[10])

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM audit_entry").fetchone()[0])

    def verify(self) -> VerifyResult:
        """Walk the whole chain and the signed head; see the module docstring for what is caught."""
        with self._lock:
            self._conn.execute("BEGIN")  # one consistent snapshot of entries and head
            try:
                rows = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM audit_entry ORDER BY seq"
                ).fetchall()
                head = self._conn.execute(
                    "SELECT seq, mac, head_mac FROM audit_head WHERE id = 1"
                ).fetchone()
                stored_fp = self._conn.execute(
                    "SELECT value FROM audit_meta WHERE name = 'key_fingerprint'"
                ).fetchone()
            finally:
                self._conn.execute("COMMIT")
        if not rows and head is None:
            return VerifyResult(ok=True, entries=0)
        key = self._get_key(create=False)
        wrong_key = stored_fp is not None and stored_fp[0] != key_fingerprint(key)
        prev = GENESIS
        expected = 1
        for row in rows:
            seq = int(row[0])
            if seq != expected:
                return VerifyResult(
                    False,
                    len(rows),
                    expected,
                    f"missing (the next stored entry is {seq}): removed or renumbered",
                )
            try:
                mac = _entry_mac(key, prev, _record(seq, row))
            except (ValueError, TypeError):
                return VerifyResult(False, len(rows), seq, "unreadable fields (edited)")
            if not hmac.compare_digest(mac.hex(), str(row[10])):
                reason = (
                    "MAC mismatch: the key in the OS keyring is not the one this log was "
                    "written with"
                    if wrong_key
                    else "MAC mismatch: edited, reordered, inserted, or the entry before it changed"
                )
                return VerifyResult(False, len(rows), seq, reason)
            prev = mac
            expected += 1
        last = expected - 1
        if head is None:
            return VerifyResult(False, len(rows), None, "the signed head is missing")
        head_seq, head_mac_hex, head_sig = int(head[0]), str(head[1]), str(head[2])
        if not hmac.compare_digest(head_sig, _head_mac(key, head_seq, head_mac_hex)):
            return VerifyResult(False, len(rows), None, "the signed head was edited")
        if head_seq > last:
            return VerifyResult(
                False,
                len(rows),
                last + 1,
                f"missing: the log was cut after entry {last} (the signed head names {head_seq})",
            )
        if head_seq < last:
            return VerifyResult(
                False, len(rows), head_seq + 1, "not covered by the signed head (appended outside)"
            )
        if head_mac_hex != prev.hex():
            return VerifyResult(False, len(rows), last, "does not match the signed head")
        return VerifyResult(ok=True, entries=len(rows))
