"""Signing in through the system browser, from the window (OpenID Connect, RFC 8252).

``app.security.signin.sign_in`` does the work and blocks until the browser comes
back to the loopback redirect; this dialog runs it on a worker thread, says what is
happening, lets the reader open the page again or cancel, and shows why a sign-in
failed. Nothing here touches a token.
"""

from __future__ import annotations

import logging
import threading
import webbrowser
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

from app.audit import AuditEvent
from app.errors import CompanionError
from app.security.signin import SignInResult, sign_in
from app.settings import ConnectionProfile
from ui import theme

POLL_MS = 100
log = logging.getLogger(__name__)


class SignInDialog(QDialog):
    """Waits for the browser sign-in of one profile; ``result_`` holds who signed in."""

    def __init__(
        self,
        profile: ConnectionProfile,
        *,
        reason: str = "",
        open_browser: Callable[[str], object] = webbrowser.open,
        audit: Callable[[AuditEvent], object] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Sign in — {profile.name}")
        self.setMinimumWidth(460)
        self.profile = profile
        self.result_: SignInResult | None = None
        self.error = ""
        self._open_browser = open_browser
        self._audit = audit
        self._last_url = ""
        self._cancelled = threading.Event()
        self._done = threading.Event()
        self._outcome: SignInResult | CompanionError | None = None

        intro = QLabel(
            (f"{reason}\n\n" if reason else "")
            + f"Sign in to {profile.name} with your hospital account. Your web browser opens "
            "the sign-in page; come back here when it says you are signed in.",
            self,
        )
        intro.setWordWrap(True)
        self.status = QLabel("Opening the sign-in page in your browser…", self)
        self.status.setWordWrap(True)
        self.status.setObjectName("signInStatus")
        buttons = QDialogButtonBox(self)
        self.again = QPushButton("Open the page again", self)
        self.again.clicked.connect(self._reopen)
        self.retry = QPushButton("Try again", self)
        self.retry.clicked.connect(self.start)
        self.retry.hide()
        buttons.addButton(self.again, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.retry, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._check)

    def start(self) -> None:
        """Begin (or begin again) the browser sign-in on a worker thread."""
        self.retry.hide()
        self.again.setEnabled(True)
        self.error = ""
        self._cancelled = threading.Event()
        self._done.clear()
        self._set_status("Waiting for you to sign in in your web browser…")
        cancelled = self._cancelled
        threading.Thread(
            target=self._run, args=(cancelled,), name="sign-in", daemon=True
        ).start()
        self._timer.start(POLL_MS)

    def exec(self) -> int:  # type: ignore[override]
        self.start()
        return super().exec()

    def reject(self) -> None:
        self._cancelled.set()
        self._timer.stop()
        super().reject()

    # -- worker side: no Qt here ---------------------------------------------------------
    def _run(self, cancelled: threading.Event) -> None:
        try:
            outcome: SignInResult | CompanionError = sign_in(
                self.profile, open_browser=self._remember_and_open, cancelled=cancelled,
                audit=self._audit,
            )
        except CompanionError as exc:
            outcome = exc
        except Exception as exc:  # noqa: BLE001 - e.g. the audit log closed as a cancelled sign-in ended
            log.warning("the sign-in ended with %s", type(exc).__name__)
            outcome = CompanionError(f"the sign-in failed: {type(exc).__name__}")
        if not cancelled.is_set():
            self._outcome = outcome
            self._done.set()

    def _remember_and_open(self, url: str) -> object:
        self._last_url = url
        return self._open_browser(url)

    # -- Qt side -------------------------------------------------------------------------
    def _check(self) -> None:
        if not self._done.is_set():
            return
        self._timer.stop()
        outcome = self._outcome
        if isinstance(outcome, SignInResult):
            self.result_ = outcome
            self.accept()
            return
        self.error = str(outcome)
        self._set_status(f"Not signed in: {outcome}", warn=True)
        self.again.setEnabled(False)
        self.retry.show()

    def _reopen(self) -> None:
        if self._last_url:
            self._open_browser(self._last_url)

    def _set_status(self, text: str, *, warn: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {theme.URGENT};" if warn else "")
