"""The end-of-session secret scan (tests/conftest.py ``pytest_sessionfinish``) can fail.

It is run here directly, over this test's own folders, with a planted secret in the
places the real one searches: a COMPANION_HOME settings file, a journal database
(SQLite, the secret stored as UTF-16 text), a log under ``tmp_path`` and a file at the
top of the system temp folder.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from tests.conftest import check_secrets
from tests.support import secret_scan

PLANTED = "planted-token/9f8e7d6c5b4a+=="


def test_the_session_scan_fails_the_session_on_a_planted_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path(os.environ["COMPANION_HOME"])
    assert home in secret_scan.FOLDERS  # every test's home is registered
    monkeypatch.setattr(secret_scan, "FOLDERS", {home, tmp_path})
    monkeypatch.setattr(secret_scan, "SECRETS", {PLANTED, "short"})
    settings = home / "config" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"profiles": [], "note": "' + PLANTED + '"}')
    db = home / "data" / "journal.sqlite3"
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA encoding = 'UTF-16le'")
        conn.execute("CREATE TABLE audit (details TEXT)")
        conn.execute("INSERT INTO audit VALUES (?)", (f"Bearer {PLANTED}",))
    conn.close()
    log = tmp_path / "logs" / "app.log"
    log.parent.mkdir()
    log.write_text(f"GET /callback?code={quote(PLANTED, safe='')}\n")
    fd, top = tempfile.mkstemp(prefix="companion-scan-", suffix=".txt")
    try:
        os.write(fd, PLANTED.encode())
        os.close(fd)
        session = SimpleNamespace(
            exitstatus=pytest.ExitCode.OK,
            config=SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda _n: None)),
        )
        found = check_secrets(session)  # type: ignore[arg-type]
        assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
        name = secret_scan.label(PLANTED)
        assert (settings, name) in found
        assert (db, name + " utf-16") in found
        assert (log, name + " url-encoded") in found
        assert (Path(top), name) in found
    finally:
        os.unlink(top)
        settings.unlink()
        db.unlink()
        log.unlink()
    clean = SimpleNamespace(
        exitstatus=pytest.ExitCode.OK,
        config=SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda _n: None)),
    )
    assert check_secrets(clean) == []  # type: ignore[arg-type]
    assert clean.exitstatus == pytest.ExitCode.OK


def test_secrets_of_the_ui_tests_are_registered(memory_keyring: object) -> None:
    import keyring

    keyring.set_password("ai-review-companion", "pacs:dr.side", "s3cret pass")
    assert "s3cret pass" in secret_scan.SECRETS  # the in-memory keyring registers it


def test_the_one_pass_search_finds_what_a_plain_search_finds(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    secrets = ["abcdefgh-1", "abcdefgh-2", "zz" * 6, "ünïcode-sécret", "a b/c?d=e&f"]
    cases = [
        b"abcdefgh-1",  # exactly one secret, at offset 0 and to the last byte
        b"xxabcdefgh-",  # a shared prefix alone is no secret
        b"\x00" * 100 + b"zz" * 6,
        "ünïcode-sécret".encode("utf-16-le"),
        b"q=a%20b%2Fc%3Fd%3De%26f;",
        b"short",
        b"",
        bytes(rng.randrange(256) for _ in range(5000)) + b"abcdefgh-2",
    ]
    for i, data in enumerate(cases):
        path = tmp_path / f"case{i}"
        path.write_bytes(data)
        expected = set()
        for secret in secrets:
            for needle, suffix in (
                (secret.encode(), ""),
                (secret.encode("utf-16-le"), " utf-16"),
                (quote(secret, safe="").encode(), " url-encoded"),
            ):
                if needle in data and (suffix != " url-encoded" or needle != secret.encode()):
                    expected.add(secret_scan.label(secret) + suffix)
        found = {name for _, name in secret_scan.find_secrets([path], secrets)}
        assert found == expected, (i, found, expected)
