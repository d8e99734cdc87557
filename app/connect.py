"""Choose the archive the app talks to: one place, for the CLI and the GUI alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.archive.client import open_dicomweb
from app.archive.protocol import ImageArchive
from app.settings import ConnectionProfile, Settings

DEMO_DESTINATION = "demo"


@dataclass(frozen=True)
class Connection:
    archive: ImageArchive
    mode_label: str  # "Offline demo" or "DICOMweb"
    destination: str = DEMO_DESTINATION  # where write-back goes: the archive's URL, or "demo"
    profile: ConnectionProfile | None = None  # the settings' profile, when one was used

    @property
    def demo(self) -> bool:
        return self.destination == DEMO_DESTINATION


def is_demo(settings: Settings, *, demo: bool = False, server: str | None = None) -> bool:
    """Whether ``connect`` with these arguments picks the offline demo."""
    return not server and (demo or not settings.active_profile)


def connect(
    settings: Settings,
    *,
    demo: bool = False,
    server: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Connection:
    """``--server URL`` wins, then ``--demo``, then the active profile; no server → offline demo."""
    if server:
        return Connection(open_dicomweb(server), "DICOMweb", server.rstrip("/"))
    if not demo and settings.active_profile:
        from app.security.http_auth import session_for

        profile = settings.profile(settings.active_profile)
        archive = open_dicomweb(profile.url, session=session_for(profile))
        return Connection(
            archive, f"DICOMweb · {profile.name}", profile.url.rstrip("/"), profile=profile
        )
    from app.demo.seed import ensure_demo_archive

    return Connection(
        ensure_demo_archive(seed=settings.demo_seed, progress=progress), "Offline demo"
    )
