"""Auto-lock: after an idle period the companion hides patient data until the reader
comes back and unlocks it.

The reader walks away from a reading-room workstation; after ``auto_lock_minutes``
without a key press or mouse action the windows holding patient data (the main
window and the sidecar) are hidden behind a lock window that shows none. The outbox
keeps sending (its thread does not care). What unlocks depends on the profile's auth:

- ``oidc``: a new browser sign-in;
- ``basic``: the profile's password (checked against the keyring);
- ``bearer``: the profile's token, pasted (checked against the keyring);
- ``none`` (the offline demo, an archive without auth): there is nobody to
  authenticate against, so the reader types their reader ID or name, a deliberate
  act that keeps a passer-by's stray click from unlocking. It is not authentication,
  and the lock window says so.

Typed checks are constant-time; after ``MAX_TRIES`` wrong ones in a row the window
refuses tries for ``WAIT_AFTER_TRIES_S``. Lock and every unlock try are audited.
"""

from __future__ import annotations

import hmac
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.audit import AuditEvent, EventKind, Outcome
from app.domain import Reader
from app.errors import CompanionError
from app.security.http_auth import keyring_key
from app.security.keyring_store import get_secret
from app.settings import ConnectionProfile
from ui import theme

CHECK_MS = 5_000
MAX_TRIES = 5  # wrong unlock tries in a row before the window makes the reader wait
WAIT_AFTER_TRIES_S = 30.0
_ACTIVITY = {
    QEvent.Type.KeyPress,
    QEvent.Type.MouseButtonPress,
    QEvent.Type.MouseMove,
    QEvent.Type.Wheel,
    QEvent.Type.TouchBegin,
}


class IdleWatcher(QObject):
    """Emits ``sig_idle`` once the application has seen no input for ``seconds``."""

    sig_idle = Signal()

    def __init__(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.seconds = seconds
        self.clock = clock
        self.last_input = clock()
        self.paused = False
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        if seconds > 0:
            self.timer.start(CHECK_MS)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _ACTIVITY:
            self.last_input = self.clock()
        return False

    def check(self) -> None:
        """Lock time? (Also called by the timer.)"""
        if self.paused or self.seconds <= 0:
            return
        if self.clock() - self.last_input >= self.seconds:
            self.paused = True
            self.sig_idle.emit()

    def resume(self) -> None:
        self.last_input = self.clock()
        self.paused = False

    def stop(self) -> None:
        self.timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)


LOCKED_NOTE = (
    "AI results keep arriving and reviews already submitted keep being sent while "
    "the companion is locked."
)
SIGNED_OUT_NOTE = (
    "Reviews already submitted wait in the outbox and are sent once you have signed in again."
)


@dataclass(frozen=True)
class UnlockRule:
    """How one profile unlocks: what the lock window says and what it asks for."""

    method: str  # "reader-name" | "password" | "token" | "sign-in" (for the audit trail)
    how: str  # what the lock window tells the reader
    prompt: str = ""  # the typing field's placeholder; "" = no field
    secret: bool = False  # the field hides what is typed
    button: str = "Unlock"

    @property
    def typed(self) -> bool:
        return bool(self.prompt)


class LockWindow(QWidget):
    """What the screen shows while locked: no patient, no study, only how to unlock."""

    sig_unlock_requested = Signal(str)  # what was typed ("" when the rule asks for nothing)

    def __init__(
        self,
        rule: UnlockRule,
        *,
        title: str = "AI Review Companion is locked",
        note: str = LOCKED_NOTE,
    ) -> None:
        super().__init__(None, Qt.WindowType.Window)
        self.rule = rule
        self.setWindowTitle("AI Review Companion — locked")
        self.setObjectName("lockWindow")
        self.title = QLabel(title, self)
        self.title.setStyleSheet("font-size: 18pt; font-weight: 600;")
        self.title.setWordWrap(True)
        self.how = QLabel(rule.how, self)
        self.how.setWordWrap(True)
        self.password = QLineEdit(self)  # the one typing field, whatever the rule asks for
        if rule.secret:
            self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText(rule.prompt)
        self.password.setVisible(rule.typed)
        self.password.returnPressed.connect(self._unlock)
        self.problem = QLabel("", self)
        self.problem.setStyleSheet(f"color: {theme.URGENT};")
        self.problem.setWordWrap(True)
        self.unlock_button = QPushButton(rule.button, self)
        self.unlock_button.setDefault(True)
        self.unlock_button.clicked.connect(self._unlock)
        self.note = note_label = QLabel(note, self)
        note_label.setWordWrap(True)
        note_label.setStyleSheet(f"color: {theme.TEXT_MUTED};")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 40, 40, 40)
        layout.setSpacing(14)
        layout.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.how)
        layout.addWidget(self.password)
        layout.addWidget(self.unlock_button)
        layout.addWidget(self.problem)
        layout.addWidget(note_label)
        layout.addStretch(2)
        self.resize(560, 460)
        if rule.typed:
            self.password.setFocus()

    def _unlock(self) -> None:
        self.sig_unlock_requested.emit(self.password.text())

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.password.clear()


NO_SIGN_IN_NOTE = (
    "This connection has no sign-in, so there is nothing to check who you are against: "
    "typing your name only shows that you came back on purpose. Configure OpenID Connect "
    "or a password for the archive to protect the screen."
)


def unlock_method(profile: ConnectionProfile | None) -> UnlockRule:
    """How a profile unlocks (``None``: the offline demo, which has no sign-in either)."""
    if profile is None or profile.auth == "none":
        return UnlockRule(
            "reader-name",
            "Type your reader ID or your name to unlock.\n\n" + NO_SIGN_IN_NOTE,
            prompt="Reader ID or name",
        )
    if profile.auth == "basic":
        return UnlockRule(
            "password",
            f"Enter the password of {profile.username} for {profile.name} to unlock.",
            prompt="Password",
            secret=True,
        )
    if profile.auth == "bearer":
        return UnlockRule(
            "token",
            f"Paste the access token of {profile.name} (the one kept in this computer's "
            "keyring for it) to unlock.",
            prompt="Access token",
            secret=True,
        )
    return UnlockRule(
        "sign-in",
        f"Unlocking opens your browser to sign in to {profile.name} again.",
        button="Sign in to unlock",
    )


def signed_out_rule(profile: ConnectionProfile) -> UnlockRule:
    """The lock window after "Sign out": only a new sign-in opens it."""
    return UnlockRule(
        "sign-in",
        f"Sign in to {profile.name} to continue: your browser opens the sign-in page.",
        button="Sign in",
    )


def password_matches(profile: ConnectionProfile, typed: str) -> bool:
    """The typed password against the one in the OS keyring (constant-time)."""
    return _keyring_secret_matches(profile, typed, f"the password of {profile.name!r}")


def token_matches(profile: ConnectionProfile, typed: str) -> bool:
    """The pasted bearer token against the one in the OS keyring (constant-time); the
    white space a paste brings along at its ends is not part of it."""
    return _keyring_secret_matches(
        profile, typed.strip(), f"the bearer token of profile {profile.name!r}"
    )


def _keyring_secret_matches(profile: ConnectionProfile, typed: str, purpose: str) -> bool:
    try:
        stored = get_secret(keyring_key(profile), purpose=purpose)
    except CompanionError:
        return False
    return bool(stored) and bool(typed) and hmac.compare_digest(stored.encode(), typed.encode())


def _plain(text: str) -> str:
    """Letters and digits only, case-folded, accents removed ("Dr. Côté" -> "drcote")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed.casefold() if c.isalnum())


def reader_names(reader: Reader) -> set[str]:
    """What a reader may type to unlock a profile without sign-in (in ``_plain`` form):
    the reader ID, the family name, the name in either order (with or without middle
    names), or the initials ("AC", "AMC")."""
    family, _, rest = reader.name.partition("^")
    given = [p.strip() for p in rest.split("^")[:2] if p.strip()]  # given, middle
    forms = [
        [family],
        given[:1] + [family],
        [family] + given[:1],
        [*given, family],
        [family, *given],
    ]
    names = {_plain(reader.user_id), *(_plain(" ".join(form)) for form in forms)}
    for form in (given[:1] + [family], [*given, family]):
        initials = "".join(p[:1] for p in form if p.strip())
        if len(initials) >= 2:
            names.add(_plain(initials))
    return {n for n in names if n}


def reader_matches(reader: Reader, typed: str) -> bool:
    """Whether ``typed`` names the reader (see ``reader_names``); every candidate is
    compared, each in constant time."""
    plain = _plain(typed).encode()
    hits = [hmac.compare_digest(plain, name.encode()) for name in reader_names(reader)]
    return bool(plain) and any(hits)


def lock_event(
    kind: EventKind,
    user: str,
    outcome: Outcome = Outcome.SUCCESS,
    *,
    reason: str = "",
    method: str = "",
) -> AuditEvent:
    """A lock (``reason``: idle, manual, sign-out) or unlock try (``method``) entry."""
    details = ({"reason": reason} if reason else {}) | ({"method": method} if method else {})
    return AuditEvent(kind=kind, user=user, outcome=outcome, details=details)
