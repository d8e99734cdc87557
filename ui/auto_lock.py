"""Auto-lock: after an idle period the companion hides patient data until the reader
signs in again.

The reader walks away from a reading-room workstation; after ``auto_lock_minutes``
without a key press or mouse action the windows holding patient data (the main
window and the sidecar) are hidden behind a lock window that shows none. The outbox
keeps sending (its thread does not care). Unlocking needs the reader's credentials:
a new browser sign-in for an OpenID Connect profile, the profile's password for
HTTP basic. Where the connection has no sign-in (the offline demo, a server without
auth, a fixed bearer token) there is nobody to re-authenticate against: the lock
window says so and unlocks with a click. Lock and unlock go into the audit trail.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

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
from app.errors import CompanionError
from app.security.http_auth import keyring_key
from app.security.keyring_store import get_secret
from app.settings import ConnectionProfile
from ui import theme

CHECK_MS = 5_000
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


class LockWindow(QWidget):
    """What the screen shows while locked: no patient, no study, only how to unlock."""

    sig_unlock_requested = Signal(str)  # the password typed (basic), else ""

    def __init__(self, how: str, *, needs_password: bool) -> None:
        super().__init__(None, Qt.WindowType.Window)
        self.setWindowTitle("AI Review Companion — locked")
        self.setObjectName("lockWindow")
        title = QLabel("AI Review Companion is locked", self)
        title.setStyleSheet("font-size: 18pt; font-weight: 600;")
        self.how = QLabel(how, self)
        self.how.setWordWrap(True)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("Password")
        self.password.setVisible(needs_password)
        self.password.returnPressed.connect(self._unlock)
        self.problem = QLabel("", self)
        self.problem.setStyleSheet(f"color: {theme.URGENT};")
        self.unlock_button = QPushButton("Unlock", self)
        self.unlock_button.setDefault(True)
        self.unlock_button.clicked.connect(self._unlock)
        note = QLabel(
            "AI results keep arriving and reviews already submitted keep being sent while "
            "the companion is locked.",
            self,
        )
        note.setWordWrap(True)
        note.setStyleSheet(f"color: {theme.TEXT_MUTED};")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 40, 40, 40)
        layout.setSpacing(14)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(self.how)
        layout.addWidget(self.password)
        layout.addWidget(self.unlock_button)
        layout.addWidget(self.problem)
        layout.addWidget(note)
        layout.addStretch(2)
        self.resize(560, 420)

    def _unlock(self) -> None:
        self.sig_unlock_requested.emit(self.password.text())

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.password.clear()


def unlock_method(profile: ConnectionProfile | None) -> tuple[str, bool]:
    """What the lock window tells the reader, and whether it asks for a password."""
    if profile is None or profile.auth in ("none", "bearer"):
        why = (
            "This connection has no sign-in, so unlocking cannot ask who you are. "
            "Configure OpenID Connect or a password for the archive to protect the screen."
        )
        return why, False
    if profile.auth == "basic":
        return f"Enter the password of {profile.username} for {profile.name} to unlock.", True
    return f"Unlocking opens your browser to sign in to {profile.name} again.", False


def password_matches(profile: ConnectionProfile, typed: str) -> bool:
    """The typed password against the one in the OS keyring (constant-time)."""
    try:
        stored = get_secret(keyring_key(profile), purpose=f"the password of {profile.name!r}")
    except CompanionError:
        return False
    return bool(stored) and hmac.compare_digest(stored.encode(), typed.encode())


def lock_event(kind: EventKind, user: str, outcome: Outcome = Outcome.SUCCESS) -> AuditEvent:
    return AuditEvent(kind=kind, user=user, outcome=outcome, details={"reason": "idle"})
