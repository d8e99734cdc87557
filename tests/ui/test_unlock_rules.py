"""What unlocks the auto-lock for each auth kind, wrong tries, and the window's keys.

The rules (ui/auto_lock.py): OpenID Connect signs in again, basic asks for the password,
bearer for the token (both checked against the keyring), and a connection with no
sign-in at all asks the reader to type their reader ID or name (a deliberate act, not
authentication: there is nothing to check it against). A simulated clock drives the
wait after too many wrong tries.
"""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QWidget
from pytestqt.qtbot import QtBot

from app.audit import EventKind, Outcome
from app.domain import Reader
from app.security.http_auth import KEYRING_SERVICE, keyring_key
from app.settings import ConnectionProfile, Settings
from ui.auto_lock import MAX_TRIES, WAIT_AFTER_TRIES_S, reader_matches, unlock_method
from ui.session_guard import SessionGuard
from ui.workstation import Workstation

pytestmark = pytest.mark.gui

TOKEN = "tok-7f3a9c0d5e1b4a2c8d6e0f1a2b3c4d5e"  # the bearer secret of these tests


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _unlocks(station: Workstation) -> list[tuple[Outcome, str]]:
    services = station.window.review_services
    assert services is not None
    return [
        (e.event.outcome, str(e.event.details.get("method")))
        for e in services.audit.entries()
        if e.event.kind is EventKind.UNLOCK
    ]


def _text(widget: QWidget) -> str:
    return " ".join(label.text() for label in widget.findChildren(QLabel))


def test_a_reader_is_named_by_id_name_or_initials() -> None:
    reader = Reader(user_id="dr.cote", name="Côté^Anne^Marie")
    for typed in ("dr.cote", "DR COTE", "Côté", "cote", "Anne Côté", "Côté, Anne", "AC", "a.c."):
        assert reader_matches(reader, typed), typed
    for typed in ("", "   ", "Anne", "dr", "other", "ACX", "dr.cotex"):
        assert not reader_matches(reader, typed), typed
    bare = Reader(user_id="jdoe", name="jdoe^")  # no name set: the account name only
    assert reader_matches(bare, "JDoe") and not reader_matches(bare, "j")


def test_bearer_unlock_needs_the_token(station: Workstation, tmp_path: Path) -> None:
    profile = ConnectionProfile(name="pacs", url="https://pacs.example/dicom-web", auth="bearer")
    keyring.set_password(KEYRING_SERVICE, keyring_key(profile), TOKEN)
    guard = SessionGuard(station, Settings(auto_lock_minutes=1), profile)
    guard.lock()
    lock = guard.lock_window
    assert lock is not None and lock.password.isVisible()
    assert lock.password.echoMode() == lock.password.EchoMode.Password
    assert "token" in _text(lock) and lock.password.placeholderText() == "Access token"
    lock.unlock_button.click()  # a bare click
    assert guard.locked and "not the token" in lock.problem.text()
    lock.password.setText(TOKEN[:-1])
    lock.unlock_button.click()
    assert guard.locked
    lock.password.setText(f"  {TOKEN}\n")  # pasted with white space around it
    lock.unlock_button.click()
    assert not guard.locked and station.window.isVisible()
    services = station.window.review_services
    assert services is not None
    lock_entry = next(e.event for e in services.audit.entries() if e.event.kind is EventKind.LOCK)
    assert lock_entry.details == {"reason": "manual"}  # guard.lock(): Ctrl+L or the menu
    assert _unlocks(station) == [
        (Outcome.MINOR_FAILURE, "token"),
        (Outcome.MINOR_FAILURE, "token"),
        (Outcome.SUCCESS, "token"),
    ]


def test_too_many_wrong_tries_make_the_reader_wait(
    station: Workstation, qtbot: QtBot, tmp_path: Path
) -> None:
    clock = Clock()
    guard = SessionGuard(station, Settings(auto_lock_minutes=1), None, clock=clock)
    guard.lock()
    lock = guard.lock_window
    assert lock is not None
    for _ in range(MAX_TRIES):
        lock.password.setText("someone else")
        lock.unlock_button.click()
    assert "wait 30 s" in lock.problem.text()
    qtbot.waitExposed(lock)
    QApplication.processEvents()
    assert lock.grab().save(str(tmp_path / "unlock-wrong-tries.png"))
    clock.now += WAIT_AFTER_TRIES_S - 1
    lock.password.setText("dr.side")  # the right reader, but still too early
    lock.unlock_button.click()
    assert guard.locked and "wait 1 s" in lock.problem.text()
    clock.now += 1
    lock.password.setText("SIDE")  # the family name of STATION_SETTINGS' reader
    lock.unlock_button.click()
    assert not guard.locked
    # Refused while waiting is not a try (not audited); each wrong one is.
    assert _unlocks(station).count((Outcome.MINOR_FAILURE, "reader-name")) == MAX_TRIES
    assert _unlocks(station)[-1] == (Outcome.SUCCESS, "reader-name")


PROFILES = {
    "none": ConnectionProfile(name="open-pacs", url="http://pacs.example/dicom-web"),
    "basic": ConnectionProfile(
        name="pacs", url="https://pacs.example/dicom-web", auth="basic", username="dr.side"
    ),
    "bearer": ConnectionProfile(name="pacs", url="https://pacs.example/dicom-web", auth="bearer"),
    "oidc": ConnectionProfile(
        name="pacs",
        url="https://pacs.example/dicom-web",
        auth="oidc",
        oidc_issuer="https://login.example",
        oidc_client_id="companion",
    ),
}


@pytest.mark.parametrize("kind", list(PROFILES))
def test_each_auth_kind_shows_its_unlock_prompt(
    station: Workstation, qtbot: QtBot, tmp_path: Path, kind: str
) -> None:
    profile = PROFILES[kind]
    rule = unlock_method(profile)
    guard = SessionGuard(station, Settings(auto_lock_minutes=1), profile)
    guard.lock()
    lock = guard.lock_window
    assert lock is not None
    qtbot.waitExposed(lock)
    QApplication.processEvents()
    assert lock.grab().save(str(tmp_path / f"unlock-{kind}.png"))
    assert lock.password.isVisible() == (kind != "oidc")
    assert lock.unlock_button.text() == ("Sign in to unlock" if kind == "oidc" else "Unlock")
    shown = _text(lock)
    assert rule.how.split("\n")[0] in shown
    if kind == "none":
        assert "not" in rule.how and "came back on purpose" in shown  # says it is no check
    # Every label fits: none is cut off at the window's size.
    for label in lock.findChildren(QLabel):
        if label.isVisible() and label.text():
            assert label.height() >= label.heightForWidth(label.width()) or not label.wordWrap()
    guard.unlock()


def test_sign_out_is_off_without_a_sign_in_and_keys_do_not_clash(
    station: Workstation, qtbot: QtBot, tmp_path: Path
) -> None:
    guard = SessionGuard(station, Settings(), PROFILES["basic"])
    QApplication.processEvents()
    assert guard.reader_button.isVisible()
    assert station.window.statusBar().grab().save(str(tmp_path / "status-bar.png"))
    assert guard.sign_out_actions and not any(a.isEnabled() for a in guard.sign_out_actions)
    guard.sign_out()  # e.g. from a script: says why and does nothing
    assert not guard.locked
    assert "no sign-in to end" in station.window.statusBar().currentMessage()
    menu = guard.reader_button.menu()
    assert [a.text() for a in menu.actions()] == ["Lock now", "Sign out"]
    assert guard.reader_button.text() == "dr.side ▾"
    for widget in (station.window, station.sidecar):
        seen: dict[str, str] = {}
        for action in widget.actions():
            for seq in action.shortcuts():
                text = seq.toString()
                assert text not in seen, f"{text}: {seen.get(text)} and {action.text()}"
                seen[text] = action.text()
        assert seen[QKeySequence("Ctrl+Shift+L").toString()] == "Sign out"
        assert seen[QKeySequence("Ctrl+L").toString()] == "Lock now"
    tray = [a.text() for a in station.tray.icon.contextMenu().actions() if a.text()]
    assert tray[-3:] == ["Lock now", "Sign out", "Quit"]
