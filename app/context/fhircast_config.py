"""Where and how the FHIRcast subscriber subscribes, and how long it waits between tries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.errors import ConfigError
from app.settings import FhircastSettings

DEFAULT_EVENTS = (
    "ImagingStudy-open",
    "ImagingStudy-close",
    "DiagnosticReport-open",
    "DiagnosticReport-close",
    "DiagnosticReport-select",
)


@dataclass(frozen=True)
class FhircastConfig:
    """Where and how to subscribe; the timing fields are for tests and odd hubs."""

    hub_url: str
    topic: str
    events: tuple[str, ...] = DEFAULT_EVENTS
    lease_seconds: int = 7200
    subscriber_name: str = "AI Review Companion"
    http_timeout: float = 10.0
    heartbeat_tolerance: float = 2.0  # the connection is dead after period x this, silent
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    renew_fraction: float = 0.8  # re-subscribe when this much of the lease has passed

    def __post_init__(self) -> None:
        if not self.hub_url.startswith(("http://", "https://")):
            raise ConfigError(f"FHIRcast hub URL must start with http(s)://, got {self.hub_url!r}")
        if not self.topic:
            raise ConfigError("FHIRcast topic must not be empty")
        if self.lease_seconds <= 0:
            raise ConfigError(f"FHIRcast lease_seconds must be > 0, got {self.lease_seconds!r}")


def backoff_delay(attempt: int, initial: float, cap: float, rnd: Callable[[], float]) -> float:
    """Exponential backoff, capped, with "equal jitter": never below half the step."""
    step = min(cap, initial * (2 ** min(attempt, 30)))
    return step / 2 + rnd() * step / 2


def config_from_settings(settings: FhircastSettings) -> FhircastConfig:
    """The subscriber's config from the user's settings (``ConfigError`` if incomplete)."""
    if not settings.hub_url or not settings.topic:
        raise ConfigError("FHIRcast needs a hub URL and a topic in the settings")
    return FhircastConfig(
        hub_url=settings.hub_url, topic=settings.topic, lease_seconds=settings.lease_seconds
    )
