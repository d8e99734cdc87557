"""A real OpenID provider for the sign-in tests: panva/oidc-provider (OpenID Certified)
run with node on a free loopback port (tests/support/oidc_node, installed by
``installer/dev.sh test`` with ``npm ci``).

The provider has one public native client (PKCE S256 required, loopback redirect on any
port), short-lived access tokens, rotating refresh tokens, revocation and userinfo, and
one test user whose password its login form checks. ``Browser`` plays the system
browser's part against the provider's real endpoints: it follows the authorization
redirect, fills in the login and consent forms, and lands on the app's loopback redirect.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests

from tests.support.orthanc import free_port
from tests.support.secret_scan import register_secret

NODE_DIR = Path(__file__).with_name("oidc_node")
CLIENT_ID = "companion-test"
USER = "alice"
PASSWORD = "correct horse battery staple 7"  # the test user's password
register_secret(PASSWORD)  # looked for in every file the session leaves


def available() -> str:
    """Why the provider cannot run here, or '' when it can."""
    if shutil.which("node") is None:
        return "node is not installed (apt: nodejs npm)"
    if not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"oidc-provider is not installed: run `npm ci` in {NODE_DIR}"
    return ""


@dataclass
class OidcProvider:
    process: subprocess.Popen[bytes]
    port: int
    access_token_ttl_s: int
    log_path: Path

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metadata(self) -> dict[str, str]:
        return dict(
            requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10).json()
        )

    def revoke(self, token: str, hint: str) -> None:
        """Revoke a token at the provider (as an administrator or another session would)."""
        response = requests.post(
            self.metadata()["revocation_endpoint"],
            timeout=10,
            data={"token": token, "token_type_hint": hint, "client_id": CLIENT_ID},
        )
        assert response.status_code == 200, response.text

    def userinfo_ok(self, access_token: str) -> bool:
        response = requests.get(
            self.metadata()["userinfo_endpoint"],
            timeout=10,
            headers={"Authorization": f"Bearer {access_token}"},
        )
        return response.status_code == 200

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_provider(folder: Path, access_token_ttl_s: int = 4) -> OidcProvider:
    port = free_port()
    log_path = folder / "oidc-provider.log"
    out = log_path.open("wb")
    process = subprocess.Popen(
        ["node", "provider.mjs", str(port), CLIENT_ID, USER, PASSWORD, str(access_token_ttl_s)],
        cwd=NODE_DIR,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    provider = OidcProvider(process, port, access_token_ttl_s, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"oidc-provider exited: {log_path.read_text(errors='replace')}")
        try:
            if requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2).ok:
                return provider
        except requests.exceptions.ConnectionError:
            pass
        time.sleep(0.1)
    provider.stop()
    raise RuntimeError("oidc-provider did not start in 30 s")


_FORM = re.compile(r'<form method="post" action="([^"]+)"')


@dataclass
class Browser:
    """The system browser's part: an HTTP client with cookies that submits the forms."""

    username: str = USER
    password: str = PASSWORD
    consent: bool = True
    session: requests.Session = field(default_factory=requests.Session)
    landed: list[str] = field(default_factory=list)  # loopback URLs reached
    pages: list[int] = field(default_factory=list)  # statuses of the forms' answers

    def open(self, url: str) -> bool:
        """Follow the authorization request to the app's loopback redirect."""
        response = self.session.get(url, timeout=20)
        for _ in range(4):
            match = _FORM.search(response.text)
            if response.url.startswith("http://127.0.0.1") and "/callback" in response.url:
                self.landed.append(response.url)
                return True
            if not match:
                self.pages.append(response.status_code)
                return True
            action = urljoin(response.url, match.group(1))
            if action.endswith("/login"):
                data = {"username": self.username, "password": self.password}
            elif self.consent:
                data = {}
            else:
                return True
            response = self.session.post(action, data=data, timeout=20)
            self.pages.append(response.status_code)
            if response.status_code != 200:
                return True  # a refused login: the app's sign-in times out
        return True
