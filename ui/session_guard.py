"""Who is at the workstation: sign-in when it is needed, auto-lock when the reader leaves.

- At start, an OpenID Connect profile without a stored sign-in asks for one.
- When a sign-in is lost while working (the refresh token was revoked or expired),
  the archive calls stop with ``SignInRequired`` and the window asks once; after the
  new sign-in the outbox sends what waited and the worklist refreshes.
- After ``auto_lock_minutes`` idle (or Ctrl+L) the windows are hidden behind the lock
  window (``ui.auto_lock``); unlocking needs the credentials (the rule per auth kind is
  in ``ui.auto_lock``). Lock and unlock are audited.
- "Sign out" (Ctrl+Shift+L, the reader menu in the status bar, the tray menu) ends an
  OpenID Connect sign-in with ``app.security.signin.sign_out`` (revokes, forgets the
  tokens, audits), closes the open study, hides the windows like a lock and asks for a
  new sign-in. Other auth kinds have no sign-in to end: the action is off and says so.
"""

from __future__ import annotations

import logging
import math
import time
import webbrowser
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolButton

from app.audit import EventKind, Outcome
from app.domain import Reader
from app.errors import CompanionError
from app.review.reader import current_reader
from app.settings import ConnectionProfile, Settings
from ui.actions import window_action
from ui.async_ops import OpFailed
from ui.auto_lock import (
    MAX_TRIES,
    SIGNED_OUT_NOTE,
    WAIT_AFTER_TRIES_S,
    IdleWatcher,
    LockWindow,
    lock_event,
    password_matches,
    reader_matches,
    signed_out_rule,
    token_matches,
    unlock_method,
)
from ui.sign_in import SignInDialog
from ui.workstation import Workstation

log = logging.getLogger(__name__)
LOCK_KEY = QKeySequence("Ctrl+L")
SIGN_OUT_KEY = QKeySequence("Ctrl+Shift+L")


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
        self.settings = settings
        self.profile = profile
        self.open_browser = open_browser
        self.clock = clock
        self.locked = False
        self.lock_window: LockWindow | None = None
        self._mode_before_lock = "full"
        self._dialog: SignInDialog | None = None
        self._wrong_tries = 0
        self._wait_until = 0.0
        self.signing_out = False
        self.watcher = IdleWatcher(settings.auto_lock_minutes * 60, clock=clock, parent=self)
        self.watcher.sig_idle.connect(lambda: self.lock("idle"))
        self.sig_lost_sign_in.connect(self._on_lost_sign_in)
        workstation.window.sig_closed.connect(self._on_closed)
        self.lock_actions: list[QAction] = []
        self.sign_out_actions: list[QAction] = []
        for widget in (workstation.window, workstation.sidecar):
            self.lock_actions.append(
                window_action(widget, "Lock now", LOCK_KEY, lambda _checked=False: self.lock())
            )
            self.sign_out_actions.append(
                window_action(widget, "Sign out", SIGN_OUT_KEY, lambda _c=False: self.sign_out())
            )
        can_sign_out = profile is not None and profile.auth == "oidc"
        for action in self.sign_out_actions:
            action.setEnabled(can_sign_out)
            action.setToolTip(
                "End the sign-in: revoke it, hide patient data and ask for a new sign-in"
                if can_sign_out
                else "This connection has no sign-in to end; Lock now (Ctrl+L) hides the screen"
            )
        self.reader_button = self._reader_menu()
        if profile is not None and profile.auth == "oidc":
            from app.security.signin import tokens_for

            # Called on the thread whose request found the sign-in gone: hop to Qt.
            tokens_for(profile).on_sign_in_required = lambda _profile: self.sig_lost_sign_in.emit(
                ""
            )

    def _reader_menu(self) -> QToolButton:
        """The reader's name in the status bar, with Lock now and Sign out; the tray's
        menu gets both too (the sidecar has no status bar)."""
        window = self.workstation.window
        button = QToolButton(window)
        button.setObjectName("readerMenu")
        button.setText(f"{self.reader.user_id} ▾")
        button.setAutoRaise(True)
        # The style's own arrow overlaps the text in a status bar; the text carries one.
        button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        button.setToolTip("Lock the screen or sign out")
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(button)
        menu.addAction(self.lock_actions[0])
        menu.addAction(self.sign_out_actions[0])
        button.setMenu(menu)
        window.statusBar().addPermanentWidget(button)
        tray_menu = self.workstation.tray.icon.contextMenu()
        if tray_menu is not None:
            quit_action = tray_menu.actions()[-1] if tray_menu.actions() else None
            tray_menu.insertActions(quit_action, [self.lock_actions[0], self.sign_out_actions[0]])  # type: ignore[arg-type]
            tray_menu.insertSeparator(quit_action)  # type: ignore[arg-type]
        return button

    @property
    def reader(self) -> Reader:
        """Who reviews here (the review services' reader, else the settings')."""
        services = self.workstation.window.review_services
        return services.reader if services is not None else current_reader(self.settings)

    # -- audit -------------------------------------------------------------------------
    def _audit(
        self,
        kind: EventKind,
        outcome: Outcome = Outcome.SUCCESS,
        *,
        reason: str = "",
        method: str = "",
    ) -> None:
        services = self.workstation.window.review_services
        if services is None:
            return
        event = lock_event(kind, services.reader.user_id, outcome, reason=reason, method=method)
        try:
            services.audit.append(event)
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
        # FHIRcast stops retrying after a 401 from the hub ("sign in again"): it may now.
        subscriber = getattr(self.workstation.follower, "subscriber", None)
        retry = getattr(subscriber, "retry", None)
        if callable(retry):
            retry()

    def _on_lost_sign_in(self, why: str) -> None:
        reason = "Your sign-in has ended" + (f" ({why})" if why else "") + ": sign in again."
        self.workstation.window.statusBar().showMessage(reason, 30_000)
        if not self.locked:
            self.ask_sign_in(reason)

    # -- lock --------------------------------------------------------------------------
    def lock(self, reason: str = "") -> None:
        """Hide every window with patient data behind the lock window (Ctrl+L, or idle)."""
        if self.locked:
            return
        reason = reason or "manual"  # Ctrl+L or the menu
        self.locked = True
        ws = self.workstation
        self._mode_before_lock = ws.mode
        ws.locked = True
        if reason == "sign-out" and self.profile is not None:
            self.lock_window = LockWindow(
                signed_out_rule(self.profile), title="You are signed out", note=SIGNED_OUT_NOTE
            )
        else:
            self.lock_window = LockWindow(unlock_method(self.profile))
        self.lock_window.sig_unlock_requested.connect(self._unlock_requested)
        ws.window.hide()
        ws.sidecar.hide()
        self.lock_window.show()
        self.lock_window.raise_()
        self.lock_window.activateWindow()
        self._audit(EventKind.LOCK, reason=reason)
        self.sig_locked.emit()

    def _unlock_requested(self, typed: str) -> None:
        profile = self.profile
        rule = unlock_method(profile)
        if rule.method == "sign-in":
            self.ask_sign_in(
                "Sign in again to unlock.",
                lambda ok: self.unlock(method=rule.method) if ok else None,
            )
            return
        now = self.clock()
        if now < self._wait_until:
            self._say(f"Too many wrong tries: wait {math.ceil(self._wait_until - now)} s.")
            return
        if rule.method == "reader-name":
            ok = reader_matches(self.reader, typed)
            problem = "That is not the reader who was working here."
        elif rule.method == "token":
            assert profile is not None
            ok = token_matches(profile, typed)
            problem = "That is not the token of this connection."
        else:
            assert profile is not None
            ok = password_matches(profile, typed)
            problem = "That password is not the right one."
        if ok:
            self._wrong_tries = 0
            self.unlock(method=rule.method)
            return
        self._audit(EventKind.UNLOCK, Outcome.MINOR_FAILURE, method=rule.method)
        self._wrong_tries += 1
        if self._wrong_tries >= MAX_TRIES:
            self._wrong_tries = 0
            self._wait_until = now + WAIT_AFTER_TRIES_S
            problem += f" Too many wrong tries: wait {WAIT_AFTER_TRIES_S:.0f} s."
        self._say(problem)

    def _say(self, problem: str) -> None:
        if self.lock_window is not None:
            self.lock_window.show_problem(problem)

    def unlock(self, method: str = "") -> None:
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
        self._audit(EventKind.UNLOCK, method=method or unlock_method(self.profile).method)
        self.sig_unlocked.emit()

    # -- sign-out ----------------------------------------------------------------------
    def sign_out(self) -> None:
        """End the OpenID Connect sign-in: close the study, hide the windows like a lock,
        revoke and forget the tokens (audited), then ask for a new sign-in."""
        profile = self.profile
        window = self.workstation.window
        if profile is None or profile.auth != "oidc":
            window.statusBar().showMessage(
                "This connection has no sign-in to end; Lock now (Ctrl+L) hides the screen.",
                15_000,
            )
            return
        if self.signing_out:
            return
        self.signing_out = True
        window.close_study("Signed out")
        self.lock(reason="sign-out")
        window.ops.start(self._sign_out(profile))

    async def _sign_out(self, profile: ConnectionProfile) -> None:
        from app.security.signin import sign_out

        audit = self._audit_sink()
        try:
            await self.workstation.window.ops.run(
                "Signing out", lambda _report: sign_out(profile, audit=audit)
            )
        except OpFailed:
            pass  # shown; the tokens are forgotten here whatever the provider said
        finally:
            self.signing_out = False
        if self.locked:
            self.ask_sign_in(
                "You signed out. Sign in to continue.",
                lambda ok: self.unlock(method="sign-in") if ok else None,
            )

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
