"""Secrets only in a secure keyring (one check for credentials, the audit key and the
self-test), and the observer role: sees, never decides."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import ClassVar

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend

from app import selftest
from app.audit.key import load_key
from app.domain import Reader
from app.errors import AuditError, ConfigError, NotPermitted
from app.review.session import ReviewSession
from app.security.http_auth import session_for
from app.security.keyring_store import InsecureKeyringError, check_keyring_backend
from app.security.signin import needs_sign_in
from app.settings import ConnectionProfile, Settings
from tests.support.memory_keyring import MemoryKeyring


class PlaintextKeyring(MemoryKeyring):
    """Stands for keyrings.alt's plaintext file backend (not installed here): the check
    goes by what a backend is, and this one says it keeps secrets in plain text."""


class Chain(ChainerBackend):
    backends: ClassVar = [MemoryKeyring(), keyring.backends.null.Keyring()]


@pytest.fixture(params=["fail", "null", "plaintext", "chain"])
def insecure(request: pytest.FixtureRequest) -> Iterator[KeyringBackend]:
    backend: KeyringBackend = {
        "fail": keyring.backends.fail.Keyring,
        "null": keyring.backends.null.Keyring,
        "plaintext": PlaintextKeyring,
        "chain": Chain,
    }[request.param]()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_every_secret_user_refuses_an_insecure_keyring(insecure: KeyringBackend) -> None:
    with pytest.raises(InsecureKeyringError, match="refusing to keep"):
        check_keyring_backend()
    basic = ConnectionProfile(
        name="p", url="https://pacs.example/dicom-web", auth="basic", username="u"
    )
    with pytest.raises(InsecureKeyringError, match="the basic secret of profile 'p'"):
        session_for(basic)
    oidc = ConnectionProfile(
        name="o",
        url="https://pacs.example/dicom-web",
        auth="oidc",
        oidc_issuer="https://idp.example",
        oidc_client_id="c",
    )
    with pytest.raises(InsecureKeyringError, match="the sign-in of profile 'o'"):
        needs_sign_in(oidc)
    with pytest.raises(AuditError, match="secure OS keyring"):
        load_key()
    check = selftest.keyring_backend()
    assert check.status == "warning" and "refusing to keep" in check.detail


def test_a_secure_keyring_is_accepted(memory_keyring: KeyringBackend) -> None:
    check_keyring_backend()
    assert selftest.keyring_backend().status == "ok"


def test_profile_fields_are_checked_and_hold_no_secret() -> None:
    with pytest.raises(ConfigError, match="role must be one of reader, observer"):
        ConnectionProfile(name="p", url="https://x/dicom-web", role="admin")
    with pytest.raises(ConfigError, match="oidc_issuer"):
        ConnectionProfile(name="p", url="https://x/dicom-web", auth="oidc")
    with pytest.raises(ConfigError, match="must include 'openid'"):
        ConnectionProfile(
            name="p",
            url="https://x/dicom-web",
            auth="oidc",
            oidc_issuer="https://idp",
            oidc_client_id="c",
            oidc_scopes="profile",
        )
    profile = ConnectionProfile(
        name="p",
        url="https://x/dicom-web",
        auth="oidc",
        oidc_issuer="https://idp",
        oidc_client_id="c",
        role="observer",
        client_cert="/c.pem",
        client_key="/k.pem",
    )
    data = Settings(profiles=[profile]).to_json()
    assert Settings.from_json(data).profiles == [profile]
    assert profile.observer


def test_an_observer_sees_but_cannot_decide() -> None:
    from tests.app.test_review_session import _finding, _result

    counter = itertools.count(1)
    session = ReviewSession(
        "1.2.3.300",
        [_result("1.2.3.100", _finding(1))],
        Reader("u", "U^"),
        new_uid=lambda: f"2.25.{next(counter)}",
        observer=True,
    )
    [item] = session.items
    assert item.decision is None and item.current is not None  # the finding is shown
    with pytest.raises(NotPermitted, match="observer"):
        session.confirm(item.tracking_uid)
    with pytest.raises(NotPermitted):
        session.undo()
    with pytest.raises(NotPermitted):
        session.restore([])
    assert session.decisions() == [] and not session.dirty
