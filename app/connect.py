"""Choose the archive the app talks to: one place, for the CLI and the GUI alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.archive.client import open_dicomweb
from app.archive.protocol import ImageArchive
from app.settings import Settings


@dataclass(frozen=True)
class Connection:
    archive: ImageArchive
    mode_label: str  # "Offline demo" or "DICOMweb"


def connect(
    settings: Settings,
    *,
    demo: bool = False,
    server: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Connection:
    """``--server URL`` wins, then ``--demo``, then the active profile; no server → offline demo."""
    if server:
        return Connection(open_dicomweb(server), "DICOMweb")
    if not demo and settings.active_profile:
        from app.security.http_auth import session_for

        profile = settings.profile(settings.active_profile)
        archive = open_dicomweb(profile.url, session=session_for(profile))
        return Connection(archive, f"DICOMweb · {profile.name}")
    from app.demo.seed import ensure_demo_archive

    return Connection(
        ensure_demo_archive(seed=settings.demo_seed, progress=progress), "Offline demo"
    )
