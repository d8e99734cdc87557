"""The audit log's HMAC key, kept in the OS keyring, never on disk beside the log.

The key is 32 random bytes, base64 in the keyring under service
``ai-review-companion`` and user ``audit-hmac-key``, created on first use. A keyring
backend that would write it in plain text (keyrings.alt's file backends) or cannot
keep it at all (keyring's ``fail`` and ``null`` backends) is refused: a key next to
the log it protects proves nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from app.errors import AuditError
from app.security.keyring_store import KEYRING_SERVICE, InsecureKeyringError
from app.security.keyring_store import check_keyring_backend as _check

KEY_USER = "audit-hmac-key"
KEY_BYTES = 32


def check_keyring_backend(backend: KeyringBackend | None = None) -> None:
    """Raise AuditError unless the keyring backend keeps secrets safely (the one shared
    check, ``app.security.keyring_store.check_keyring_backend``)."""
    try:
        _check(backend, purpose="the audit key")
    except InsecureKeyringError as exc:
        raise AuditError(f"the audit trail needs a secure OS keyring: {exc}") from exc


def load_key(create: bool = True) -> bytes:
    """The audit HMAC key from the OS keyring; made and stored on first use if ``create``."""
    check_keyring_backend()
    try:
        stored = keyring.get_password(KEYRING_SERVICE, KEY_USER)
        if stored is None:
            if not create:
                raise AuditError(
                    f"no audit key in the OS keyring (service {KEYRING_SERVICE!r}, "
                    f"user {KEY_USER!r}); the audit log cannot be checked without it"
                )
            stored = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
            keyring.set_password(KEYRING_SERVICE, KEY_USER, stored)
    except keyring.errors.KeyringError as exc:
        raise AuditError(f"the OS keyring is unavailable for the audit key: {exc}") from exc
    try:
        key = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuditError(
            f"the audit key in the OS keyring (user {KEY_USER!r}) is not valid base64"
        ) from exc
    if len(key) != KEY_BYTES:
        raise AuditError(
            f"the audit key in the OS keyring must be {KEY_BYTES} bytes, got {len(key)}"
        )
    return key


def key_fingerprint(key: bytes) -> str:
    """A value stored beside the log to tell a wrong key from tampering; reveals nothing."""
    return hmac.new(key, b"ai-review-companion audit key check", hashlib.sha256).hexdigest()[:16]
