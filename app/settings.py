"""User settings: connection profiles, worklist weights, viewer and cache options.

Stored as JSON in the platform config folder (platformdirs), or under
``$COMPANION_HOME/config`` when that variable is set (tests, portable installs).
Secrets never go here: a profile names its auth kind, and the secret lives in
the OS keyring under the profile's name.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from app.errors import ConfigError

log = logging.getLogger(__name__)

APP_NAME = "ai-review-companion"
AUTH_KINDS = ("none", "basic", "bearer", "oidc")
ROLES = ("reader", "observer")  # an observer sees everything but cannot decide or submit
DEFAULT_OIDC_SCOPES = "openid profile offline_access"
SETTINGS_FILE = "settings.json"


def _base(kind: str) -> Path:
    home = os.environ.get("COMPANION_HOME")
    if home:
        return Path(home) / kind
    if kind == "config":
        return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    if kind == "cache":
        return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    return _base("config")


def data_dir() -> Path:
    return _base("data")


JOURNAL_FILE = "journal.sqlite3"
DEMO_JOURNAL_FILE = "demo-journal.sqlite3"


def journal_path(demo: bool = False) -> Path:
    """The one SQLite file that holds the outbox, the audit log and the review records.

    One file, because a submitted review's decisions, its audit entries and the SRs
    to send must commit in one transaction (SQLite is atomic across tables of one
    file; across attached files in WAL mode it is not). The offline demo has its own,
    so demo reviews never reach a real archive or a real audit chain."""
    return data_dir() / (DEMO_JOURNAL_FILE if demo else JOURNAL_FILE)


def cache_dir() -> Path:
    return _base("cache")


def demo_archive_dir() -> Path:
    """Where the embedded offline archive lives (seeded on first start)."""
    return data_dir() / "demo-archive"


@dataclass
class ConnectionProfile:
    """A DICOMweb archive the user can connect to. No secrets in here."""

    name: str
    url: str
    auth: str = "none"
    username: str = ""  # for basic auth; the password is in the keyring
    verify_tls: bool = True
    ca_bundle: str = ""  # PEM file of the CA(s) to trust for this archive (and its OIDC issuer)
    # TLS client certificate (PEM paths); a passphrase of the key, if any, is in the keyring.
    client_cert: str = ""
    client_key: str = ""
    # OpenID Connect (auth "oidc"): the issuer (discovery at ISSUER/.well-known/
    # openid-configuration), this app's client id there (a public client), and scopes.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_scopes: str = DEFAULT_OIDC_SCOPES
    role: str = "reader"  # "observer": sees, cannot decide

    def __post_init__(self) -> None:
        if self.auth not in AUTH_KINDS:
            raise ConfigError(
                f"profile {self.name!r}: auth must be one of {', '.join(AUTH_KINDS)}, got {self.auth!r}"
            )
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(
                f"profile {self.name!r}: url must start with http:// or https://, got {self.url!r}"
            )
        if self.role not in ROLES:
            raise ConfigError(
                f"profile {self.name!r}: role must be one of {', '.join(ROLES)}, got {self.role!r}"
            )
        if self.auth == "oidc":
            if not self.oidc_issuer.startswith(("http://", "https://")):
                raise ConfigError(
                    f"profile {self.name!r}: oidc_issuer must be the provider's http(s) URL, "
                    f"got {self.oidc_issuer!r}"
                )
            if not self.oidc_client_id:
                raise ConfigError(f"profile {self.name!r}: oidc_client_id is empty")
            if "openid" not in self.oidc_scopes.split():
                raise ConfigError(
                    f"profile {self.name!r}: oidc_scopes must include 'openid', "
                    f"got {self.oidc_scopes!r}"
                )
        if bool(self.client_cert) != bool(self.client_key) and not self.client_cert:
            raise ConfigError(
                f"profile {self.name!r}: client_key is set but client_cert is empty"
            )

    @property
    def observer(self) -> bool:
        return self.role == "observer"


@dataclass
class WorklistWeights:
    """Points added to a study's score; the reason line explains each term."""

    critical: float = 100.0
    urgent: float = 50.0
    routine: float = 10.0
    certainty: float = 20.0  # times the top finding's certainty (0..1)
    waiting_per_hour: float = 5.0
    waiting_cap_hours: float = 24.0
    order_stat: float = 40.0
    order_high: float = 20.0
    unreadable: float = 15.0  # an unreadable AI result needs a human look too
    no_ai: float = 0.0


@dataclass
class FhircastSettings:
    """Following the PACS over FHIRcast (app/context/fhircast.py). No secrets here:
    ``token_source`` names the connection profile whose sign-in supplies the hub's
    bearer token ("" for a hub that wants none)."""

    enabled: bool = False
    hub_url: str = ""
    topic: str = ""
    token_source: str = ""
    lease_seconds: int = 7200

    def __post_init__(self) -> None:
        if self.hub_url and not self.hub_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"fhircast.hub_url must start with http:// or https://, got {self.hub_url!r}"
            )
        if self.enabled and (not self.hub_url or not self.topic):
            raise ConfigError("fhircast is enabled but hub_url or topic is empty")
        if self.lease_seconds <= 0:
            raise ConfigError(f"fhircast.lease_seconds must be > 0, got {self.lease_seconds!r}")


@dataclass
class Settings:
    profiles: list[ConnectionProfile] = field(default_factory=list)
    active_profile: str = ""  # empty: offline demo
    weights: WorklistWeights = field(default_factory=WorklistWeights)
    refresh_seconds: int = 60
    full_resync_seconds: int = 300  # a full study search at least this often
    series_cache_mb: int = 1024  # recently viewed series kept in memory (pixel bytes)
    series_max_requests: int = 6  # concurrent WADO-RS requests while a series loads
    alert_sound: bool = False  # a sound with the notification of a new critical AI finding
    auto_lock_minutes: int = 15  # idle minutes before patient data is hidden (0: never)
    demo_seed: int = 0
    # The reader as the review SRs name them (until sign-in supplies it): a DICOM person
    # name "FAMILY^GIVEN"; empty means the OS account name. ``reader_id`` defaults to
    # the OS account.
    reader_id: str = ""
    reader_name: str = ""
    reader_organization: str = ""
    reader_role: str = "Radiologist"
    fhircast: FhircastSettings = field(default_factory=FhircastSettings)
    # Local inference (issue 5): the user's folder of MONAI bundles (empty: "models" in the
    # data folder); "auto", "cuda", "mps" or "cpu"; whether AI results from local runs go to
    # the archive (through the outbox) or stay in a local folder; auto-run rules (dicts read
    # by ``inference.autorun.AutoRunRule.from_json``).
    models_folder: str = ""
    inference_device: str = "auto"
    ai_results_to_archive: bool = False
    autorun_rules: list[dict[str, Any]] = field(default_factory=list)

    def profile(self, name: str) -> ConnectionProfile:
        for p in self.profiles:
            if p.name == name:
                return p
        raise ConfigError(f"no connection profile named {name!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            log.warning("ignoring unknown settings: %s", ", ".join(sorted(unknown)))
        try:
            weights = WorklistWeights(**data.get("weights", {}))
            profiles = [ConnectionProfile(**p) for p in data.get("profiles", [])]
            fhircast = FhircastSettings(**data.get("fhircast", {}))
        except TypeError as exc:
            raise ConfigError(f"settings file has an unknown field: {exc}") from exc
        nested = ("weights", "profiles", "fhircast")
        rest = {k: v for k, v in data.items() if k in known and k not in nested}
        return cls(profiles=profiles, weights=weights, fhircast=fhircast, **rest)


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file; defaults when there is none."""
    path = path or settings_path()
    if not path.exists():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path} must hold a JSON object")
    return Settings.from_json(data)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (write a temp file, then rename)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings.to_json(), indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path
