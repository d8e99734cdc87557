"""Fixtures of the sign-in and TLS tests: a real OpenID provider (node oidc-provider),
a recording in-memory keyring, and the list of every secret the tests saw, which
``test_zz_secret_scan`` then looks for in files, logs and databases."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from app.security import signin
from app.settings import ConnectionProfile
from tests.support import oidc_provider, secret_scan
from tests.support.memory_keyring import MemoryKeyring

# Every token and password the tests handled: the session-wide registry, which the
# in-memory keyring and the token hook (tests/conftest.py) add to.
SEEN_SECRETS: set[str] = secret_scan.SECRETS
USED_FOLDERS: set[Path] = set()  # folders these tests wrote to (scanned by test_zz_...)
LOG_NAME = "security-tests.log"


class RecordingKeyring(MemoryKeyring):
    """The in-memory backend (which registers every secret stored for the scans)."""


@pytest.fixture(scope="session")
def security_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("security")
    USED_FOLDERS.add(folder)
    secret_scan.register_folder(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _log_to_file(security_tmp: Path) -> Iterator[Path]:
    """Everything the app logs during these tests goes to a file the scan reads."""
    path = security_tmp / LOG_NAME
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


@pytest.fixture(autouse=True)
def _used_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import os

    USED_FOLDERS.add(Path(os.environ["COMPANION_HOME"]))
    signin.forget_all_token_states()
    yield
    signin.forget_all_token_states()


@pytest.fixture()
def recording_keyring() -> Iterator[RecordingKeyring]:
    previous = keyring.get_keyring()
    backend = RecordingKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture(scope="session")
def provider(security_tmp: Path) -> Iterator[oidc_provider.OidcProvider]:
    why = oidc_provider.available()
    if why:
        pytest.fail(f"the real OpenID provider cannot run: {why} (installer/dev.sh test)")
    SEEN_SECRETS.add(oidc_provider.PASSWORD)
    server = oidc_provider.start_provider(security_tmp, access_token_ttl_s=4)
    try:
        yield server
    finally:
        server.stop()


def oidc_profile(
    provider: oidc_provider.OidcProvider,
    url: str = "https://localhost:1/dicom-web",
    **extra: object,
) -> ConnectionProfile:
    return ConnectionProfile(
        name="pacs",
        url=url,
        auth="oidc",
        oidc_issuer=provider.issuer,
        oidc_client_id=oidc_provider.CLIENT_ID,
        oidc_scopes="openid profile",
        **extra,  # type: ignore[arg-type]
    )
