"""After the other security tests (this file sorts last): no password or token they
handled is in any file they left behind: settings, logs (the app's log of these tests,
nginx's and the provider's), the outbox/audit databases, temp files.

What is scanned: the folders the tests used (``USED_FOLDERS``: the session's security
folder with the logs, PKI and nginx files, each test's COMPANION_HOME with its settings
and journal) and the files the session created at the top of the system temp folder.
The secrets: every token the app accepted, every secret stored in the keyring, and the
test passwords (``SEEN_SECRETS``). Run alone, the file signs in first so it has some.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from app.security import signin
from app.settings import Settings, save_settings
from tests.security.conftest import LOG_NAME, SEEN_SECRETS, USED_FOLDERS, oidc_profile
from tests.support.oidc_provider import Browser, OidcProvider

SESSION_START = time.time()
MAX_BYTES = 50 * 1024 * 1024


def _files(roots: Iterable[Path], top_level_since: float | None = None) -> Iterable[Path]:
    for root in roots:
        if root.is_file():
            yield root
            continue
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d != "node_modules"]
            for name in names:
                yield Path(folder) / name
    if top_level_since is not None:
        for entry in Path(tempfile.gettempdir()).iterdir():
            try:
                if entry.is_file() and entry.stat().st_mtime >= top_level_since:
                    yield entry
            except OSError:
                continue


def find_secrets(
    roots: Iterable[Path], secrets: Iterable[str], top_level_since: float | None = None
) -> list[tuple[Path, str]]:
    """(file, what) for every secret found in a file, raw or in common encodings."""
    needles: list[tuple[bytes, str]] = []
    for secret in {s for s in secrets if len(s) >= 8}:
        label = f"{secret[:4]}…({len(secret)} chars)"
        needles.append((secret.encode(), label))
        needles.append((secret.encode("utf-16-le"), label + " utf-16"))
        from urllib.parse import quote

        if quote(secret, safe="") != secret:
            needles.append((quote(secret, safe="").encode(), label + " url-encoded"))
    found: list[tuple[Path, str]] = []
    for path in _files(roots, top_level_since):
        try:
            if path.is_symlink() or path.stat().st_size > MAX_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        for needle, label in needles:
            if needle in data:
                found.append((path, label))
    return found


@pytest.fixture()
def some_secrets(provider: OidcProvider, recording_keyring: object) -> None:
    """When this file runs alone: a sign-in, a refresh, settings and a journal written."""
    profile = oidc_profile(provider)
    save_settings(Settings(profiles=[profile], active_profile=profile.name))
    signin.sign_in(profile, open_browser=Browser().open, timeout_s=20)
    tokens = signin.tokens_for(profile)
    tokens.invalidate(tokens.access_token())
    tokens.access_token()


def test_the_scan_finds_a_planted_token(security_tmp: Path, some_secrets: None) -> None:
    token = max(SEEN_SECRETS, key=len)
    plant = security_tmp / "planted" / "leak.txt"
    plant.parent.mkdir()
    plant.write_text(f"debug: Authorization: Bearer {token}\n")
    try:
        assert (plant, f"{token[:4]}…({len(token)} chars)") in find_secrets(
            [security_tmp], SEEN_SECRETS
        )
    finally:
        plant.unlink()
        plant.parent.rmdir()


def test_no_password_or_token_is_left_in_any_file(security_tmp: Path, some_secrets: None) -> None:
    assert len(SEEN_SECRETS) >= 4  # passwords, access, refresh and ID tokens at least
    log = security_tmp / LOG_NAME
    assert log.exists() and log.stat().st_size > 0  # the app's log was captured
    roots = sorted(p for p in USED_FOLDERS if p.exists())
    assert any((p / "config" / "settings.json").exists() for p in roots)
    found = find_secrets(roots, SEEN_SECRETS, top_level_since=SESSION_START)
    assert found == [], "secrets found in files:\n" + "\n".join(f"{p}: {w}" for p, w in found)
