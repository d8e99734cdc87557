"""Who is at the workstation: sign-in when it is needed, auto-lock when the reader leaves.

- At start, an OpenID Connect profile without a stored sign-in asks for one.
- When a sign-in is lost while working (the refresh token was revoked or expired),
  the archive calls stop with ``SignInRequired`` and the window asks once; after the
  new sign-in the outbox sends what waited and the worklist refreshes.
- After ``auto_lock_minutes`` idle the windows are hidden behind the lock window
  (``ui.auto_lock``); unlocking needs the credentials. Lock and unlock are audited.
"""

from __future__ import annotations

import logging
import time
import webbrowser
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QKeySequence

from app.audit import EventKind, Outcome
from app.errors import CompanionError
from app.settings import ConnectionProfile, Settings
from ui.actions import window_action
from ui.auto_lock import IdleWatcher, LockWindow, lock_event, password_matches, unlock_method
from ui.sign_in import SignInDialog
from ui.workstation import Workstation

log = logging.getLogger(__name__)


class SessionGuard(QObject):
    """Sign-in prompts and the auto-lock for one workstation."""

    sig_lost_sign_in = Signal(str)  # from a worker thread: the reason, queued to Qt
    sig_locked = Signal()
    sig_unlocked = Signal()

    def __init__(
        self,
        workstation: Workstation,
        settings: Settings,
        profile: ConnectionProfile | None,
        *,
        open_browser: Callable[[str], object] = webbrowser.open,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(workstation)
        self.workstation = workstation
        self.profile = profile
        self.open_browser = open_browser
        self.locked = False
        self.lock_window: LockWindow | None = None
        self._mode_before_lock = "full"
        self._dialog: SignInDialog | None = None
        self.watcher = IdleWatcher(settings.auto_lock_minutes * 60, clock=clock, parent=self)
        self.watcher.sig_idle.connect(self.lock)
        self.sig_lost_sign_in.connect(self._on_lost_sign_in)
        workstation.window.sig_closed.connect(self._on_closed)
        for widget in (workstation.window, workstation.sidecar):
            window_action(widget, "Lock now", QKeySequence("Ctrl+L"), self.lock)
        if profile is not None and profile.auth == "oidc":
            from app.security.signin import tokens_for

            # Called on the thread whose request found the sign-in gone: hop to Qt.
            tokens_for(profile).on_sign_in_required = lambda _profile: self.sig_lost_sign_in.emit(
                ""
            )

    # -- audit -------------------------------------------------------------------------
    def _audit(self, kind: EventKind, outcome: Outcome = Outcome.SUCCESS) -> None:
        services = self.workstation.window.review_services
        if services is None:
            return
        try:
            services.audit.append(lock_event(kind, services.reader.user_id, outcome))
        except CompanionError as exc:
            self.workstation.window.ops.show_error(f"The audit trail could not be written: {exc}")

    def _audit_sink(self) -> Callable[..., object] | None:
        services = self.workstation.window.review_services
        return services.audit.append if services is not None else None

    # -- sign-in -----------------------------------------------------------------------
    def sign_in_at_start(self) -> None:
        """Ask for a sign-in now if the profile needs one (non-blocking dialog)."""
        if self.profile is None or self.profile.auth != "oidc":
            return
        from app.security.signin import needs_sign_in

        if needs_sign_in(self.profile):
            self.ask_sign_in("")

    def ask_sign_in(self, reason: str, on_done: Callable[[bool], None] | None = None) -> None:
        if self.profile is None or self._dialog is not None:
            return
        parent = self.lock_window if self.locked else self.workstation.front
        dialog = SignInDialog(
            self.profile,
            reason=reason,
            open_browser=self.open_browser,
            audit=self._audit_sink(),
            parent=parent,
        )
        self._dialog = dialog

        def finished(code: int) -> None:
            self._dialog = None
            ok = dialog.result_ is not None
            if ok:
                self._after_sign_in()
            if on_done is not None:
                on_done(ok)

        dialog.finished.connect(finished)
        dialog.start()
        dialog.open()

    def _after_sign_in(self) -> None:
        window = self.workstation.window
        services = window.review_services
        if services is not None:
            services.resume_senders()
        window.banner.hide()
        window.request_refresh()

    def _on_lost_sign_in(self, why: str) -> None:
        reason = "Your sign-in has ended" + (f" ({why})" if why else "") + ": sign in again."
        self.workstation.window.statusBar().showMessage(reason, 30_000)
        if not self.locked:
            self.ask_sign_in(reason)

    # -- lock --------------------------------------------------------------------------
    def lock(self) -> None:
        """Hide every window with patient data behind the lock window (Ctrl+L, or idle)."""
        if self.locked:
            return
        self.locked = True
        ws = self.workstation
        self._mode_before_lock = ws.mode
        ws.locked = True
        how, needs_password = unlock_method(self.profile)
        self.lock_window = LockWindow(how, needs_password=needs_password)
        self.lock_window.sig_unlock_requested.connect(self._unlock_requested)
        ws.window.hide()
        ws.sidecar.hide()
        self.lock_window.show()
        self.lock_window.raise_()
        self.lock_window.activateWindow()
        self._audit(EventKind.LOCK)
        self.sig_locked.emit()

    def _unlock_requested(self, password: str) -> None:
        profile = self.profile
        if profile is None or profile.auth in ("none", "bearer"):
            self.unlock()
        elif profile.auth == "basic":
            if password_matches(profile, password):
                self.unlock()
            else:
                self._audit(EventKind.UNLOCK, Outcome.MINOR_FAILURE)
                if self.lock_window is not None:
                    self.lock_window.show_problem("That password is not the right one.")
        else:
            self.ask_sign_in(
                "Sign in again to unlock.", lambda ok: self.unlock() if ok else None
            )

    def unlock(self) -> None:
        if not self.locked:
            return
        self.locked = False
        ws = self.workstation
        ws.locked = False
        if self.lock_window is not None:
            self.lock_window.hide()
            self.lock_window.deleteLater()
            self.lock_window = None
        if self._mode_before_lock == "sidecar":
            ws.show_sidecar()
        else:
            ws.show_full()
        self.watcher.resume()
        self._audit(EventKind.UNLOCK)
        self.sig_unlocked.emit()

    def _on_closed(self) -> None:
        self.watcher.stop()
        if self.profile is not None and self.profile.auth == "oidc":
            from app.security.signin import tokens_for

            # The token state outlives the window: it must not keep calling into it.
            tokens_for(self.profile).on_sign_in_required = None
        if self.lock_window is not None:
            self.lock_window.close()
            self.lock_window.deleteLater()
            self.lock_window = None
