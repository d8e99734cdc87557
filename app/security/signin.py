"""Sign-in and sign-out of an OpenID Connect profile, with their audit entries.

``sign_in`` runs the authorization code flow with PKCE through the system browser and
a loopback redirect (RFC 8252); it blocks until the browser comes back (run it off the
UI thread). ``sign_out`` revokes the refresh and access tokens where the provider offers
revocation (RFC 7009) and deletes the keyring entry. Both write a User Authentication
audit entry through ``audit`` (e.g. ``AuditLog.append``); failed sign-ins too. Audit
details name the profile and issuer, never a token or a code.
"""

from __future__ import annotations

import getpass
import logging
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from app.audit.events import AuditEvent, EventKind, Outcome
from app.errors import CompanionError, ConfigError, SecurityError
from app.security.oidc import (
    HTTP_TIMEOUT_S,
    AuthRequest,
    LoopbackReceiver,
    SignInFailed,
    TokenError,
    token_request,
    validate_id_token,
)
from app.security.tls import configure_tls
from app.security.tokens import OidcTokens, refresh_token_user
from app.settings import ConnectionProfile

log = logging.getLogger(__name__)

AuditSink = Callable[[AuditEvent], object]
SIGN_IN_TIMEOUT_S = 300.0

_registry: dict[tuple[str, str, str], OidcTokens] = {}
_registry_lock = threading.Lock()


@dataclass(frozen=True)
class SignInResult:
    profile: str
    user: str  # preferred_username, else the subject
    display_name: str
    subject: str


def tokens_for(profile: ConnectionProfile) -> OidcTokens:
    """The one token state of a profile in this process (shared by every session)."""
    if profile.auth != "oidc":
        raise ConfigError(f"profile {profile.name!r} does not use OpenID Connect")
    key = (profile.name, profile.oidc_issuer, profile.oidc_client_id)
    with _registry_lock:
        tokens = _registry.get(key)
        if tokens is None:
            http = requests.Session()
            configure_tls(http, profile)
            tokens = OidcTokens(profile, http)
            _registry[key] = tokens
        return tokens


def forget_all_token_states() -> None:
    """Drop every in-memory token state (tests; a settings change that edits a profile)."""
    with _registry_lock:
        _registry.clear()


def needs_sign_in(profile: ConnectionProfile) -> bool:
    """True when an OIDC profile has no stored sign-in (the UI may prompt before connecting)."""
    return profile.auth == "oidc" and not tokens_for(profile).has_refresh_token()


def sign_in(
    profile: ConnectionProfile,
    *,
    open_browser: Callable[[str], object] = webbrowser.open,
    timeout_s: float = SIGN_IN_TIMEOUT_S,
    cancelled: threading.Event | None = None,
    audit: AuditSink | None = None,
) -> SignInResult:
    """Sign in through the system browser; blocks until done. Raises ``SecurityError``
    (``SignInFailed`` when the user or the provider said no, or a check failed)."""
    tokens = tokens_for(profile)
    try:
        meta = tokens.metadata()
        request = AuthRequest()
        with LoopbackReceiver(request.state) as receiver:
            url = request.url(
                meta, profile.oidc_client_id, receiver.redirect_uri, profile.oidc_scopes
            )
            if open_browser(url) is False:
                raise SignInFailed("the system browser could not be opened")
            answer = receiver.wait(timeout_s, cancelled)
            redirect_uri = receiver.redirect_uri
        if "error" in answer:
            raise SignInFailed(
                f"the OpenID provider refused the sign-in: {answer['error']}"
                + (f" ({answer['error_description']})" if answer.get("error_description") else "")
            )
        if meta.iss_parameter and answer.get("iss", "").rstrip("/") != meta.issuer.rstrip("/"):
            raise SignInFailed("the sign-in answer came from another provider (iss mismatch)")
        try:
            tokens_answer = token_request(
                tokens.http,
                meta,
                {
                    "grant_type": "authorization_code",
                    "code": answer["code"],
                    "redirect_uri": redirect_uri,
                    "client_id": profile.oidc_client_id,
                    "code_verifier": request.verifier,
                },
            )
        except requests.exceptions.RequestException as exc:
            raise SignInFailed(
                f"the OpenID provider's token endpoint could not be reached: {type(exc).__name__}"
            ) from exc
        except TokenError as exc:
            raise SignInFailed(str(exc)) from exc
        id_token = tokens_answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the OpenID provider sent no ID token (is 'openid' a scope?)")
        claims = validate_id_token(
            id_token,
            issuer=meta.issuer,
            client_id=profile.oidc_client_id,
            nonce=request.nonce,
            now=time.time(),
        )
        if not tokens_answer.get("refresh_token"):
            log.warning(
                "profile %r: the provider issued no refresh token; the sign-in will "
                "last only as long as the access token",
                profile.name,
            )
        user = str(claims.get("preferred_username") or claims["sub"])
        tokens.accept(tokens_answer, user=user)
    except CompanionError as exc:
        _record(
            audit,
            EventKind.SIGN_IN,
            _os_user(),
            profile,
            Outcome.MINOR_FAILURE,
            {"outcome_description": str(exc)[:200]},
        )
        raise
    _record(audit, EventKind.SIGN_IN, user, profile, Outcome.SUCCESS, {})
    log.info("profile %r: signed in", profile.name)
    return SignInResult(profile.name, user, str(claims.get("name") or user), str(claims["sub"]))


def sign_out(profile: ConnectionProfile, *, audit: AuditSink | None = None) -> bool:
    """Revoke the tokens where the provider allows, and delete the stored sign-in.
    Returns whether the provider confirmed the revocation. Local state is cleared
    even when the provider cannot be reached."""
    tokens = tokens_for(profile)
    user = tokens.user or _os_user()
    refresh = None
    try:
        from app.security.keyring_store import get_secret

        refresh = get_secret(refresh_token_user(profile), purpose=tokens.purpose)
    except SecurityError:
        refresh = None
    access = tokens.forget()
    revoked = False
    try:
        meta = tokens.metadata()
        if meta.revocation_endpoint:
            revoked = True
            for token, hint in ((refresh, "refresh_token"), (access, "access_token")):
                if token:
                    revoked = (
                        _revoke(
                            tokens.http,
                            meta.revocation_endpoint,
                            token,
                            hint,
                            profile.oidc_client_id,
                        )
                        and revoked
                    )
    except (SecurityError, requests.exceptions.RequestException) as exc:
        log.warning(
            "profile %r: could not revoke the tokens at sign-out: %s",
            profile.name,
            type(exc).__name__,
        )
        revoked = False
    _record(audit, EventKind.SIGN_OUT, user, profile, Outcome.SUCCESS, {"revoked": revoked})
    log.info("profile %r: signed out (revoked at the provider: %s)", profile.name, revoked)
    return revoked


def _revoke(http: requests.Session, endpoint: str, token: str, hint: str, client_id: str) -> bool:
    response = http.post(
        endpoint,
        data={"token": token, "token_type_hint": hint, "client_id": client_id},
        timeout=HTTP_TIMEOUT_S,
    )
    return response.status_code == 200


def _os_user() -> str:
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):
        return "unknown"


def _record(
    audit: AuditSink | None,
    kind: EventKind,
    user: str,
    profile: ConnectionProfile,
    outcome: Outcome,
    details: dict[str, Any],
) -> None:
    if audit is None:
        return
    audit(
        AuditEvent(
            kind=kind,
            user=user,
            outcome=outcome,
            details={
                "profile": profile.name,
                "method": "oidc",
                "issuer": profile.oidc_issuer,
                **details,
            },
        )
    )
