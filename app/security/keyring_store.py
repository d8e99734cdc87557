"""Secrets in the OS keyring, and the one check that the keyring is safe to hold them.

Every secret the app keeps (HTTP basic passwords, bearer tokens, OpenID Connect refresh
tokens, client-key passphrases, the audit log's HMAC key) lives in the OS keyring under
service ``ai-review-companion``. A backend that would write a secret in plain text
(keyrings.alt's file backends), cannot keep it (keyring's ``fail`` backend) or discards
it (``null``) is refused, and so is a chain that could fall through to one of those.
The audit key, the self-test and every credential read use ``check_keyring_backend``.
"""

from __future__ import annotations

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from app.errors import SecurityError

KEYRING_SERVICE = "ai-review-companion"  # == app.settings.APP_NAME

# (module prefix, reason). Matched against the backend class's module.
_REFUSED_MODULES = (
    ("keyring.backends.fail", "it cannot store secrets"),
    ("keyring.backends.null", "it discards secrets"),
    ("keyrings.alt.file", "it keeps secrets in a file on disk"),
)
SECURE_KINDS = "Secret Service, KWallet, macOS Keychain or Windows Credential Manager"


class InsecureKeyringError(SecurityError):
    """The active keyring backend must not hold secrets."""


def describe_backend(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def backend_refusal(backend: object) -> str | None:
    """Why this one backend must not hold secrets, or None when it may."""
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


def check_keyring_backend(
    backend: KeyringBackend | None = None, *, purpose: str = "secrets"
) -> None:
    """Raise InsecureKeyringError unless the keyring backend keeps secrets safely.

    A chainer backend is refused when any backend in its chain is refused, since a
    read or write may fall through to it. ``purpose`` names what is to be kept
    ("the audit key", "the sign-in token of profile 'pacs'") for the message.
    """
    backend = backend if backend is not None else keyring.get_keyring()
    chain = getattr(backend, "backends", None)
    members = list(chain) if isinstance(chain, list | tuple) else [backend]
    if not members:
        raise InsecureKeyringError(
            f"keeping {purpose} needs a secure OS keyring ({SECURE_KINDS}), "
            "but no keyring backend is available"
        )
    for member in members:
        reason = backend_refusal(member)
        if reason:
            raise InsecureKeyringError(
                f"refusing to keep {purpose} in keyring backend {describe_backend(member)}: "
                f"{reason}. Use a secure OS keyring ({SECURE_KINDS}), or set "
                "PYTHON_KEYRING_BACKEND to one"
            )


def get_secret(user: str, *, purpose: str) -> str | None:
    """The secret stored under ``user``, or None; the backend is checked first."""
    check_keyring_backend(purpose=purpose)
    try:
        return keyring.get_password(KEYRING_SERVICE, user)
    except keyring.errors.KeyringError as exc:
        raise SecurityError(f"the OS keyring is unavailable for {purpose}: {exc}") from exc


def set_secret(user: str, secret: str, *, purpose: str) -> None:
    """Store (or replace) the secret under ``user``: one keyring write, never a file."""
    check_keyring_backend(purpose=purpose)
    try:
        keyring.set_password(KEYRING_SERVICE, user, secret)
    except keyring.errors.KeyringError as exc:
        raise SecurityError(f"the OS keyring could not store {purpose}: {exc}") from exc


def delete_secret(user: str, *, purpose: str) -> bool:
    """Remove the secret under ``user``; False when there was none."""
    check_keyring_backend(purpose=purpose)
    try:
        keyring.delete_password(KEYRING_SERVICE, user)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise SecurityError(f"the OS keyring could not delete {purpose}: {exc}") from exc
    return True
