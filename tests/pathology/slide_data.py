"""A small demo slide shared by the pathology tests (seconds to build)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from app.archive.protocol import ImageArchive
from app.archive.slide_pyramid import SlideLevel, SlidePyramid
from app.demo.slide import DemoSlide, SlideSpec, generate_slide

SMALL = SlideSpec(width=1500, height=1100, levels=3, seed=7)


@cache
def small_slide() -> DemoSlide:
    return generate_slide(SMALL)


def pyramid_of(slide: DemoSlide, study_uid: str = "", series_uid: str = "") -> SlidePyramid:
    """The pyramid of a generated slide as read from its datasets (0.25 µm base spacing,
    doubling per level), without an archive; UIDs default to the slide's own."""
    levels = tuple(
        SlideLevel(
            str(d.SOPInstanceUID),
            int(d.TotalPixelMatrixColumns),
            int(d.TotalPixelMatrixRows),
            256,
            256,
            int(d.NumberOfFrames),
            (0.00025 * 2**i,) * 2,
        )
        for i, d in enumerate(slide.levels)
    )
    return SlidePyramid(study_uid or slide.study_uid, series_uid or slide.series_uid, levels)


class CountingArchive:
    """The real archive, recording the frame numbers of each frames request; with ``fail``
    set, every frames request fails as if the archive were down."""

    def __init__(self, archive: ImageArchive, *, fail: bool = False) -> None:
        self._archive = archive
        self.fail = fail
        self.frame_requests: list[list[int]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        return getattr(self._archive, name)

    @property
    def frames(self) -> int:
        """Frames asked for so far."""
        with self._lock:
            return sum(len(r) for r in self.frame_requests)

    def retrieve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> list[bytes]:
        with self._lock:
            self.frame_requests.append(list(frames))
        if self.fail:
            raise ConnectionError("the archive is down (test)")
        return self._archive.retrieve_frames(study_uid, series_uid, sop_uid, frames)

    def stream_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> Iterator[bytes | bytearray]:
        """What the tile source asks a DICOMweb archive for (``can_stream``)."""
        with self._lock:
            self.frame_requests.append(list(frames))
        if self.fail:
            raise ConnectionError("the archive is down (test)")
        yield from self._archive.stream_frames(study_uid, series_uid, sop_uid, frames)  # type: ignore[attr-defined]


def show_filled(qtbot: Any, viewer: Any, width: int, height: int) -> None:
    """Show a slide viewer at ``width`` x ``height`` and wait until its view's tiles are
    in (or given up as blank)."""
    qtbot.addWidget(viewer)
    viewer.resize(width, height)
    viewer.show()
    qtbot.waitExposed(viewer)
    qtbot.waitUntil(lambda: not viewer.pending_tiles(), timeout=30_000)
