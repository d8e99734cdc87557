"""Opening the journal database: one SQLite file shared by the outbox, the audit log and
the review records (see ``app.settings.journal_path``), always opened the same way."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_journal_db(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (every transaction is opened explicitly), usable
    from several threads behind the caller's lock, WAL with ``synchronous=FULL`` so a
    committed transaction survives a crash or power loss. Raises ``OSError`` or
    ``sqlite3.Error``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn
