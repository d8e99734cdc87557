"""Settings: profiles round-trip through the config file, secrets never do."""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import pytest

from app.errors import ConfigError
from app.security.http_auth import KEYRING_SERVICE, keyring_key, session_for
from app.settings import ConnectionProfile, Settings, load_settings, save_settings, settings_path


def test_defaults_when_no_file() -> None:
    s = load_settings()
    assert s.profiles == [] and s.active_profile == "" and s.weights.critical > s.weights.urgent


def test_profiles_round_trip_in_config_dir(tmp_path: Path) -> None:
    s = Settings(
        profiles=[
            ConnectionProfile(
                "PACS", "https://pacs.example/dicom-web", auth="basic", username="reader"
            )
        ],
        active_profile="PACS",
    )
    s.weights.critical = 123
    path = save_settings(s)
    assert path == settings_path() and path.parent.name == "config"
    again = load_settings()
    assert again.profile("PACS").username == "reader" and again.weights.critical == 123


def test_secrets_live_in_keyring_not_in_settings(memory_keyring: object) -> None:
    profile = ConnectionProfile(
        "PACS", "https://pacs.example/dicom-web", auth="basic", username="reader"
    )
    keyring.set_password(KEYRING_SERVICE, keyring_key(profile), "s3cret-pw")
    save_settings(Settings(profiles=[profile], active_profile="PACS"))
    assert "s3cret-pw" not in settings_path().read_text()
    session = session_for(profile)
    assert session.auth == ("reader", "s3cret-pw") and session.verify is True
    bearer = ConnectionProfile("AI", "https://ai.example/dicom-web", auth="bearer")
    keyring.set_password(KEYRING_SERVICE, keyring_key(bearer), "tok")
    assert session_for(bearer).headers["Authorization"] == "Bearer tok"


def test_missing_secret_and_bad_values_are_clear(memory_keyring: object) -> None:
    profile = ConnectionProfile("PACS", "https://pacs.example/dicom-web", auth="bearer")
    with pytest.raises(ConfigError, match="no bearer secret"):
        session_for(profile)
    with pytest.raises(ConfigError, match="auth must be one of"):
        ConnectionProfile("X", "https://x", auth="magic")
    with pytest.raises(ConfigError, match="http:// or https://"):
        ConnectionProfile("X", "pacs:8042")
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(json.dumps(["not", "an", "object"]))
    with pytest.raises(ConfigError, match="JSON object"):
        load_settings()
