"""Put the demo data set into an archive: the embedded local one, a folder, or a DICOMweb server.

``ensure_demo_archive`` is what the offline demo calls at every start: the first
time it generates and stores the set, and a marker file in the folder records
the seed, so later starts only open the archive. ``seed_target`` backs the CLI
``companion seed-demo TARGET``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from app.archive.client import DicomClientArchive, open_dicomweb, open_local
from app.archive.protocol import ImageArchive
from app.demo.generate import DemoSet, generate_demo_set
from app.demo.slide_catalog import configured_size, demo_slide_spec
from app.errors import ArchiveError, DemoDataError
from app.settings import demo_archive_dir

log = logging.getLogger(__name__)

MARKER = ".demo-seed.json"
BATCH_SIZE = 10  # instances per STOW-RS request

Progress = Callable[[int, int], None]


def seed_archive(archive: ImageArchive, demo: DemoSet, progress: Progress | None = None) -> int:
    """Store every image, then every AI result SR, in batches; returns how many were stored.

    Storing is idempotent (same UIDs), so an interrupted run can simply be repeated.
    ``progress(done, total)`` is called after each batch.
    """
    datasets = demo.datasets()
    total = len(datasets)
    done = 0
    if progress is not None:
        progress(0, total)
    for start in range(0, total, BATCH_SIZE):
        batch = datasets[start : start + BATCH_SIZE]
        try:
            archive.store(batch)
        except ArchiveError as exc:
            raise DemoDataError(
                f"storing the demo data in {archive.description} failed after {done} of "
                f"{total} instances: {exc}"
            ) from exc
        done += len(batch)
        if progress is not None:
            progress(done, total)
    studies = len(demo.studies) + (1 if demo.slide is not None else 0)
    log.info("stored %d demo instances (%d studies) in %s", total, studies, archive.description)
    return total


def ensure_demo_archive(
    folder: Path | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    slide_size: str | None = None,
) -> DicomClientArchive:
    """The offline demo archive at ``folder``, generated and seeded on first use.

    ``progress(done, total)`` reports on first use the demo slide's tiles as they are
    made, then the instances as they are stored. ``slide_size`` (``WxH``) is the
    slide's base level; by default ``app.demo.slide_catalog.configured_size``.

    A folder seeded before (its marker file exists) is opened as it is, even
    when the marker names another seed: the user's demo data is never replaced
    behind their back (delete the folder to re-seed).
    """
    folder = Path(folder) if folder is not None else demo_archive_dir()
    archive = open_local(folder)
    marker = folder / MARKER
    recorded = read_marker(folder)
    if recorded is not None:
        if recorded.get("seed") != seed:
            log.warning(
                "demo archive %s was seeded with seed %s, not %s; using it as it is",
                folder,
                recorded.get("seed"),
                seed,
            )
        return archive
    if marker.exists():
        log.warning("demo archive marker %s is unreadable; seeding again", marker)
    _seed_folder(archive, folder, seed, progress, slide_size)
    return archive


def seed_target(
    target: str,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    slide_size: str | None = None,
) -> int:
    """Seed the demo set, the demo slide included, into a DICOMweb server (http/https
    URL) or a local folder.

    The target (and ``slide_size``) is checked before the set is generated; returns the
    instances stored.
    """
    configured_size(slide_size)  # a bad size fails before anything is generated
    if target.startswith(("http://", "https://")):
        archive = open_dicomweb(target)
        archive.check()
        return seed_archive(archive, _generate(seed, progress, slide_size), progress)
    folder = Path(target).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DemoDataError(f"seed target must be a folder or an http(s) URL, got file {target!r}")
    return _seed_folder(open_local(folder), folder, seed, progress, slide_size)


def _generate(seed: int, progress: Progress | None, slide_size: str | None) -> DemoSet:
    now = datetime.now().replace(second=0, microsecond=0)
    return generate_demo_set(
        seed,
        now,
        slide=demo_slide_spec(seed, now, slide_size),
        slide_progress=progress,
    )


def read_marker(folder: Path) -> dict[str, object] | None:
    """What the marker file in ``folder`` records, or None when there is none (or it is bad)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _seed_folder(
    archive: DicomClientArchive,
    folder: Path,
    seed: int,
    progress: Progress | None,
    slide_size: str | None = None,
) -> int:
    demo = _generate(seed, progress, slide_size)
    count = seed_archive(archive, demo, progress)
    slide = demo.slide.spec if demo.slide is not None else None
    record = {
        "seed": seed,
        "studies": len(demo.studies) + (1 if slide else 0),
        "instances": count,
        "slide": f"{slide.width}x{slide.height}" if slide else None,
        "reference_time": demo.reference_time.isoformat(),
        "seeded_at": datetime.now().isoformat(timespec="seconds"),
    }
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    os.replace(tmp, folder / MARKER)
    return count
