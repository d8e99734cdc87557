"""The slide viewer on a real Orthanc: tiles for the view, fly to an AI region, overlays, keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.archive.slide_pyramid import read_pyramid
from app.archive.tiles import TileSource
from app.demo.slide import SlideSpec, generate_slide
from app.demo.slide_annotations import build_slide_annotations
from app.results.ann_reader import read_bulk_annotations
from tests.pathology.slide_data import pyramid_of, show_filled
from tests.support.orthanc import OrthancServer
from viewers.slide_highlight import HighlightSlideViewer
from viewers.slide_viewer import SlideViewer
from viewers.slide_viewport import SlideViewport

pytestmark = pytest.mark.orthanc

SPEC = SlideSpec(width=4096, height=3072, levels=4, seed=11)


def _rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    buf = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    return (
        buf.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 3]
        .reshape(image.height(), image.width(), 3)
        .copy()
    )  # a copy: the QImage's buffer goes away with it


def test_viewport_level_zoom_and_tiles() -> None:
    slide = generate_slide(SlideSpec(width=1024, height=768, levels=3, seed=1))
    vp = SlideViewport(pyramid_of(slide, "s", "r"), width=400, height=300)
    vp.fit()
    # 2.6 base px per screen px: level 1 (2x) is the coarsest still as fine as the screen
    assert vp.level == 1 and len(vp.visible_tiles()) == 4
    before = vp.to_base(100, 50)
    vp.zoom(4.0, anchor=(100, 50))
    assert vp.to_base(100, 50) == pytest.approx(before)
    assert vp.level == 0
    tiles = vp.visible_tiles()
    centre = (int(vp.cx // 256), int(vp.cy // 256))
    assert (tiles[0].col, tiles[0].row) == centre
    vp.show_region(100, 100, 300, 200)
    assert vp.cx == 200 and vp.scale == pytest.approx(200 / 400 * 1.3)
    assert vp.micrometres_per_screen_px() == pytest.approx(0.25 * vp.scale)


def test_open_slide_fly_to_region_and_overlays(
    qtbot: QtBot, empty_orthanc: OrthancServer, tmp_path: Path
) -> None:
    slide = generate_slide(SPEC)
    ann = build_slide_annotations(slide)
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*slide.levels, ann])

    pyramid = read_pyramid(archive, slide.study_uid, slide.series_uid)
    groups = read_bulk_annotations(
        archive.retrieve_instance(slide.study_uid, ann.SeriesInstanceUID, ann.SOPInstanceUID)
    ).groups
    source = TileSource(archive, pyramid, cache_mb=64, batch=16)
    viewer = SlideViewer(source, groups)
    show_filled(qtbot, viewer, 1000, 700)
    overview = viewer.grab().toImage()
    overview.save(str(tmp_path / "slide_overview.png"))
    assert viewer.viewport.level == 2  # 4.6 base px per screen px

    # fly to the first AI tumor region: full-resolution tiles come in, the outline is drawn
    tumor = next(g for g in groups if g.label == "Tumor region")
    xs, ys = tumor.shapes[0][:, 0], tumor.shapes[0][:, 1]
    viewer.show_region(xs.min(), ys.min(), xs.max(), ys.max())
    assert viewer.viewport.level == 0
    qtbot.waitUntil(lambda: not viewer.pending_tiles(), timeout=30_000)
    qtbot.wait(50)
    shot = viewer.grab().toImage()
    shot.save(str(tmp_path / "slide_region.png"))
    shot.save("/tmp/slide_region.png")
    rgb = _rgb(shot).astype(int)
    centre = rgb[300:400, 400:600]
    assert centre.std() > 5 and abs(centre.mean() - 42) > 60  # tissue, not the empty backdrop
    assert source.requests_made < source.frames_fetched  # several frames per request

    r, g, b = tumor.colour

    def outline_pixels(img: QImage) -> int:
        px = _rgb(img).astype(int)
        return int((np.abs(px - np.array([r, g, b])).sum(axis=2) < 30).sum())

    with_outline = outline_pixels(shot)
    viewer.set_group_visible(tumor.number, False)
    hidden = viewer.grab().toImage()
    assert outline_pixels(hidden) < with_outline / 3
    viewer.set_group_visible(tumor.number, True)

    # keyboard: arrows pan, + / - zoom, 0 fits
    cx, scale = viewer.viewport.cx, viewer.viewport.scale
    qtbot.keyClick(viewer, Qt.Key.Key_Right)
    assert viewer.viewport.cx > cx
    qtbot.keyClick(viewer, Qt.Key.Key_Plus)
    assert viewer.viewport.scale < scale
    qtbot.keyClick(viewer, Qt.Key.Key_0)
    assert viewer.viewport.level == 2
    viewer.close()
    source.close()


def test_the_highlight_frame_stays_under_the_minimap(
    qtbot: QtBot, empty_orthanc: OrthancServer, tmp_path: Path
) -> None:
    """The frame around the finding under review is drawn with the overlays: where it
    crosses the minimap, the minimap stays whole (it used to be drawn over it)."""
    slide = generate_slide(SlideSpec(width=2048, height=1536, levels=3, seed=4))
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store(slide.levels)
    source = TileSource(archive, read_pyramid(archive, slide.study_uid, slide.series_uid))
    viewer = HighlightSlideViewer(source)
    show_filled(qtbot, viewer, 900, 600)
    mini = viewer.minimap_rect()
    # a box whose frame runs through the middle of the minimap
    x0, y0 = viewer.viewport.to_base(mini.left() - 120, mini.top() - 40)
    x1, y1 = viewer.viewport.to_base(mini.center().x(), mini.center().y())
    before = _rgb(viewer.grab().toImage())
    viewer.set_highlight((x0, y0, x1, y1))
    after = _rgb(viewer.grab().toImage())
    viewer.grab().save(str(tmp_path / "highlight_and_minimap.png"))
    top, left = int(mini.top()) - 1, int(mini.left()) - 1
    bottom, right = int(mini.bottom()) + 2, int(mini.right()) + 2
    assert np.array_equal(before[top:bottom, left:right], after[top:bottom, left:right])
    changed = np.abs(after.astype(int) - before).sum(axis=2) > 60
    assert changed.sum() > 200  # the frame is drawn, outside the minimap
    viewer.close()
    source.close()
