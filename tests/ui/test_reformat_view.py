"""Pixel value under the cursor, coronal/sagittal reformats and drag-to-scroll, on rendered pixels."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.domain import Region
from tests.ui.qt_helpers import dispose
from tests.ui.test_slice_viewer import make_volume
from viewers.pixel_readout import pixel_readout
from viewers.reformat import AXIAL, CORONAL, SAGITTAL, Plane
from viewers.slice_annotations import REFORMAT_NOTE
from viewers.slice_viewer import SliceViewer

pytestmark = pytest.mark.gui

BLOCK = (slice(2, 6), slice(10, 14), slice(20, 26))  # z, y, x of a bright block


@pytest.fixture()
def viewer(qtbot: QtBot) -> Iterator[SliceViewer]:
    widget = SliceViewer()
    widget.resize(420, 420)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    dispose(widget)


def _block_volume() -> np.ndarray:
    pixels = np.zeros((20, 32, 32))
    pixels[BLOCK] = 1000.0
    return pixels


def _hover(viewer: SliceViewer, world_x: float, world_y: float) -> None:
    """Move the mouse (no button) over world (x, y) mm of the image on screen."""
    ratio = viewer.gl_widget.devicePixelRatioF()
    x, y = viewer.world_to_widget(world_x, world_y)
    _move(viewer, QPointF(x / ratio, y / ratio))


def _move(viewer: SliceViewer, pos: QPointF) -> None:
    target = viewer.gl_widget
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        pos,
        QPointF(target.mapToGlobal(pos.toPoint())),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, event)


def _bright_box(viewer: SliceViewer) -> tuple[int, int, int, int]:
    rgb = viewer.rendered_rgb()
    ys, xs = np.nonzero(np.all(rgb > 200, axis=2))
    assert ys.size > 0, "the bright block is not on screen"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _edges(viewer: SliceViewer) -> list[str]:
    return [actor.GetInput() for actor in viewer._text.edges]


def test_value_under_the_cursor(viewer: SliceViewer) -> None:
    pixels = np.zeros((3, 32, 64))  # wide: the top of the view holds no image
    pixels[1, 10, 20] = 42.0
    viewer.show_volume(make_volume(pixels), slice_index=1)
    _hover(viewer, 20.0, 10.0)  # column 20, row 10 (1 mm pixels)
    assert viewer._text.readout == "HU 42 (x 20, y 10)"
    assert "HU 42 (x 20, y 10)" in viewer._text.corners.text(1)
    _hover(viewer, 21.0, 10.0)
    assert viewer._text.readout == "HU 0 (x 21, y 10)"
    _move(viewer, QPointF(210.0, 4.0))  # above the image
    assert viewer._text.readout == ""
    assert viewer._text.corners.text(1).startswith("Zoom")
    _hover(viewer, 20.0, 10.0)
    QApplication.sendEvent(viewer.gl_widget, QEvent(QEvent.Type.Leave))
    assert viewer._text.readout == ""


def test_readout_wording_by_modality_and_colour() -> None:
    mr = make_volume(np.full((3, 4, 4), 1234.0))
    mr.modality = "MR"
    assert pixel_readout(Plane(mr), 1, 2.0, 3.0) == "Value 1234 (x 2, y 3)"
    mr.pixels[1, 3, 2] = 0.25
    assert pixel_readout(Plane(mr), 1, 2.0, 3.0) == "Value 0.25 (x 2, y 3)"
    colour = make_volume(np.zeros((3, 4, 4)))
    colour.pixels = np.zeros((3, 4, 4, 3), np.uint8)
    colour.pixels[0, 1, 2] = (200, 10, 30)
    assert pixel_readout(Plane(colour), 0, 2.0, 1.0) == "RGB 200, 10, 30 (x 2, y 1)"
    assert pixel_readout(Plane(colour), 0, -1.0, 1.0) == ""
    assert pixel_readout(Plane(colour), 0, 4.0, 1.0) == ""
    colour.loaded = np.array([False, True, True])
    assert pixel_readout(Plane(colour), 0, 2.0, 1.0) == ""  # still loading


def test_coronal_and_sagittal_put_the_block_where_it_is(viewer: SliceViewer, qtbot: QtBot) -> None:
    """20 axial slices 2 mm apart, 1 mm pixels; a block at z 2..5, y 10..13, x 20..25. Coronal:
    columns are x (patient left on the right), rows are z with the head up, 2 mm each."""
    viewer.show_volume(make_volume(_block_volume()))
    viewer.set_window(500.0, 100.0)
    viewer.set_text_visible(False)  # white text would count as bright pixels
    assert _edges(viewer) == ["R", "L", "A", "P"]
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ShiftModifier)
    plane = viewer.plane
    assert plane is not None and plane.name == CORONAL and plane.count == 32
    assert viewer.window_level == (500.0, 100.0)  # W/L shared between planes
    assert _edges(viewer) == ["R", "L", "H", "F"]
    # zoom: screen pixels per image column (1 mm), not per 2 mm row
    ratio = viewer.gl_widget.devicePixelRatioF()
    assert viewer._zoom_percent() == pytest.approx(100.0 / viewer.mm_per_device_pixel() / ratio)
    viewer.set_slice(11)  # y = 11 cuts the block
    x0, y0, x1, y1 = _bright_box(viewer)
    # block columns 20..25 -> x 19.5..25.5 mm; rows (head up) 19 - z: 14..17 -> y 27..35 mm
    left, top = viewer.world_to_widget(19.5, 27.0)
    right, bottom = viewer.world_to_widget(25.5, 35.0)
    px = 2.0 / viewer.mm_per_device_pixel()  # one 2 mm row, in screen pixels
    for got, want in ((x0, left), (x1, right), (y0, top), (y1, bottom)):
        assert abs(got - want) <= px, (got, want)
    assert (y1 - y0) / (x1 - x0) == pytest.approx(8.0 / 6.0, rel=0.2)  # aspect from spacing
    h, w, _ = viewer.rendered_rgb().shape
    assert y0 > h / 2 and x0 > w / 2  # feet-ward (low z) is down, patient left is right
    viewer.set_slice(20)  # past the block
    assert not np.all(viewer.rendered_rgb() > 200, axis=2).any()
    # outlines are of the acquired slices: none here, and the corner text says so
    viewer.set_text_visible(True)
    assert REFORMAT_NOTE in viewer._text.corners.text(2)
    assert "Coronal 21/32" in viewer._text.corners.text(0)

    qtbot.keyClick(viewer, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
    assert viewer.plane is not None and viewer.plane.name == SAGITTAL
    assert _edges(viewer) == ["A", "P", "H", "F"]
    viewer.set_slice(22)  # x = 22
    viewer.set_text_visible(False)
    x0, y0, x1, y1 = _bright_box(viewer)
    left, top = viewer.world_to_widget(9.5, 27.0)  # columns are y 10..13
    right, bottom = viewer.world_to_widget(13.5, 35.0)
    for got, want in ((x0, left), (x1, right), (y0, top), (y1, bottom)):
        assert abs(got - want) <= px, (got, want)
    _hover(viewer, 11.0, 30.0)  # row 15 -> z 4
    assert viewer._text.readout == "HU 1000 (x 22, y 11, z 5)"

    qtbot.keyClick(viewer, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    assert viewer.plane is not None and not viewer.plane.reformatted
    assert viewer.plane.name == AXIAL and viewer.slice_index == 10
    assert _edges(viewer) == ["R", "L", "A", "P"]


def test_outlines_hidden_in_reformats(viewer: SliceViewer, qtbot: QtBot) -> None:
    viewer.show_volume(make_volume(np.zeros((5, 32, 32))), slice_index=2)
    square = Region("POLYGON", ((2, 2), (20, 2), (20, 20), (2, 20)), referenced_sop_uid="1.2.3.2")
    viewer.set_regions([square])
    rgb = viewer.rendered_rgb().astype(int)
    coloured = (rgb.max(axis=2) - rgb.min(axis=2)) > 80
    assert coloured.any()
    viewer.set_text_visible(False)
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ShiftModifier)
    for index in range(viewer.plane.count if viewer.plane else 0):
        viewer.set_slice(index)
        rgb = viewer.rendered_rgb().astype(int)
        assert not ((rgb.max(axis=2) - rgb.min(axis=2)) > 80).any()


def test_no_reformat_while_loading_or_for_few_slices(viewer: SliceViewer, qtbot: QtBot) -> None:
    vol = make_volume(np.zeros((10, 16, 16)))
    vol.loaded = np.array([True] * 9 + [False])
    viewer.show_volume(vol)
    qtbot.keyClick(viewer, Qt.Key.Key_C, Qt.KeyboardModifier.ShiftModifier)
    assert viewer.plane is not None and not viewer.plane.reformatted
    vol.loaded[:] = True
    assert viewer.set_plane(CORONAL)
    viewer.show_volume(make_volume(np.zeros((2, 16, 16))))
    assert not viewer.plane.reformatted and not viewer.set_plane(SAGITTAL)


def test_shift_drag_scrolls(viewer: SliceViewer, qtbot: QtBot) -> None:
    viewer.show_volume(make_volume(np.zeros((40, 16, 16))), slice_index=5)
    window = viewer.window_level
    target = viewer.gl_widget
    shift = Qt.KeyboardModifier.ShiftModifier
    qtbot.mousePress(target, Qt.MouseButton.LeftButton, shift, QPoint(100, 100))
    qtbot.mouseMove(target, QPoint(100, 140))
    qtbot.mouseRelease(target, Qt.MouseButton.LeftButton, shift, QPoint(100, 140))
    assert viewer.slice_index == 15  # 40 px down: 10 slices on
    assert viewer.window_level == window  # not a window/level drag


def test_plane_keys_do_not_clash_with_window_keys() -> None:
    from PySide6.QtGui import QKeySequence

    from ui.review_keys import KEYS

    window = {QKeySequence(k).toString() for entry in KEYS for k in entry.keys}
    planes = {QKeySequence(f"Shift+{c}").toString() for c in "ACS"}
    assert planes.isdisjoint(window) and len(planes) == 3
