"""An in-memory keyring backend for tests.

No OS keyring service (Secret Service, KWallet) runs in CI, and keyrings.alt's
plaintext file is exactly what the app must never use, so the tests install
this backend: a stand-in where no real thing can run here. Every secret stored in it
is added to the end-of-session secret scan (tests/support/secret_scan.py).
"""

from __future__ import annotations

from keyring.backend import KeyringBackend

from tests.support.secret_scan import register_secret


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self._store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        register_secret(password)
        self._store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._store.pop((service, username), None)
