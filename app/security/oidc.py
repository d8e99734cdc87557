"""OpenID Connect pieces for a native public client (RFC 8252, RFC 7636, OIDC Core).

Discovery, PKCE (S256 only), the loopback redirect receiver on 127.0.0.1 with an
ephemeral port, the token endpoint calls and the ID token checks a public client can
make. The ID token comes straight from the token endpoint over TLS, so per OIDC Core
3.1.3.7 (6) its signature is not checked here; issuer, audience, authorised party,
expiry, issue time and nonce are.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from app.errors import SecurityError

DISCOVERY_PATH = "/.well-known/openid-configuration"
HTTP_TIMEOUT_S = 20.0
CLOCK_LEEWAY_S = 120.0
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class SignInFailed(SecurityError):
    """The sign-in did not complete (refused, cancelled, timed out, or a check failed)."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str = ""
    end_session_endpoint: str = ""
    code_challenge_methods: tuple[str, ...] = ()
    iss_parameter: bool = False  # RFC 9207 authorization_response_iss_parameter_supported


def _norm(url: str) -> str:
    return url.rstrip("/")


def check_issuer_url(issuer: str) -> None:
    """An issuer must be https; plain http is allowed on loopback only (tests, dev)."""
    parts = urlsplit(issuer)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS:
        return
    raise SecurityError(f"OpenID issuer {issuer!r} must use https")


def discover(issuer: str, http: requests.Session) -> ProviderMetadata:
    """Read ``ISSUER/.well-known/openid-configuration`` and check that it names ``issuer``."""
    check_issuer_url(issuer)
    url = _norm(issuer) + DISCOVERY_PATH
    try:
        response = http.get(url, timeout=HTTP_TIMEOUT_S)
        response.raise_for_status()
        doc = response.json()
    except requests.exceptions.RequestException as exc:
        raise SecurityError(f"OpenID discovery at {url} failed: {_short(exc)}") from exc
    except ValueError as exc:
        raise SecurityError(f"OpenID discovery at {url} did not return JSON") from exc
    if not isinstance(doc, dict):
        raise SecurityError(f"OpenID discovery at {url} did not return a JSON object")
    if _norm(str(doc.get("issuer", ""))) != _norm(issuer):
        raise SecurityError(
            f"OpenID discovery at {url} names issuer {doc.get('issuer')!r}, not {issuer!r}"
        )
    for key in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise SecurityError(f"OpenID discovery at {url} has no {key}")
    methods = tuple(doc.get("code_challenge_methods_supported") or ())
    if methods and "S256" not in methods:
        raise SecurityError(f"the OpenID provider {issuer} does not offer PKCE S256")
    return ProviderMetadata(
        issuer=str(doc["issuer"]),
        authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"],
        revocation_endpoint=str(doc.get("revocation_endpoint") or ""),
        end_session_endpoint=str(doc.get("end_session_endpoint") or ""),
        code_challenge_methods=methods,
        iss_parameter=bool(doc.get("authorization_response_iss_parameter_supported")),
    )


# -- PKCE ------------------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, code_challenge) with method S256 (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]
    challenge = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    return verifier, challenge


@dataclass
class AuthRequest:
    """One authorization request's secrets, kept in memory for the one sign-in."""

    state: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    verifier: str = ""
    challenge: str = ""

    def __post_init__(self) -> None:
        if not self.verifier:
            self.verifier, self.challenge = pkce_pair()

    def url(self, meta: ProviderMetadata, client_id: str, redirect_uri: str, scopes: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": scopes,
                "state": self.state,
                "nonce": self.nonce,
                "code_challenge": self.challenge,
                "code_challenge_method": "S256",
            }
        )
        sep = "&" if "?" in meta.authorization_endpoint else "?"
        return f"{meta.authorization_endpoint}{sep}{query}"


# -- loopback redirect (RFC 8252 7.3) ---------------------------------------------------------
_DONE_PAGE = (
    b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Signed in</title></head>"
    b"<body><p>AI Review Companion: you can close this window.</p></body></html>"
)
_FAIL_PAGE = (
    b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sign-in failed</title>"
    b"</head><body><p>AI Review Companion: the sign-in did not complete. Return to the "
    b"application.</p></body></html>"
)


class LoopbackReceiver:
    """Waits on ``http://127.0.0.1:<ephemeral port>/callback`` for the one redirect that
    carries ``state``; other requests (a favicon, a stale tab) get 404/400 and are ignored."""

    def __init__(self, state: str) -> None:
        self._state = state
        self._result: dict[str, str] | None = None
        self._done = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the http.server API
                parts = urlsplit(self.path)
                if parts.path != "/callback":
                    self._reply(404, b"not found")
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if not secrets.compare_digest(query.get("state", ""), receiver._state):
                    self._reply(400, b"unknown sign-in request")
                    return
                ok = "code" in query and "error" not in query
                self._reply(200 if ok else 400, _DONE_PAGE if ok else _FAIL_PAGE, html=True)
                if not receiver._done.is_set():
                    receiver._result = query
                    receiver._done.set()

            def _reply(self, status: int, body: bytes, html: bool = False) -> None:
                self.send_response(status)
                self.send_header(
                    "Content-Type", "text/html; charset=utf-8" if html else "text/plain"
                )
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the query holds the authorization code: never log it

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oidc-loopback", daemon=True
        )

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/callback"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait(self, timeout_s: float, cancelled: threading.Event | None = None) -> dict[str, str]:
        """The redirect's query parameters; SignInFailed on timeout or cancel."""
        deadline = time.monotonic() + timeout_s
        while not self._done.wait(0.1):
            if cancelled is not None and cancelled.is_set():
                raise SignInFailed("the sign-in was cancelled")
            if time.monotonic() > deadline:
                raise SignInFailed(
                    f"no answer from the browser within {timeout_s:.0f} s; the sign-in was "
                    "not completed"
                )
        assert self._result is not None
        return self._result


# -- tokens and the ID token ------------------------------------------------------------------
def token_request(
    http: requests.Session, meta: ProviderMetadata, data: dict[str, str]
) -> dict[str, Any]:
    """POST to the token endpoint. Raises ``TokenError`` with the provider's error code."""
    # A RequestException (provider unreachable) goes to the caller: it decides.
    response = http.post(
        meta.token_endpoint,
        data=data,
        timeout=HTTP_TIMEOUT_S,
        headers={"Accept": "application/json"},
    )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict):
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        raise TokenError(response.status_code, error or f"HTTP {response.status_code}")
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise TokenError(response.status_code, "no access_token in the answer")
    return body


class TokenError(SecurityError):
    """The token endpoint said no; ``error`` is its OAuth error code (e.g. invalid_grant)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"the OpenID provider refused the token request: {error}")
        self.status = status
        self.error = error


def id_token_claims(id_token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (see the module text for why that is sound here)."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise SignInFailed("the provider's ID token is not a readable JWT") from exc
    if not isinstance(claims, dict):
        raise SignInFailed("the provider's ID token has no claims object")
    return claims


def validate_id_token(
    id_token: str, *, issuer: str, client_id: str, nonce: str | None, now: float
) -> dict[str, Any]:
    """Check iss, aud, azp, exp, iat and nonce (OIDC Core 3.1.3.7); return the claims."""
    claims = id_token_claims(id_token)
    if _norm(str(claims.get("iss", ""))) != _norm(issuer):
        raise SignInFailed("the ID token was issued by another provider than the profile's")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    if client_id not in audiences:
        raise SignInFailed("the ID token is not meant for this application (audience)")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise SignInFailed("the ID token's authorised party is not this application")
    try:
        exp = float(claims["exp"])
        iat = float(claims["iat"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SignInFailed("the ID token has no valid exp/iat") from exc
    if exp < now - CLOCK_LEEWAY_S:
        raise SignInFailed("the ID token has expired (check this computer's clock)")
    if iat > now + CLOCK_LEEWAY_S:
        raise SignInFailed("the ID token was issued in the future (check this computer's clock)")
    if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SignInFailed("the ID token's nonce does not match this sign-in (replay?)")
    if not claims.get("sub"):
        raise SignInFailed("the ID token names no subject")
    return claims


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
