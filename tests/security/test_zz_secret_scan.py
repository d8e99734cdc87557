"""After the other security tests (this file sorts last): no password or token they
handled is in any file they left behind: settings, logs (the app's log of these tests,
nginx's and the provider's), the outbox/audit databases, temp files.

What is scanned: the folders the tests used (``USED_FOLDERS``: the session's security
folder with the logs, PKI and nginx files, each test's COMPANION_HOME with its settings
and journal) and the files the session created at the top of the system temp folder.
The secrets: every token the app accepted, every secret stored in the keyring, and the
test passwords (``SEEN_SECRETS``). Run alone, the file signs in first so it has some.

The same scan runs again over every folder of the whole session once it is done
(``pytest_sessionfinish`` in tests/conftest.py, tests/support/secret_scan.py), so the
UI tests' sign-in and lock secrets are covered too; this file keeps the early, focused
check next to the tests that handle the most secrets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.security import signin
from app.settings import Settings, save_settings
from tests.security.conftest import LOG_NAME, SEEN_SECRETS, USED_FOLDERS, oidc_profile
from tests.support.oidc_provider import Browser, OidcProvider
from tests.support.secret_scan import SESSION_START, find_secrets


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
