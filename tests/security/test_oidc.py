"""OpenID Connect sign-in against a real provider (node oidc-provider), end to end:
the test plays the browser (login and consent forms), the app runs the loopback
redirect, PKCE, the code exchange, refresh, rotation, revocation and sign-out."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import pytest
import requests

from app.audit.events import EventKind, Outcome
from app.audit.log import AuditLog
from app.errors import SignInRequired
from app.security import signin
from app.security.oidc import SignInFailed, validate_id_token
from app.security.tokens import refresh_token_user
from tests.security.conftest import RecordingKeyring, oidc_profile
from tests.support.oidc_provider import CLIENT_ID, USER, Browser, OidcProvider


def _token_entries(backend: RecordingKeyring) -> list[str]:
    """The keyring's entries other than the audit log's key."""
    return [user for (_, user) in backend._store if user != "audit-hmac-key"]


def _signed_in(provider: OidcProvider, audit: AuditLog | None = None):  # type: ignore[no-untyped-def]
    profile = oidc_profile(provider)
    browser = Browser()
    result = signin.sign_in(
        profile,
        open_browser=browser.open,
        timeout_s=20,
        audit=audit.append if audit is not None else None,
    )
    return profile, browser, result


def test_sign_in_through_the_browser_stores_only_the_refresh_token(
    provider: OidcProvider, recording_keyring: RecordingKeyring, tmp_path: Path
) -> None:
    with AuditLog(tmp_path / "audit.sqlite3") as audit:
        profile, browser, result = _signed_in(provider, audit)
        assert result.user == USER and result.display_name == "Test Reader"
        # the browser landed on our loopback redirect with a code, on an ephemeral port
        assert len(browser.landed) == 1
        assert browser.landed[0].startswith("http://127.0.0.1:") and "code=" in browser.landed[0]
        tokens = signin.tokens_for(profile)
        stored = recording_keyring.get_password("ai-review-companion", refresh_token_user(profile))
        assert stored  # the refresh token, in the keyring ...
        access = tokens.access_token()
        assert access != stored
        # ... and the access token only in memory: nothing else was written to the keyring
        assert _token_entries(recording_keyring) == ["pacs:oidc-refresh-token"]
        assert provider.userinfo_ok(access)  # the provider honours the token we hold
        entries = list(audit.entries())
    assert [(e.event.kind, e.event.outcome, e.event.user) for e in entries] == [
        (EventKind.SIGN_IN, Outcome.SUCCESS, USER)
    ]
    assert entries[0].event.details == {
        "profile": "pacs",
        "method": "oidc",
        "issuer": provider.issuer,
    }


def test_a_wrong_password_fails_the_sign_in_and_is_audited(
    provider: OidcProvider, recording_keyring: RecordingKeyring, tmp_path: Path
) -> None:
    profile = oidc_profile(provider)
    browser = Browser(password="not the password")
    with AuditLog(tmp_path / "audit.sqlite3") as audit:
        with pytest.raises(SignInFailed, match="no answer from the browser"):
            signin.sign_in(profile, open_browser=browser.open, timeout_s=1.5, audit=audit.append)
        events = [e.event for e in audit.entries()]
    assert browser.pages == [401] and browser.landed == []
    assert [(e.kind, e.outcome) for e in events] == [(EventKind.SIGN_IN, Outcome.MINOR_FAILURE)]
    assert "not the password" not in json.dumps(events[0].details)
    assert _token_entries(recording_keyring) == []


def test_a_refused_consent_comes_back_as_a_clear_failure(
    provider: OidcProvider, recording_keyring: RecordingKeyring
) -> None:
    profile = oidc_profile(provider)
    browser = Browser(consent=False)
    # the browser stops at the consent form: the app gives up after its timeout
    with pytest.raises(SignInFailed, match="not completed"):
        signin.sign_in(profile, open_browser=browser.open, timeout_s=1.0)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(SignInFailed, match="cancelled"):
        signin.sign_in(profile, open_browser=lambda url: True, timeout_s=10, cancelled=cancel)


def test_refresh_before_expiry_rotates_the_refresh_token(
    provider: OidcProvider, recording_keyring: RecordingKeyring
) -> None:
    profile, _, _ = _signed_in(provider)
    tokens = signin.tokens_for(profile)
    first_access = tokens.access_token()
    first_refresh = recording_keyring.get_password(
        "ai-review-companion", refresh_token_user(profile)
    )
    assert tokens.access_token() == first_access and tokens.refreshes == 0
    # TTL 4 s, so the token is replaced 3 s after it was received: before it expires
    time.sleep(provider.access_token_ttl_s * 0.8)
    second_access = tokens.access_token()
    assert second_access != first_access and tokens.refreshes == 1
    second_refresh = recording_keyring.get_password(
        "ai-review-companion", refresh_token_user(profile)
    )
    assert second_refresh and second_refresh != first_refresh
    # the rotated-out refresh token is spent at the provider
    meta = provider.metadata()
    spent = requests.post(
        meta["token_endpoint"],
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "refresh_token": first_refresh,
            "client_id": CLIENT_ID,
        },
    )
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"


def test_concurrent_requests_wait_for_one_refresh(
    provider: OidcProvider, recording_keyring: RecordingKeyring
) -> None:
    profile, _, _ = _signed_in(provider)
    tokens = signin.tokens_for(profile)
    tokens.invalidate(tokens.access_token())  # as after a 401: every caller needs a new one
    got: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        try:
            got.append(tokens.access_token())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(got) == 8 and len(set(got)) == 1
    # with rotating refresh tokens a second concurrent refresh would have failed (spent token)
    assert tokens.refreshes == 1
    assert provider.userinfo_ok(got[0])


def test_a_revoked_refresh_token_asks_for_sign_in_once(
    provider: OidcProvider, recording_keyring: RecordingKeyring
) -> None:
    profile, _, _ = _signed_in(provider)
    tokens = signin.tokens_for(profile)
    prompts: list[str] = []
    tokens.on_sign_in_required = lambda p: prompts.append(p.name)
    refresh = recording_keyring.get_password("ai-review-companion", refresh_token_user(profile))
    assert refresh
    provider.revoke(refresh, "refresh_token")
    tokens.invalidate(tokens.access_token())
    for _ in range(3):
        with pytest.raises(SignInRequired, match="please sign in again") as err:
            tokens.access_token()
        assert err.value.profile == "pacs"
    assert prompts == ["pacs"]  # one prompt, not one per request
    assert tokens.refreshes == 1  # the later calls did not ask the provider again
    assert (
        _token_entries(recording_keyring) == []
    )  # the dead refresh token is gone from the keyring
    # signing in again restores service
    browser = Browser()
    signin.sign_in(profile, open_browser=browser.open, timeout_s=20)
    assert provider.userinfo_ok(tokens.access_token())


def test_sign_out_revokes_and_forgets(
    provider: OidcProvider, recording_keyring: RecordingKeyring, tmp_path: Path
) -> None:
    with AuditLog(tmp_path / "audit.sqlite3") as audit:
        profile, _, _ = _signed_in(provider, audit)
        tokens = signin.tokens_for(profile)
        access = tokens.access_token()
        refresh = recording_keyring.get_password("ai-review-companion", refresh_token_user(profile))
        assert signin.sign_out(profile, audit=audit.append) is True
        events = [e.event for e in audit.entries()]
    assert _token_entries(recording_keyring) == []
    assert not provider.userinfo_ok(access)  # revoked at the provider
    meta = provider.metadata()
    answer = requests.post(
        meta["token_endpoint"],
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID},
    )
    assert answer.json().get("error") == "invalid_grant"
    with pytest.raises(SignInRequired):
        tokens.access_token()
    assert [(e.kind, e.user) for e in events] == [
        (EventKind.SIGN_IN, USER),
        (EventKind.SIGN_OUT, USER),
    ]
    assert events[1].details["revoked"] is True
    assert signin.needs_sign_in(profile)


def _jwt(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iss": "http://evil.example"}, "another provider"),
        ({"aud": "other-client"}, "audience"),
        ({"aud": ["companion-test", "x"], "azp": "x"}, "authorised party"),
        ({"exp": 1000.0}, "expired"),
        ({"iat": 10_000_000_000.0}, "future"),
        ({"nonce": "replayed"}, "nonce"),
    ],
)
def test_id_token_checks(change: dict[str, object], message: str) -> None:
    now = time.time()
    good = {
        "iss": "https://idp.example",
        "aud": "companion-test",
        "sub": "u1",
        "exp": now + 60,
        "iat": now,
        "nonce": "n-1",
    }
    assert (
        validate_id_token(
            _jwt(good),
            issuer="https://idp.example/",
            client_id="companion-test",
            nonce="n-1",
            now=now,
        )["sub"]
        == "u1"
    )
    with pytest.raises(SignInFailed, match=message):
        validate_id_token(
            _jwt({**good, **change}),
            issuer="https://idp.example",
            client_id="companion-test",
            nonce="n-1",
            now=now,
        )
