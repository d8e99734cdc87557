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
from app.security.http_auth import KEYRING_SERVICE

KEY_USER = "audit-hmac-key"
KEY_BYTES = 32

# (module prefix, reason). Matched against the backend class's module.
_REFUSED_MODULES = (
    ("keyring.backends.fail", "it cannot store secrets"),
    ("keyring.backends.null", "it discards secrets"),
    ("keyrings.alt.file", "it keeps secrets in a file on disk"),
)


def _describe(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _refusal(backend: object) -> str | None:
    """Why this one backend must not hold the key, or None when it may."""
    cls = type(backend)
    module, name = cls.__module__, cls.__name__
    for prefix, reason in _REFUSED_MODULES:
        if module == prefix or module.startswith(prefix + "."):
            return reason
    if "plaintext" in name.lower() or "plaintext" in module.lower():
        return "it keeps secrets in plain text"
    try:
        priority = float(getattr(backend, "priority", 1))
    except Exception:  # noqa: BLE001 - priority raises when a backend is unusable here
        return "it reports itself unusable here"
    if priority <= 0:
        return f"its priority is {priority:g} (unusable or a stand-in)"
    return None


def check_keyring_backend(backend: KeyringBackend | None = None) -> None:
    """Raise AuditError unless the active keyring backend keeps secrets safely.

    A chainer backend is refused when any backend in its chain is refused, since a
    read or write may fall through to it.
    """
    backend = backend if backend is not None else keyring.get_keyring()
    chain = getattr(backend, "backends", None)
    members = list(chain) if isinstance(chain, list | tuple) else [backend]
    if not members:
        raise AuditError(
            "the audit trail needs a secure OS keyring (Secret Service, KWallet, macOS Keychain "
            "or Windows Credential Manager), but no keyring backend is available"
        )
    for member in members:
        reason = _refusal(member)
        if reason:
            raise AuditError(
                f"refusing to keep the audit key in keyring backend {_describe(member)}: {reason}. "
                "Use a secure OS keyring (Secret Service, KWallet, macOS Keychain or Windows "
                "Credential Manager), or set PYTHON_KEYRING_BACKEND to one"
            )


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
