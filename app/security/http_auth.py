"""HTTP sessions for a connection profile: auth from the OS keyring, TLS verified.

Auth kinds: none, basic (password in the keyring), bearer (token in the keyring) and
oidc (OpenID Connect; see ``signin`` and ``tokens``). TLS is verified by default, with
the profile's CA bundle and client certificate (``tls``). Secrets are read from the
keyring, which must be a secure one (``keyring_store.check_keyring_backend``), and are
never logged or stored in the settings file.
"""

from __future__ import annotations

import requests

from app.errors import ConfigError
from app.security.keyring_store import KEYRING_SERVICE, get_secret
from app.security.tls import configure_tls
from app.settings import ConnectionProfile

__all__ = ["KEYRING_SERVICE", "bearer_token", "keyring_key", "session_for"]


def keyring_key(profile: ConnectionProfile) -> str:
    """The keyring user name under which a profile's basic/bearer secret is kept."""
    return f"{profile.name}:{profile.username or profile.auth}"


def bearer_token(profile: ConnectionProfile) -> str | None:
    """A token to send as ``Authorization: Bearer`` on the profile's behalf (e.g. to a
    FHIRcast hub): the OIDC access token (refreshed when due; ``SignInRequired`` when the
    sign-in is gone) or the bearer secret from the keyring; None for other auth kinds."""
    if profile.auth == "oidc":
        from app.security.signin import tokens_for

        return tokens_for(profile).access_token()
    if profile.auth != "bearer":
        return None
    return get_secret(keyring_key(profile), purpose=f"the bearer token of profile {profile.name!r}")


def session_for(profile: ConnectionProfile) -> requests.Session:
    """A session that authenticates as the profile says. For oidc no network call is
    made here: the first request refreshes or raises ``SignInRequired``."""
    session = requests.Session()
    configure_tls(session, profile)
    if profile.auth == "none":
        return session
    if profile.auth == "oidc":
        from app.security.signin import tokens_for
        from app.security.tokens import OidcAuth

        session.auth = OidcAuth(tokens_for(profile))
        return session
    secret = get_secret(
        keyring_key(profile), purpose=f"the {profile.auth} secret of profile {profile.name!r}"
    )
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
