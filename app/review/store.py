"""Review records in the journal database: drafts in progress and submitted reviews.

A draft is saved after every decision, so a crash or a closed window loses
nothing the reader decided; it is removed in the same transaction that commits
the submitted review to the outbox (``record_in``). Submitted reviews and their
decisions stay as the local record of what was sent (the worklist shows those
studies as reviewed before the archive has the assessment SR).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.domain import Decision
from app.domain.serialize import decision_from_json
from app.errors import ReviewError
from app.journal_db import open_journal_db
from app.settings import journal_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_draft (
    study_uid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    decisions TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (study_uid, user_id)
);
CREATE TABLE IF NOT EXISTS review_submission (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_uid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    sop_uids TEXT NOT NULL,
    outbox_ids TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS review_submission_study ON review_submission (study_uid);
CREATE TABLE IF NOT EXISTS review_decision (
    submission_id INTEGER NOT NULL REFERENCES review_submission (id),
    assessed_sop_uid TEXT NOT NULL,
    tracking_uid TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason_code TEXT,
    reason_scheme TEXT,
    comment TEXT NOT NULL,
    decision TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Submission:
    """A submitted review as the journal holds it."""

    id: int
    study_uid: str
    user_id: str
    submitted_at: datetime
    sop_uids: tuple[str, ...]  # the SRs written (assessment, edited)
    outbox_ids: tuple[int, ...]


class ReviewStore:
    """Drafts and submitted reviews; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else journal_path()
        self._lock = threading.Lock()
        try:
            self._db = open_journal_db(self.path)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ReviewError(f"cannot open the review journal at {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- drafts ----------------------------------------------------------------
    def save_draft(self, study_uid: str, user_id: str, decisions: Sequence[Decision]) -> None:
        """Replace the reader's draft for the study (no decisions: the draft is removed)."""
        with self._lock:
            if not decisions:
                self._db.execute(
                    "DELETE FROM review_draft WHERE study_uid = ? AND user_id = ?",
                    (study_uid, user_id),
                )
                return
            self._db.execute(
                "INSERT OR REPLACE INTO review_draft (study_uid, user_id, decisions, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (study_uid, user_id, _decisions_json(decisions), _now()),
            )

    def load_draft(self, study_uid: str, user_id: str) -> list[Decision]:
        with self._lock:
            row = self._db.execute(
                "SELECT decisions FROM review_draft WHERE study_uid = ? AND user_id = ?",
                (study_uid, user_id),
            ).fetchone()
        if row is None:
            return []
        try:
            return [decision_from_json(d) for d in json.loads(row[0])]
        except (ValueError, KeyError, TypeError) as exc:
            raise ReviewError(f"the saved draft of this study cannot be read: {exc}") from exc

    def drafts(self, user_id: str) -> list[str]:
        """Study UIDs with a draft of this reader."""
        with self._lock:
            rows = self._db.execute(
                "SELECT study_uid FROM review_draft WHERE user_id = ? ORDER BY updated_at",
                (user_id,),
            ).fetchall()
        return [r[0] for r in rows]

    # -- submissions -----------------------------------------------------------
    @staticmethod
    def record_in(
        conn: sqlite3.Connection,
        *,
        study_uid: str,
        user_id: str,
        submitted_at: datetime,
        decisions: Sequence[tuple[str, Decision]],
        sop_uids: Sequence[str],
        outbox_ids: Sequence[int],
    ) -> int:
        """Write a submitted review inside the caller's open transaction on the journal.

        ``decisions`` are (assessed AI SR SOP UID, decision) pairs. The draft is removed
        in the same transaction. Returns the submission id.
        """
        cursor = conn.execute(
            "INSERT INTO review_submission (study_uid, user_id, submitted_at, sop_uids,"
            " outbox_ids) VALUES (?, ?, ?, ?, ?)",
            (
                study_uid,
                user_id,
                submitted_at.astimezone(UTC).isoformat(),
                json.dumps(list(sop_uids)),
                json.dumps(list(outbox_ids)),
            ),
        )
        submission_id = int(cursor.lastrowid or 0)
        conn.executemany(
            "INSERT INTO review_decision (submission_id, assessed_sop_uid, tracking_uid,"
            " verdict, reason_code, reason_scheme, comment, decision)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    submission_id,
                    assessed,
                    d.tracking_uid,
                    d.verdict.value,
                    d.reason.value if d.reason else None,
                    d.reason.scheme if d.reason else None,
                    d.comment,
                    json.dumps(d.to_json(), sort_keys=True),
                )
                for assessed, d in decisions
            ],
        )
        conn.execute(
            "DELETE FROM review_draft WHERE study_uid = ? AND user_id = ?", (study_uid, user_id)
        )
        return submission_id

    def submissions(self, study_uid: str | None = None) -> list[Submission]:
        sql = (
            "SELECT id, study_uid, user_id, submitted_at, sop_uids, outbox_ids"
            " FROM review_submission"
        )
        params: tuple[str, ...] = ()
        if study_uid is not None:
            sql += " WHERE study_uid = ?"
            params = (study_uid,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [
            Submission(
                id=int(r[0]),
                study_uid=r[1],
                user_id=r[2],
                submitted_at=datetime.fromisoformat(r[3]),
                sop_uids=tuple(json.loads(r[4])),
                outbox_ids=tuple(int(i) for i in json.loads(r[5])),
            )
            for r in rows
        ]

    def submitted_studies(self) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT study_uid FROM review_submission").fetchall()
        return {r[0] for r in rows}

    def decisions(self, submission_id: int) -> list[tuple[str, Decision]]:
        """(assessed SOP UID, decision) pairs of one submission, in the order written."""
        with self._lock:
            rows = self._db.execute(
                "SELECT assessed_sop_uid, decision FROM review_decision"
                " WHERE submission_id = ? ORDER BY rowid",
                (submission_id,),
            ).fetchall()
        return [(r[0], decision_from_json(json.loads(r[1]))) for r in rows]


def _decisions_json(decisions: Sequence[Decision]) -> str:
    return json.dumps([d.to_json() for d in decisions], sort_keys=True)


def _now() -> str:
    return datetime.now(UTC).isoformat()
