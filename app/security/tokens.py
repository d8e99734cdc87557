"""OpenID Connect tokens of one profile, and the ``requests`` auth that uses them.

The refresh token lives only in the OS keyring (user ``PROFILE:oidc-refresh-token``);
the access token only in memory. ``OidcTokens.access_token`` refreshes shortly
**before** expiry, one refresh at a time: a lock makes concurrent requests wait for the
one refresh and then use its token. With rotating refresh tokens the new refresh token
replaces the old one in the keyring in one write before the new access token is used.
When the provider no longer honours the refresh token (revoked, expired) or there is
none, the keyring entry is deleted and ``SignInRequired`` is raised; the
``on_sign_in_required`` callback fires once per lost sign-in, so the UI prompts once,
and later calls raise again without asking the provider until ``accept`` is called
by a new sign-in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from app.errors import SignInRequired
from app.security.keyring_store import delete_secret, get_secret, set_secret
from app.security.oidc import ProviderMetadata, TokenError, discover, token_request
from app.settings import ConnectionProfile

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 60.0  # refresh this long before expiry (at most a quarter of the lifetime)
DEFAULT_LIFETIME_S = 300.0  # when the provider does not say (expires_in missing)


def refresh_token_user(profile: ConnectionProfile) -> str:
    """Keyring user name of the profile's refresh token."""
    return f"{profile.name}:oidc-refresh-token"


class OidcTokens:
    """The token state of one OIDC profile; thread-safe."""

    def __init__(
        self,
        profile: ConnectionProfile,
        http: requests.Session,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self.profile = profile
        self.http = http  # talks to the provider only (discovery, token, revocation)
        self._clock = clock
        self.refresh_margin_s = refresh_margin_s
        self._lock = threading.Lock()
        self._meta: ProviderMetadata | None = None
        self._access_token = ""
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._signed_out = False  # SignInRequired was raised; wait for ``accept``
        self.refreshes = 0  # token endpoint refresh calls (for tests and diagnostics)
        self.user = ""
        self.on_sign_in_required: Callable[[ConnectionProfile], None] | None = None

    @property
    def purpose(self) -> str:
        return f"the sign-in of profile {self.profile.name!r}"

    def metadata(self) -> ProviderMetadata:
        if self._meta is None:
            self._meta = discover(self.profile.oidc_issuer, self.http)
        return self._meta

    # -- state ---------------------------------------------------------------------------
    def has_refresh_token(self) -> bool:
        return bool(get_secret(refresh_token_user(self.profile), purpose=self.purpose))

    def accept(self, answer: dict[str, Any], user: str = "") -> None:
        """Take a token endpoint answer (a sign-in's or a refresh's)."""
        with self._lock:
            self._accept(answer)
            self._signed_out = False
            if user:
                self.user = user

    def _accept(self, answer: dict[str, Any]) -> None:
        new_refresh = answer.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:
            # One keyring write replaces the old (rotated, now spent) refresh token.
            set_secret(refresh_token_user(self.profile), new_refresh, purpose=self.purpose)
        try:
            lifetime = float(answer.get("expires_in") or DEFAULT_LIFETIME_S)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME_S
        now = self._clock()
        self._access_token = str(answer["access_token"])
        self._expires_at = now + lifetime
        self._refresh_at = self._expires_at - min(self.refresh_margin_s, lifetime / 4)

    def forget(self) -> str:
        """Drop the in-memory access token and the keyring's refresh token (sign-out);
        returns the access token that was dropped (to revoke)."""
        with self._lock:
            token = self._access_token
            self._access_token = ""
            self._expires_at = self._refresh_at = 0.0
            self._signed_out = True
            self.user = ""
        delete_secret(refresh_token_user(self.profile), purpose=self.purpose)
        return token

    # -- use -----------------------------------------------------------------------------
    def access_token(self) -> str:
        """A valid access token, refreshed first when it is near expiry. Raises
        ``SignInRequired`` when only a new sign-in can give one."""
        with self._lock:
            if self._signed_out:
                raise self._sign_in_required("you are signed out", notify=False)
            if self._access_token and self._clock() < self._refresh_at:
                return self._access_token
            self._refresh()
            return self._access_token

    def invalidate(self, token: str) -> None:
        """The server refused ``token`` (HTTP 401): the next ``access_token`` refreshes,
        unless another thread has already replaced it."""
        with self._lock:
            if token and token == self._access_token:
                self._refresh_at = 0.0

    def _refresh(self) -> None:
        refresh_token = get_secret(refresh_token_user(self.profile), purpose=self.purpose)
        if not refresh_token:
            raise self._sign_in_required("there is no stored sign-in")
        meta = self.metadata()
        self.refreshes += 1
        try:
            answer = token_request(
                self.http,
                meta,
                {
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                    "client_id": self.profile.oidc_client_id,
                },
            )
        except TokenError as exc:
            if exc.error in ("invalid_grant", "invalid_client", "unauthorized_client") or (
                exc.status in (400, 401)
            ):
                log.info(
                    "profile %r: the provider refused the refresh token (%s)",
                    self.profile.name,
                    exc.error,
                )
                delete_secret(refresh_token_user(self.profile), purpose=self.purpose)
                raise self._sign_in_required("the sign-in has ended or was revoked") from exc
            raise requests.exceptions.ConnectionError(
                f"the OpenID provider could not refresh the sign-in ({exc.error}); will try again"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise requests.exceptions.ConnectionError(
                f"the OpenID provider {meta.issuer} could not be reached to refresh the "
                f"sign-in: {type(exc).__name__}"
            ) from exc
        self._accept(answer)
        log.info("profile %r: access token refreshed", self.profile.name)

    def _sign_in_required(self, why: str, *, notify: bool = True) -> SignInRequired:
        first = not self._signed_out
        self._signed_out = True
        self._access_token = ""
        self._expires_at = self._refresh_at = 0.0
        if notify and first and self.on_sign_in_required is not None:
            try:
                self.on_sign_in_required(self.profile)
            except Exception:  # the prompt hook must not hide the error itself
                log.exception("on_sign_in_required hook failed")
        return SignInRequired(
            f"profile {self.profile.name!r}: please sign in again ({why})", self.profile.name
        )


class OidcAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer`` from ``OidcTokens``; after a 401 refreshes and
    sends the request once more (a second 401 is returned to the caller as is)."""

    def __init__(self, tokens: OidcTokens) -> None:
        self.tokens = tokens

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.tokens.access_token()}"
        request.register_hook("response", self._on_response)
        return request

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        request = response.request
        if response.status_code != 401 or request.headers.get("X-Companion-Retry"):
            return response
        if request.body is not None and not isinstance(request.body, bytes | str):
            return response  # a streamed body cannot be sent twice
        used = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        self.tokens.invalidate(used)
        token = self.tokens.access_token()  # refreshes; SignInRequired when it cannot
        response.content  # noqa: B018 - read the answer so the connection can be reused
        response.close()
        retry = request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        retry.headers["X-Companion-Retry"] = "1"
        connection = response.connection
        assert connection is not None
        second = connection.send(retry, **kwargs)
        second.history.append(response)
        second.request = retry
        return second
