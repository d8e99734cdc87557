"""Whole-slide tiles from a real Orthanc: pyramid from metadata, batched frames, cache bound."""

from __future__ import annotations

import numpy as np
import pytest

from app.archive.client import open_dicomweb
from app.archive.slide_pyramid import read_pyramid
from app.archive.tiles import TileKey, TileSource
from app.demo.slide import TILE, level_size
from app.demo.slide_annotations import build_slide_annotations
from app.demo.slide_texture import render_tile
from app.errors import ArchiveError
from tests.pathology.slide_data import SMALL, CountingArchive, small_slide
from tests.support.orthanc import OrthancServer

pytestmark = pytest.mark.orthanc


@pytest.fixture()
def slide_archive(empty_orthanc: OrthancServer) -> CountingArchive:
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store(small_slide().levels)
    return CountingArchive(archive)


def test_pyramid_from_metadata(slide_archive: CountingArchive) -> None:
    slide = small_slide()
    pyramid = read_pyramid(slide_archive, slide.study_uid, slide.series_uid)  # type: ignore[arg-type]
    assert len(pyramid.levels) == 3
    for i, level in enumerate(pyramid.levels):
        assert (level.width, level.height) == level_size(SMALL, i)
        assert level.sop_uid == slide.levels[i].SOPInstanceUID
        assert level.spacing_mm[1] == pytest.approx(SMALL.pixel_spacing_mm * 2**i)
    assert pyramid.base.frame_number(0, 0) == 1
    assert pyramid.base.frame_number(1, 1) == pyramid.base.tiles_across + 2
    assert pyramid.base.frame_number(pyramid.base.tiles_across, 0) is None
    assert pyramid.level_for(1.0) == 0 and pyramid.level_for(2.5) == 1
    assert pyramid.level_for(100.0) == 2


def test_tiles_decode_to_expected_pixels_in_batches(slide_archive: CountingArchive) -> None:
    slide = small_slide()
    pyramid = read_pyramid(slide_archive, slide.study_uid, slide.series_uid)  # type: ignore[arg-type]
    source = TileSource(slide_archive, pyramid, batch=8)  # type: ignore[arg-type]
    try:
        base = pyramid.base
        keys = [TileKey(0, c, r) for r in range(base.tiles_down) for c in range(base.tiles_across)]
        tiles = source.fetch(keys, timeout=60)
        assert all(tiles[k] is not None for k in keys)
        for key in (keys[0], keys[len(keys) // 2], keys[-1]):
            expected = render_tile(slide.content, 1, key.col * TILE, key.row * TILE, TILE)
            got = tiles[key]
            assert got is not None and got.shape == (TILE, TILE, 3)
            assert np.abs(got.astype(int) - expected.astype(int)).mean() < 6.0
        # several frames per request, never one request per tile
        assert len(slide_archive.frame_requests) == -(-len(keys) // 8)
        assert max(len(r) for r in slide_archive.frame_requests) == 8
        assert source.frames_fetched == len(keys)
        # a second look is served from the cache
        before = len(slide_archive.frame_requests)
        assert source.fetch(keys[:3])[keys[0]] is not None
        assert len(slide_archive.frame_requests) == before
    finally:
        source.close()


def test_cache_stays_within_its_bound(slide_archive: CountingArchive) -> None:
    slide = small_slide()
    pyramid = read_pyramid(slide_archive, slide.study_uid, slide.series_uid)  # type: ignore[arg-type]
    tile_bytes = TILE * TILE * 3
    source = TileSource(slide_archive, pyramid, cache_mb=4.5 * tile_bytes / 2**20, batch=4)  # type: ignore[arg-type]
    try:
        base = pyramid.base
        keys = [TileKey(0, c, r) for r in range(base.tiles_down) for c in range(base.tiles_across)]
        assert len(keys) > 10
        tiles = source.fetch(keys, timeout=60)
        assert all(t is not None for t in tiles.values())
        assert source.cache.peak_bytes <= source.cache.max_bytes
        assert len(source.cache) == 4
    finally:
        source.close()


def test_missing_and_failed_tiles_are_blank_not_errors(slide_archive: CountingArchive) -> None:
    slide = small_slide()
    pyramid = read_pyramid(slide_archive, slide.study_uid, slide.series_uid)  # type: ignore[arg-type]
    source = TileSource(slide_archive, pyramid)  # type: ignore[arg-type]
    try:
        outside = [TileKey(0, 99, 0), TileKey(7, 0, 0), TileKey(1, -1, 0)]
        assert source.fetch(outside, timeout=5) == {k: None for k in outside}
        assert slide_archive.frame_requests == []
    finally:
        source.close()
    # an instance the archive does not hold: blank tiles, logged, no exception
    broken = type(pyramid)(
        pyramid.study_uid,
        pyramid.series_uid,
        (type(pyramid.base)(**{**pyramid.base.__dict__, "sop_uid": "1.2.3.4"}),),
    )
    source = TileSource(slide_archive, broken)  # type: ignore[arg-type]
    try:
        assert source.fetch([TileKey(0, 0, 0)], timeout=30) == {TileKey(0, 0, 0): None}
        assert source.cached(TileKey(0, 0, 0)) is None
    finally:
        source.close()


def test_series_without_slide_levels_is_an_archive_error(slide_archive: CountingArchive) -> None:
    slide = small_slide()
    ann = build_slide_annotations(slide)
    slide_archive.store([ann])
    with pytest.raises(ArchiveError, match="no whole-slide"):
        read_pyramid(slide_archive, slide.study_uid, ann.SeriesInstanceUID)  # type: ignore[arg-type]
