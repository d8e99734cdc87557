"""Auto-lock (with a simulated clock) and sign-in from the window.

Real parts: the windows, the audit log, a real Orthanc the outbox sends to while the
screen is locked, and the real OpenID provider (npm ``oidc-provider``, started here
with node on loopback; the test plays the browser's part against its real login and
consent pages, as tests/security does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.audit import EventKind
from app.delivery.outbox import OutgoingObject
from app.security.http_auth import KEYRING_SERVICE, keyring_key
from app.settings import ConnectionProfile, Settings
from tests.support import dicom_data, oidc_provider, orthanc
from tests.ui.qt_helpers import LoopDriver
from ui.session_guard import SessionGuard
from ui.sign_in import SignInDialog
from ui.workstation import Workstation

pytestmark = pytest.mark.gui

IDLE_MINUTES = 15


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _audit_kinds(station: Workstation) -> list[EventKind]:
    services = station.window.review_services
    assert services is not None
    return [e.event.kind for e in services.audit.entries()]


def test_idle_locks_hides_patient_data_keeps_sending_and_unlocks(
    station: Workstation,
    loop: LoopDriver,
    qtbot: QtBot,
    empty_orthanc: orthanc.OrthancServer,
    tmp_path: Path,
) -> None:
    window = station.window
    assert loop.run(window.refresh()) is not None
    clock = Clock()
    guard = SessionGuard(station, Settings(auto_lock_minutes=IDLE_MINUTES), None, clock=clock)
    clock.now += IDLE_MINUTES * 60 - 5
    guard.watcher.check()
    assert not guard.locked  # not yet
    clock.now += 10
    guard.watcher.check()
    assert guard.locked and guard.lock_window is not None
    qtbot.waitExposed(guard.lock_window)
    assert not window.isVisible() and not station.sidecar.isVisible()
    shown = " ".join(label.text() for label in guard.lock_window.findChildren(QLabel))
    assert "locked" in shown and "no sign-in" in shown and "reader ID" in shown
    assert guard.lock_window.password.isVisible()
    patient = window.worklist.items[0].study.patient_name.split("^")[0]  # type: ignore[union-attr]
    assert patient and patient not in shown
    assert guard.lock_window.grab().save(str(tmp_path / "locked.png"))
    station.show_full()  # a notification click or a later launch must not reveal it
    assert not window.isVisible()
    assert EventKind.LOCK in _audit_kinds(station)
    services = window.review_services
    assert services is not None
    locks = [e.event for e in services.audit.entries() if e.event.kind is EventKind.LOCK]
    assert locks[-1].details == {"reason": "idle"}

    # The outbox keeps sending while locked.
    services = window.review_services
    assert services is not None
    target = open_dicomweb(empty_orthanc.dicomweb_url)
    sender = services.sender(target)
    sender.start()
    try:
        image = dicom_data.image("locked", prefix="lock")
        services.outbox.submit([OutgoingObject(image)], destination=services.destination)
        sender.wake()
        qtbot.waitUntil(lambda: not services.outbox.pending(), timeout=30_000)
        assert target.search_instances(image.StudyInstanceUID)
    finally:
        sender.stop()

    # No sign-in here (the offline demo): a click is not enough, the reader's ID is.
    guard.lock_window.unlock_button.click()
    assert guard.locked and "not the reader" in guard.lock_window.problem.text()
    guard.lock_window.password.setText("dr.side")
    guard.lock_window.unlock_button.click()
    assert not guard.locked and window.isVisible()
    assert _audit_kinds(station).count(EventKind.UNLOCK) == 2  # the refused try too
    # Input resets the idle time.
    clock.now += IDLE_MINUTES * 60 - 1
    guard.watcher.check()
    assert not guard.locked


def test_password_unlock_for_a_basic_profile(
    station: Workstation, qtbot: QtBot, tmp_path: Path
) -> None:
    profile = ConnectionProfile(name="pacs", url="https://pacs.example/dicom-web", auth="basic",
                                username="dr.side")
    keyring.set_password(KEYRING_SERVICE, keyring_key(profile), "s3cret pass")
    guard = SessionGuard(station, Settings(auto_lock_minutes=1), profile)
    guard.lock()
    lock = guard.lock_window
    assert lock is not None and lock.password.isVisible()
    lock.password.setText("wrong")
    lock.unlock_button.click()
    assert guard.locked and "not the right one" in lock.problem.text()
    assert lock.password.text() == ""
    lock.password.setText("s3cret pass")
    lock.unlock_button.click()
    assert not guard.locked
    kinds = _audit_kinds(station)
    assert kinds.count(EventKind.UNLOCK) == 2  # the failed try is audited too


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[oidc_provider.OidcProvider]:
    why = oidc_provider.available()
    if why:
        pytest.fail(f"the real OpenID provider cannot run: {why} (installer/dev.sh test)")
    server = oidc_provider.start_provider(tmp_path_factory.mktemp("oidc"))
    try:
        yield server
    finally:
        server.stop()


def oidc_profile(provider: oidc_provider.OidcProvider) -> ConnectionProfile:
    """A profile that signs in at the test's provider (the archive URL is never reached)."""
    return ConnectionProfile(
        name="pacs",
        url="https://localhost:1/dicom-web",
        auth="oidc",
        oidc_issuer=provider.issuer,
        oidc_client_id=oidc_provider.CLIENT_ID,
        oidc_scopes="openid profile",
    )


def test_sign_in_dialog_through_the_real_provider(
    station: Workstation,
    provider: oidc_provider.OidcProvider,
    loop: LoopDriver,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    profile = oidc_profile(provider)
    from app.security.signin import forget_all_token_states, needs_sign_in

    forget_all_token_states()
    assert needs_sign_in(profile)
    wrong = oidc_provider.Browser(password="not it")
    dialog = SignInDialog(profile, open_browser=wrong.open, parent=station.window)
    dialog.start()
    dialog.show()
    qtbot.waitExposed(dialog)
    shot = tmp_path / "sign-in.png"
    QApplication.processEvents()
    assert dialog.grab().save(str(shot))
    dialog.reject()  # the reader cancels a sign-in that does not come back
    assert dialog.result_ is None

    browser = oidc_provider.Browser()
    dialog = SignInDialog(profile, open_browser=browser.open, parent=station.window)
    dialog.start()
    loop.until(lambda: dialog.result_ is not None, 30)
    assert dialog.result_.user == oidc_provider.USER
    assert browser.landed, "the browser reached the loopback redirect"
    assert not needs_sign_in(profile)

    # Lock, then unlock by signing in again.
    guard = SessionGuard(station, Settings(auto_lock_minutes=1), profile,
                         open_browser=oidc_provider.Browser().open)
    guard.lock()
    assert guard.lock_window is not None
    assert station.window.worklist is None
    guard.lock_window.unlock_button.click()
    loop.until(lambda: not guard.locked, 30)
    # After a sign-in the worklist refreshes (what waited for the sign-in goes out too).
    loop.until(lambda: station.window.worklist is not None, 30)


def test_sign_out_revokes_hides_patient_data_and_asks_for_a_sign_in(
    station: Workstation,
    provider: oidc_provider.OidcProvider,
    loop: LoopDriver,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    from app.security.signin import forget_all_token_states, needs_sign_in, sign_in, tokens_for

    profile = oidc_profile(provider)
    forget_all_token_states()
    services = station.window.review_services
    assert services is not None
    sign_in(
        profile,
        open_browser=oidc_provider.Browser().open,
        timeout_s=30,
        audit=services.audit.append,
    )
    access = tokens_for(profile).access_token()
    window = station.window
    assert loop.run(window.refresh()) is not None
    uid = window.worklist.items[0].study.study_uid  # type: ignore[union-attr]
    assert loop.run(window.open_study(uid))
    # The reader's browser does not finish the next sign-in: the prompt stays up.
    guard = SessionGuard(
        station, Settings(), profile, open_browser=oidc_provider.Browser(password="not it").open
    )
    assert all(a.isEnabled() for a in guard.sign_out_actions)
    assert "Sign out" in [a.text() for a in guard.reader_button.menu().actions()]

    guard.sign_out_actions[0].trigger()  # Ctrl+Shift+L in the main window
    assert guard.locked and guard.lock_window is not None
    assert not window.isVisible() and not station.sidecar.isVisible()
    assert window.study_view.study_uid is None  # the study is closed, not only hidden
    shown = window_text(guard.lock_window)
    assert "signed out" in shown and "wait in the outbox" in shown
    assert guard.lock_window.unlock_button.text() == "Sign in"
    loop.until(lambda: guard._dialog is not None and guard._dialog.isVisible(), 15)
    dialog = guard._dialog
    assert "You signed out" in window_text(dialog)
    assert needs_sign_in(profile)  # the refresh token left the keyring
    assert not provider.userinfo_ok(access)  # revoked at the provider
    kinds = [(e.event.kind, e.event.details.get("reason")) for e in services.audit.entries()]
    assert (EventKind.LOCK, "sign-out") in kinds
    sign_out_entry = next(
        e.event for e in services.audit.entries() if e.event.kind is EventKind.SIGN_OUT
    )
    assert sign_out_entry.details["revoked"] is True
    guard.lock_window.grab().save(str(tmp_path / "signed-out.png"))
    dialog.grab().save(str(tmp_path / "sign-in-after-sign-out.png"))
    dialog.reject()
    qtbot.waitUntil(lambda: guard._dialog is None, timeout=5000)
    assert guard.locked  # no sign-in, no patient data

    retried: list[bool] = []  # a FHIRcast subscriber that stopped at the hub's 401

    class Subscriber:
        def retry(self) -> None:
            retried.append(True)

    class Follower:
        subscriber = Subscriber()

    station.follower = Follower()  # type: ignore[assignment]
    guard.open_browser = oidc_provider.Browser().open  # now the reader signs in
    guard.lock_window.unlock_button.click()
    loop.until(lambda: not guard.locked, 30)
    assert window.isVisible() and not needs_sign_in(profile)
    assert retried == [True]  # FHIRcast tries again with the new sign-in
    station.follower = None


def test_a_lost_sign_in_asks_once(
    station: Workstation, provider: oidc_provider.OidcProvider, qtbot: QtBot
) -> None:
    profile = oidc_profile(provider)
    never = oidc_provider.Browser(password="not it")  # the reader has not signed in yet
    guard = SessionGuard(station, Settings(), profile, open_browser=never.open)
    from app.security.signin import tokens_for

    hook = tokens_for(profile).on_sign_in_required
    assert hook is not None
    hook(profile)  # what the token state calls from a worker thread
    hook(profile)  # a second request that found it gone: still one prompt
    qtbot.waitUntil(lambda: guard._dialog is not None and guard._dialog.isVisible(), timeout=5000)
    dialog = guard._dialog
    assert "sign-in has ended" in window_text(dialog)
    assert "sign-in has ended" in station.window.statusBar().currentMessage()
    dialog.reject()
    qtbot.waitUntil(lambda: guard._dialog is None, timeout=5000)


def window_text(widget: QApplication | object) -> str:
    return " ".join(label.text() for label in widget.findChildren(QLabel))  # type: ignore[attr-defined]
