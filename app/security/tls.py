"""TLS for a connection profile: verified by default, a per-profile CA bundle, an optional
client certificate (its key's passphrase in the OS keyring), and TLS failures told in
words a user can act on (wrong CA, host name mismatch, expired certificate).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from app.errors import ConfigError, SecurityError
from app.security.keyring_store import get_secret
from app.settings import ConnectionProfile


def client_key_secret_user(profile: ConnectionProfile) -> str:
    """Keyring user name of the passphrase of the profile's client key."""
    return f"{profile.name}:client-key"


def verify_setting(profile: ConnectionProfile) -> bool | str:
    """What ``requests`` takes as ``verify``: the CA bundle path, or True/False."""
    if profile.ca_bundle:
        if not Path(profile.ca_bundle).is_file():
            raise ConfigError(
                f"profile {profile.name!r}: ca_bundle {profile.ca_bundle!r} is not a file"
            )
        return profile.ca_bundle
    return profile.verify_tls


def explain_tls_error(text: str, profile: ConnectionProfile | None = None) -> str | None:
    """A sentence for a TLS failure's text (OpenSSL's words), or None if it is not one."""
    trusted = "the system's trusted CAs"
    if profile is not None and profile.ca_bundle:
        trusted = f"the profile's CA bundle {profile.ca_bundle}"
    low = text.lower()
    if "certificate has expired" in low:
        return (
            "TLS: the server's certificate has expired (or this computer's clock is wrong); "
            "the server's administrator must renew it"
        )
    if "certificate is not yet valid" in low:
        return "TLS: the server's certificate is not valid yet (check this computer's clock)"
    if "hostname mismatch" in low or "ip address mismatch" in low or "doesn't match" in low:
        return (
            "TLS: the server's certificate was issued for another host name than the one in "
            "the profile's URL; use the name the certificate names"
        )
    if (
        "unable to get local issuer" in low
        or "self-signed certificate" in low
        or "self signed certificate" in low
        or "unable to get issuer" in low
    ):
        return (
            f"TLS: the server's certificate is not issued by a CA in {trusted}; set the "
            "profile's CA bundle to your organisation's CA certificate"
        )
    if "certificate required" in low or "peer did not return a certificate" in low:
        return (
            "TLS: the server requires a client certificate; set the profile's client "
            "certificate and key"
        )
    if "bad certificate" in low or "unknown ca" in low or "certificate unknown" in low:
        return "TLS: the server refused this profile's client certificate"
    if "certificate_verify_failed" in low:
        return f"TLS: the server's certificate could not be verified against {trusted}"
    return None


class ProfileTLSAdapter(HTTPAdapter):
    """An HTTPS adapter that loads an encrypted client key with its passphrase and
    re-raises TLS failures with an explanation (``explain_tls_error``)."""

    def __init__(self, profile: ConnectionProfile, key_password: str | None = None) -> None:
        self._profile = profile
        self._key_password = key_password
        self._verify = verify_setting(profile)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._key_password is not None:
            kwargs["key_password"] = self._key_password
        super().init_poolmanager(*args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        # The profile decides what to trust: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the
        # environment would otherwise replace the profile's CA bundle for every request.
        kwargs["verify"] = self._verify
        try:
            return super().send(request, **kwargs)
        except requests.exceptions.SSLError as exc:
            why = explain_tls_error(str(exc), self._profile)
            if why is None:
                raise
            raise requests.exceptions.SSLError(why, request=request) from exc
        except requests.exceptions.ConnectionError as exc:
            # A refused client certificate often shows as a reset during the handshake.
            why = explain_tls_error(str(exc), self._profile)
            if why is None:
                raise
            raise requests.exceptions.SSLError(why, request=request) from exc


def configure_tls(session: requests.Session, profile: ConnectionProfile) -> None:
    """Set ``session``'s TLS from the profile: verification, CA bundle, client certificate."""
    session.verify = verify_setting(profile)
    password = None
    if profile.client_cert:
        for label, path in (
            ("client_cert", profile.client_cert),
            ("client_key", profile.client_key),
        ):
            if path and not Path(path).is_file():
                raise ConfigError(f"profile {profile.name!r}: {label} {path!r} is not a file")
        key_path = profile.client_key or profile.client_cert
        if "ENCRYPTED" in Path(key_path).read_text(encoding="ascii", errors="replace"):
            password = get_secret(
                client_key_secret_user(profile),
                purpose=f"the client key passphrase of profile {profile.name!r}",
            )
            if not password:
                raise ConfigError(
                    f"profile {profile.name!r}: the client key {key_path} is encrypted and no "
                    f"passphrase is in the OS keyring (user {client_key_secret_user(profile)!r})"
                )
        _check_client_pair(profile, password)
        session.cert = (
            (profile.client_cert, profile.client_key) if profile.client_key else profile.client_cert
        )
    session.mount("https://", ProfileTLSAdapter(profile, password))


def _check_client_pair(profile: ConnectionProfile, password: str | None) -> None:
    """Load the certificate and key once now, so a wrong passphrase or a key that does not
    match the certificate is reported at connect time, by name."""
    context = ssl.create_default_context()
    try:
        context.load_cert_chain(profile.client_cert, profile.client_key or None, password=password)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "BAD_DECRYPT" in str(exc) or "bad decrypt" in str(exc).lower():
            reason = "the key's passphrase in the OS keyring is wrong"
        elif "KEY_VALUES_MISMATCH" in str(exc):
            reason = "the key does not belong to the certificate"
        raise SecurityError(
            f"profile {profile.name!r}: cannot use the client certificate "
            f"{profile.client_cert}: {reason}"
        ) from exc
