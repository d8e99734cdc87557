"""``companion sign-out [--profile NAME]`` against the real OpenID provider (npm
``oidc-provider`` on loopback, tests/security/conftest.py): revoked there, the stored
sign-in deleted, a ``sign_out`` entry in the app's audit trail."""

from __future__ import annotations

import pytest
import requests

from app.audit import AuditLog, EventKind
from app.audit.log import default_path
from app.main import main
from app.security import signin
from app.security.tokens import refresh_token_user
from app.settings import ConnectionProfile, Settings, save_settings
from tests.security.conftest import RecordingKeyring, oidc_profile
from tests.support.oidc_provider import CLIENT_ID, USER, Browser, OidcProvider


def test_sign_out_from_the_command_line(
    provider: OidcProvider,
    recording_keyring: RecordingKeyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    profile = oidc_profile(provider)
    save_settings(Settings(profiles=[profile], active_profile=profile.name))
    signin.sign_in(profile, open_browser=Browser().open, timeout_s=30)
    access = signin.tokens_for(profile).access_token()
    refresh = recording_keyring.get_password("ai-review-companion", refresh_token_user(profile))
    assert refresh

    assert main(["sign-out"]) == 0  # the active profile
    assert "signed out (revoked at the provider" in capsys.readouterr().out
    assert signin.needs_sign_in(profile)
    assert not provider.userinfo_ok(access)
    answer = requests.post(
        provider.metadata()["token_endpoint"],
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID},
    )
    assert answer.json().get("error") == "invalid_grant"
    with AuditLog(default_path()) as audit:
        events = [e.event for e in audit.entries()]
    assert [(e.kind, e.user, e.details["revoked"]) for e in events] == [
        (EventKind.SIGN_OUT, USER, True)
    ]

    assert main(["sign-out", "--profile", profile.name]) == 0  # again: nothing left
    assert "was not signed in" in capsys.readouterr().out


def test_sign_out_of_a_profile_without_sign_in_says_so(
    recording_keyring: RecordingKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    basic = ConnectionProfile(
        name="lab", url="https://lab.example/dicom-web", auth="basic", username="u"
    )
    save_settings(Settings(profiles=[basic]))
    assert main(["sign-out"]) != 0  # no active profile
    assert "--profile" in capsys.readouterr().err
    assert main(["sign-out", "--profile", "lab"]) != 0
    err = capsys.readouterr().err
    assert "no sign-in to end" in err and "keyring del ai-review-companion lab:u" in err
    assert main(["sign-out", "--profile", "nope"]) != 0
    assert "no connection profile named 'nope'" in capsys.readouterr().err
