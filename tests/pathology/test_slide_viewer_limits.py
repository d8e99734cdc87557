"""A pyramid without coarse levels (a third-party slide converted without ``--pyramid``),
zoomed out, shows more tiles than the cache holds: the viewer must not fetch them in a
loop, each arriving tile evicting another it shows; zoomed in, tiles come as usual."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.archive.slide_pyramid import SlidePyramid, read_pyramid
from app.archive.tiles import TileKey, TileSource
from tests.pathology.slide_data import CountingArchive, small_slide
from tests.support.orthanc import OrthancServer
from viewers.slide_viewer import SlideViewer

pytestmark = pytest.mark.orthanc

TILE_BYTES = 256 * 256 * 3


def test_a_view_larger_than_the_cache_is_not_fetched_in_a_loop(
    qtbot: QtBot, empty_orthanc: OrthancServer
) -> None:
    slide = small_slide()  # base level 6 x 5 tiles
    archive = CountingArchive(open_dicomweb(empty_orthanc.dicomweb_url))
    archive.store(slide.levels)
    full = read_pyramid(archive, slide.study_uid, slide.series_uid)  # type: ignore[arg-type]
    base_only = SlidePyramid(full.study_uid, full.series_uid, full.levels[:1])
    source = TileSource(archive, base_only, cache_mb=28 * TILE_BYTES / 2**20)  # type: ignore[arg-type]
    assert source.capacity(0) == 21 and not source.fits(30, 0)
    # the request a view makes is cut to what the cache holds, nearest first
    keys = [TileKey(0, c, r) for r in range(5) for c in range(6)]
    assert source.request(keys, lambda *_: None) == 21
    viewer = SlideViewer(source)
    qtbot.addWidget(viewer)
    viewer.resize(700, 520)
    viewer.show()
    qtbot.waitExposed(viewer)
    qtbot.wait(1500)
    # fit: all 30 base tiles in view, 28 fit the cache; a bounded fetch, then quiet
    settled = archive.frames
    assert settled <= 30
    qtbot.wait(1000)
    assert archive.frames == settled, "the viewer keeps fetching tiles it cannot keep"
    assert source.cache.nbytes <= source.cache.max_bytes
    # zoomed in to full resolution, the view's tiles (20 with the prefetch ring) fit
    viewer.resize(400, 300)
    viewer.viewport.scale = 1.0
    viewer.viewport.cx, viewer.viewport.cy = 700, 500
    viewer.pan(0, 0)
    assert source.fits(len(viewer.viewport.visible_tiles(margin=1)), 0)
    qtbot.waitUntil(lambda: not viewer.pending_tiles(), timeout=30_000)
    viewer.close()
    source.close()
