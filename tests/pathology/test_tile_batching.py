"""How many frames go in one request: small levels split over the fetch workers, large
instances (which Orthanc parses whole for every request) asked in one request."""

from __future__ import annotations

from app.archive.slide_pyramid import SlideLevel, SlidePyramid
from app.archive.tiles import MAX_FRAMES_PER_REQUEST, TileSource


def _pyramid(*frames: int) -> SlidePyramid:
    levels = tuple(
        SlideLevel(f"1.2.{i}", 256 * n, 256, 256, 256, n, (0.00025, 0.00025))
        for i, n in enumerate(frames)
    )
    return SlidePyramid("1.2.3", "1.2.4", levels)


def test_frames_per_request_follows_the_instance_size() -> None:
    source = TileSource(None, _pyramid(4800, 1200, 300, 30), batch=16, fetch_workers=4)  # type: ignore[arg-type]
    try:
        assert source.frames_per_request(0, 88) == 88  # 52 MB base level: one parse
        assert source.frames_per_request(1, 88) == 88
        assert source.frames_per_request(2, 88) == 22  # split over the 4 workers
        assert source.frames_per_request(2, 40) == 16  # never fewer than batch
        assert source.frames_per_request(3, 5) == 16
        assert source.frames_per_request(0, 1000) == MAX_FRAMES_PER_REQUEST
    finally:
        source.close()
