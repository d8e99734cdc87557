"""A TILED_SPARSE slide with JPEG 2000 tiles and gaps, on a real Orthanc: gaps render
blank, present tiles decode exactly (lossless), and the viewer neither busy-loops
repainting nor re-asks a failing server while tiles are missing or failed."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import openjpeg
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, generate_uid
from PySide6.QtCore import QEvent, QObject
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.archive.slide_pyramid import read_pyramid
from app.archive.tiles import TileKey, TileSource
from app.demo.slide import TILE, iter_tiles, level_size
from tests.pathology.slide_data import SMALL, CountingArchive, show_filled, small_slide
from tests.support.orthanc import OrthancServer
from viewers.slide_viewer import SlideViewer

pytestmark = pytest.mark.orthanc

BACKDROP = (40, 40, 44)  # the viewer's empty background


def _is_gap(col: int, row: int) -> bool:
    return (col + 2 * row) % 3 == 0


def sparse_j2k_level() -> tuple[Dataset, dict[tuple[int, int], np.ndarray]]:
    """The small demo slide's base level as TILED_SPARSE JPEG 2000 (lossless), a third of
    its tiles left out; returns the dataset and the tiles it holds."""
    slide = small_slide()
    ds = copy.deepcopy(slide.levels[0])
    cols, _ = level_size(SMALL, 0)
    across = -(-cols // TILE)
    held: dict[tuple[int, int], np.ndarray] = {}
    frames, per_frame = [], []
    for index, tile in enumerate(iter_tiles(slide, 0)):
        col, row = index % across, index // across
        if _is_gap(col, row):
            continue
        held[(col, row)] = tile
        frames.append(openjpeg.encode(tile, photometric_interpretation=1, use_mct=True))
        pos = Dataset()
        pos.ColumnPositionInTotalImagePixelMatrix = col * TILE + 1
        pos.RowPositionInTotalImagePixelMatrix = row * TILE + 1
        pos.XOffsetInSlideCoordinateSystem = 20.0
        pos.YOffsetInSlideCoordinateSystem = 40.0
        pos.ZOffsetInSlideCoordinateSystem = 0.0
        content = Dataset()
        content.DimensionIndexValues = [col * TILE + 1, row * TILE + 1]
        item = Dataset()
        item.PlanePositionSlideSequence = [pos]
        item.FrameContentSequence = [content]
        per_frame.append(item)
    series_uid, sop_uid = generate_uid(), generate_uid()
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PhotometricInterpretation = "YBR_RCT"
    ds.LossyImageCompression = "00"
    for name in ("LossyImageCompressionMethod", "LossyImageCompressionRatio"):
        if name in ds:
            delattr(ds, name)
    ds.DimensionOrganizationType = "TILED_SPARSE"
    ds.NumberOfFrames = len(frames)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = encapsulate(frames, has_bot=False)
    ds["PixelData"].VR = "OB"
    return ds, held


class PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.paints = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


@pytest.fixture()
def sparse_archive(empty_orthanc: OrthancServer) -> tuple[CountingArchive, Dataset, dict]:
    ds, held = sparse_j2k_level()
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([ds])
    return CountingArchive(archive), ds, held


def test_sparse_j2k_tiles_decode_and_gaps_are_blank(sparse_archive: tuple) -> None:
    archive, ds, held = sparse_archive
    pyramid = read_pyramid(archive, ds.StudyInstanceUID, ds.SeriesInstanceUID)
    base = pyramid.base
    assert len(pyramid.levels) == 1 and base.sparse is not None
    keys = [TileKey(0, c, r) for r in range(base.tiles_down) for c in range(base.tiles_across)]
    gaps = [k for k in keys if _is_gap(k.col, k.row)]
    assert gaps and len(gaps) < len(keys)
    source = TileSource(archive, pyramid, batch=8)  # type: ignore[arg-type]
    try:
        tiles = source.fetch(keys, timeout=60)
        for key in keys:
            if _is_gap(key.col, key.row):
                assert tiles[key] is None and source.is_blank(key)
            else:
                got = tiles[key]
                assert got is not None and np.array_equal(got, held[(key.col, key.row)]), key
                assert not source.is_blank(key)
        # gaps are never asked of the server
        assert source.frames_fetched == len(keys) - len(gaps)
    finally:
        source.close()


def test_viewer_shows_gaps_blank_without_busy_looping(
    qtbot: QtBot, sparse_archive: tuple, tmp_path: Path
) -> None:
    archive, ds, held = sparse_archive
    pyramid = read_pyramid(archive, ds.StudyInstanceUID, ds.SeriesInstanceUID)
    source = TileSource(archive, pyramid, batch=8)  # type: ignore[arg-type]
    viewer = SlideViewer(source)
    counter = PaintCounter()
    viewer.installEventFilter(counter)
    show_filled(qtbot, viewer, 800, 600)
    # one level only: zoom to it at 1:1 so every tile is a 256-px square on screen
    viewer.show_region(0, 0, 800, 600)
    viewer.viewport.scale = 1.0
    viewer.viewport.cx, viewer.viewport.cy = 400, 300
    viewer.update()
    qtbot.waitUntil(lambda: not viewer.pending_tiles(), timeout=30_000)
    qtbot.wait(100)
    shot = viewer.grab().toImage()
    shot.save(str(tmp_path / "sparse_j2k.png"))

    # settled: a second with gaps in view brings no repaints and no requests
    requests, paints = len(archive.frame_requests), counter.paints
    qtbot.wait(1000)
    assert counter.paints - paints <= 2, "the viewer keeps repainting over blank tiles"
    assert len(archive.frame_requests) == requests

    def pixel(col: int, row: int) -> tuple[int, int, int]:
        c = shot.pixelColor(col * TILE + TILE // 2, row * TILE + TILE // 2)
        return c.red(), c.green(), c.blue()

    for row in range(2):
        for col in range(3):
            if _is_gap(col, row):
                assert pixel(col, row) == BACKDROP, (col, row)
            else:
                r, g, b = (int(v) for v in held[(col, row)][TILE // 2, TILE // 2])
                got = pixel(col, row)
                assert max(abs(got[0] - r), abs(got[1] - g), abs(got[2] - b)) <= 6, (col, row)
    viewer.close()
    source.close()


def test_viewer_does_not_hammer_a_failing_archive(qtbot: QtBot, sparse_archive: tuple) -> None:
    archive, ds, _ = sparse_archive
    pyramid = read_pyramid(archive, ds.StudyInstanceUID, ds.SeriesInstanceUID)
    archive.fail = True
    source = TileSource(archive, pyramid, batch=8, retry_after_s=30.0)  # type: ignore[arg-type]
    viewer = SlideViewer(source)
    counter = PaintCounter()
    viewer.installEventFilter(counter)
    show_filled(qtbot, viewer, 800, 600)  # all failed: blank
    first = len(archive.frame_requests)
    assert first >= 1
    paints = counter.paints
    qtbot.wait(1000)
    for _ in range(5):  # the reader moves the mouse: repaints, but no new requests
        viewer.update()
        qtbot.wait(20)
    assert len(archive.frame_requests) == first
    assert counter.paints - paints <= 8
    # after the wait, a move asks again (the server may be back)
    archive.fail = False
    source.retry_after_s = 0.0
    viewer.pan(1, 0)
    qtbot.waitUntil(lambda: len(archive.frame_requests) > first, timeout=10_000)
    qtbot.waitUntil(lambda: not viewer.pending_tiles(), timeout=30_000)
    assert any(source.cached(k) is not None for k in viewer.viewport.visible_tiles())
    viewer.close()
    source.close()
