"""HTTP sessions for a connection profile: auth from the OS keyring, TLS verified.

Only the auth kinds none, basic and bearer are served here; OpenID Connect is
the sign-in issue's work and is refused with a clear message until then.
Secrets are read from the keyring at connect time and never logged or stored
in the settings file.
"""

from __future__ import annotations

import keyring
import keyring.errors
import requests

from app.errors import ConfigError
from app.settings import APP_NAME, ConnectionProfile

KEYRING_SERVICE = APP_NAME


def keyring_key(profile: ConnectionProfile) -> str:
    """The keyring user name under which a profile's secret is kept."""
    return f"{profile.name}:{profile.username or profile.auth}"


def bearer_token(profile: ConnectionProfile) -> str | None:
    """The profile's bearer token from the OS keyring (None when it has none)."""
    try:
        return keyring.get_password(KEYRING_SERVICE, keyring_key(profile)) or None
    except keyring.errors.KeyringError as exc:
        raise ConfigError(f"profile {profile.name!r}: the OS keyring is unavailable: {exc}") from exc


def session_for(profile: ConnectionProfile) -> requests.Session:
    session = requests.Session()
    session.verify = profile.ca_bundle or profile.verify_tls
    if profile.auth == "none":
        return session
    if profile.auth == "oidc":
        raise ConfigError(
            f"profile {profile.name!r}: OpenID Connect sign-in is not available in this version"
        )
    try:
        secret = keyring.get_password(KEYRING_SERVICE, keyring_key(profile))
    except keyring.errors.KeyringError as exc:
        raise ConfigError(f"profile {profile.name!r}: the OS keyring is unavailable: {exc}") from exc
    if not secret:
        raise ConfigError(
            f"profile {profile.name!r}: no {profile.auth} secret in the OS keyring "
            f"(service {KEYRING_SERVICE!r}, user {keyring_key(profile)!r})"
        )
    if profile.auth == "basic":
        session.auth = (profile.username, secret)
    else:
        session.headers["Authorization"] = f"Bearer {secret}"
    return session
