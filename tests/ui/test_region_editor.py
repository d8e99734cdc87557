"""Region editing on the slice viewer, driven with real Qt mouse and key events under Xvfb."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.archive.volume import ImageVolume, pixel_for_point
from app.domain import Region
from tests.ui.qt_helpers import dispose
from tests.ui.test_slice_viewer import make_volume
from viewers.region_editor import EditorMode
from viewers.region_geometry import (
    drawn_region,
    moved_region,
    moved_vertex,
    plane_points,
    scaled_to_handle,
    shape_box,
)
from viewers.slice_viewer import SliceViewer

pytestmark = pytest.mark.gui

SQUARE = Region(  # pixel edges of a 10x10 block on slice 1; a closed POLYLINE
    "POLYLINE",
    ((10.0, 6.0), (20.0, 6.0), (20.0, 16.0), (10.0, 16.0), (10.0, 6.0)),
    referenced_sop_uid="1.2.3.1",
    referenced_sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
)


@pytest.fixture()
def viewer(qtbot: QtBot) -> Iterator[SliceViewer]:
    widget = SliceViewer()
    widget.resize(420, 420)
    widget.show()
    qtbot.waitExposed(widget)
    pixels = np.zeros((3, 64, 64))
    pixels[:, 6:16, 10:20] = 1000.0
    widget.show_volume(make_volume(pixels, spacing=(2.0, 0.8, 0.8)), slice_index=0)
    yield widget
    dispose(widget)


# -- helpers --------------------------------------------------------------------------------
def to_widget(viewer: SliceViewer, col: float, row: float) -> QPoint:
    """The logical widget position of SCOORD (col, row) on the shown slice."""
    assert viewer.volume is not None
    _, dy, dx = viewer.volume.spacing
    x, y = viewer.world_to_widget((col - 0.5) * dx, (row - 0.5) * dy)
    ratio = viewer.gl_widget.devicePixelRatioF()
    return QPoint(round(x / ratio), round(y / ratio))


def pixels_per_logical_px(viewer: SliceViewer) -> tuple[float, float]:
    """Image pixels (columns, rows) per logical screen pixel at the current zoom."""
    assert viewer.volume is not None
    _, dy, dx = viewer.volume.spacing
    x0, y0 = viewer.world_to_widget(0.0, 0.0)
    x1, y1 = viewer.world_to_widget(10.0, 10.0)
    ratio = viewer.gl_widget.devicePixelRatioF()
    return 10.0 * ratio / (x1 - x0) / dx, 10.0 * ratio / (y1 - y0) / dy


def drag(qtbot: QtBot, viewer: SliceViewer, start: QPoint, path: list[QPoint]) -> None:
    target = viewer.gl_widget
    qtbot.mousePress(target, Qt.MouseButton.LeftButton, pos=start)
    for point in path:
        qtbot.mouseMove(target, point)
    qtbot.mouseRelease(target, Qt.MouseButton.LeftButton, pos=path[-1])


def hover(qtbot: QtBot, viewer: SliceViewer, pos: QPoint, cursor: Qt.CursorShape) -> None:
    """Move the mouse (no button) to ``pos`` and wait for the cursor to become ``cursor``.

    A buttonless QTest move warps the X pointer, so the motion event arrives asynchronously.
    """
    qtbot.mouseMove(viewer.gl_widget, pos)
    qtbot.waitUntil(lambda: viewer.gl_widget.cursor().shape() == cursor, timeout=2000)


def save_png(rgb: np.ndarray, path: Path) -> None:
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).save(str(path))


def coloured(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(int)
    return (rgb.max(axis=2) - rgb.min(axis=2)) > 80


# -- editing --------------------------------------------------------------------------------
def test_drag_inside_moves_the_region_and_enter_keeps_it(
    viewer: SliceViewer, qtbot: QtBot, tmp_path: Path
) -> None:
    editor = viewer.editor
    window = viewer.window_level
    windows: list[tuple[float, float]] = []
    viewer.sig_window_changed.connect(lambda c, w: windows.append((c, w)))
    edited: list[tuple[str, Region]] = []
    editor.sig_region_edited.connect(lambda uid, r: edited.append((uid, r)))

    viewer.set_regions([SQUARE], "uid-1", owners=["uid-1"])
    assert editor.edit("uid-1", SQUARE)
    assert viewer.slice_index == 1  # the editor went to the region's slice
    assert editor.mode == EditorMode.EDIT and editor.active

    viewer.set_text_visible(False)
    rgb = viewer.rendered_rgb()
    save_png(rgb, tmp_path / "editing.png")
    # the yellow edit outline and eight white handles with black borders are on screen
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 180) & (rgb[..., 2] < 100)
    assert yellow.sum() > 50
    corner = to_widget(viewer, 20.0, 16.0)  # bottom-right handle centre
    ratio = viewer.gl_widget.devicePixelRatioF()
    cy, cx = round(corner.y() * ratio), round(corner.x() * ratio)
    assert np.all(rgb[cy - 2:cy + 3, cx - 2:cx + 3] > 240)  # a white handle ...
    assert (rgb[cy - 8:cy + 9, cx - 8:cx + 9].max(axis=2) < 40).any()  # ... with a dark border

    start = to_widget(viewer, 15.0, 11.0)  # the square's centre
    hover(qtbot, viewer, start, Qt.CursorShape.SizeAllCursor)
    drag(qtbot, viewer, start, [start + QPoint(10, 5), start + QPoint(40, 25)])
    assert not edited  # nothing is kept before Enter
    qtbot.keyClick(viewer, Qt.Key.Key_Return)

    assert len(edited) == 1
    uid, region = edited[0]
    per_col, per_row = pixels_per_logical_px(viewer)
    dc, dr = 40 * per_col, 25 * per_row
    assert uid == "uid-1" and region is not SQUARE
    assert region.graphic_type == "POLYLINE"
    assert region.referenced_sop_uid == SQUARE.referenced_sop_uid
    assert region.referenced_sop_class_uid == SQUARE.referenced_sop_class_uid
    assert region.coordinates[0] == region.coordinates[-1]  # still closed
    got = np.array(region.coordinates) - np.array(SQUARE.coordinates)
    assert np.allclose(got, [dc, dr], atol=1e-3), (got, dc, dr)
    # window/level never moved, and the editor is done
    assert viewer.window_level == window and not windows
    assert not editor.active
    assert viewer.gl_widget.cursor().shape() == Qt.CursorShape.ArrowCursor


def test_drag_a_handle_resizes_against_the_opposite_corner(
    viewer: SliceViewer, qtbot: QtBot
) -> None:
    editor = viewer.editor
    edited: list[Region] = []
    editor.sig_region_edited.connect(lambda _uid, r: edited.append(r))
    editor.edit("uid-1", SQUARE)
    handle = to_widget(viewer, 20.0, 16.0)  # bottom-right corner
    hover(qtbot, viewer, handle, Qt.CursorShape.SizeFDiagCursor)
    drag(qtbot, viewer, handle, [handle + QPoint(16, 8), handle + QPoint(32, 16)])
    region = editor.commit()
    assert region is not None and edited == [region]
    per_col, per_row = pixels_per_logical_px(viewer)
    cols = sorted({c for c, _ in region.coordinates})
    rows = sorted({r for _, r in region.coordinates})
    assert cols[0] == 10.0 and rows[0] == 6.0  # the top-left corner did not move
    assert cols[1] == pytest.approx(20.0 + 32 * per_col, abs=1e-3)
    assert rows[1] == pytest.approx(16.0 + 16 * per_row, abs=1e-3)
    assert region.coordinates[0] == region.coordinates[-1]

    # a side handle only changes one side: drag the left side 20 px to the left
    editor.edit("uid-1", region)
    left = to_widget(viewer, 10.0, (rows[0] + rows[1]) / 2)
    hover(qtbot, viewer, left, Qt.CursorShape.SizeHorCursor)
    drag(qtbot, viewer, left, [left - QPoint(20, 0)])
    qtbot.keyClick(viewer, Qt.Key.Key_Enter)
    wider = edited[-1]
    assert min(c for c, _ in wider.coordinates) == pytest.approx(10.0 - 20 * per_col, abs=1e-3)
    assert sorted({r for _, r in wider.coordinates}) == rows


def test_escape_cancels_and_window_level_works_again(viewer: SliceViewer, qtbot: QtBot) -> None:
    editor = viewer.editor
    emitted: list[object] = []
    editor.sig_region_edited.connect(lambda *a: emitted.append(a))
    editor.sig_region_drawn.connect(emitted.append)
    viewer.set_regions([SQUARE], owners=["uid-1"])
    editor.edit("uid-1", SQUARE)
    start = to_widget(viewer, 15.0, 11.0)
    drag(qtbot, viewer, start, [start + QPoint(30, 30)])
    # a left drag outside the region does not touch the window either
    window = viewer.window_level
    drag(qtbot, viewer, QPoint(380, 380), [QPoint(400, 300)])
    assert viewer.window_level == window
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert not editor.active and not emitted

    editor.draw()
    assert viewer.gl_widget.cursor().shape() == Qt.CursorShape.CrossCursor
    drag(qtbot, viewer, QPoint(100, 100), [QPoint(150, 100), QPoint(150, 150), QPoint(100, 150)])
    assert not editor.active and len(emitted) == 1  # that drawing was kept
    editor.draw()
    qtbot.mouseClick(viewer.gl_widget, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseClick(viewer.gl_widget, Qt.MouseButton.LeftButton, pos=QPoint(200, 100))
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert not editor.active and len(emitted) == 1

    drag(qtbot, viewer, QPoint(100, 100), [QPoint(160, 130)])
    center, width = viewer.window_level
    assert (center, width) != window  # the normal left drag is back


def test_the_shown_outline_is_hidden_while_editing_and_back_after(
    viewer: SliceViewer, qtbot: QtBot
) -> None:
    viewer.set_regions([SQUARE], "uid-1", owners=["uid-1"])
    viewer.set_slice(1)
    viewer.set_text_visible(False)
    rgb = viewer.rendered_rgb().astype(int)
    cyan = (rgb[..., 2] > 180) & (rgb[..., 1] > 180) & (rgb[..., 0] < 120)
    assert cyan.any()
    viewer.editor.edit("uid-1", SQUARE)
    rgb = viewer.rendered_rgb().astype(int)
    assert not ((rgb[..., 2] > 180) & (rgb[..., 1] > 180) & (rgb[..., 0] < 120)).any()
    viewer.set_slice(2)  # off the edited slice: no handles
    assert not coloured(viewer.rendered_rgb()).any()
    viewer.set_slice(1)
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    rgb = viewer.rendered_rgb().astype(int)
    assert ((rgb[..., 2] > 180) & (rgb[..., 1] > 180) & (rgb[..., 0] < 120)).any()


def test_editor_keys_win_over_window_shortcuts(viewer: SliceViewer, qtbot: QtBot) -> None:
    """While editing, the viewer accepts ShortcutOverride for Esc/Enter/Backspace, so a
    window-wide shortcut on those keys (the main window has one for Esc) cannot take them.

    (A real shortcut cannot be fired here: Xvfb has no window manager to activate the window.)
    """

    def overridden(key: Qt.Key) -> bool:
        event = QKeyEvent(QEvent.Type.ShortcutOverride, key, Qt.KeyboardModifier.NoModifier)
        event.ignore()
        QApplication.sendEvent(viewer.gl_widget, event)
        return event.isAccepted()

    assert not overridden(Qt.Key.Key_Escape)  # idle: window shortcuts get Esc as before
    viewer.editor.edit("uid-1", SQUARE)
    assert overridden(Qt.Key.Key_Escape) and overridden(Qt.Key.Key_Return)
    assert not overridden(Qt.Key.Key_1)  # window presets etc. are left alone
    qtbot.keyClick(viewer.gl_widget, Qt.Key.Key_Escape)
    assert not viewer.editor.active and not overridden(Qt.Key.Key_Return)


def test_dragging_a_vertex_moves_only_that_vertex(viewer: SliceViewer, qtbot: QtBot) -> None:
    triangle = Region("POLYLINE", ((10.0, 10.0), (30.0, 14.0), (18.0, 30.0), (10.0, 10.0)),
                      referenced_sop_uid="1.2.3.0")
    viewer.editor.edit("t", triangle)
    vertex = to_widget(viewer, 30.0, 14.0)  # the right corner, not under a box handle
    hover(qtbot, viewer, vertex, Qt.CursorShape.PointingHandCursor)
    drag(qtbot, viewer, vertex, [vertex + QPoint(12, -6)])
    region = viewer.editor.commit()
    assert region is not None
    per_col, per_row = pixels_per_logical_px(viewer)
    assert region.coordinates[1] == pytest.approx((30.0 + 12 * per_col, 14.0 - 6 * per_row),
                                                  abs=1e-3)
    assert region.coordinates[0] == region.coordinates[3] == (10.0, 10.0)
    assert region.coordinates[2] == (18.0, 30.0)


def test_a_3d_region_moves_in_mm_within_its_frame_of_reference(
    viewer: SliceViewer, qtbot: QtBot
) -> None:
    region = Region("POLYGON", ((8.0, 8.0, 2.3), (16.0, 8.0, 2.3), (12.0, 14.0, 1.9),
                                (8.0, 8.0, 2.3)), frame_of_reference_uid="1.2.3")
    edited: list[Region] = []
    viewer.editor.sig_region_edited.connect(lambda _uid, r: edited.append(r))
    assert viewer.editor.edit("f", region) and viewer.slice_index == 1  # nearest: z = 2 mm
    centre = to_widget(viewer, 12.0 / 0.8 + 0.5, 10.0 / 0.8 + 0.5)  # mm -> SCOORD on 0.8 mm
    drag(qtbot, viewer, centre, [centre + QPoint(-30, 20)])
    qtbot.keyClick(viewer, Qt.Key.Key_Return)
    per_col, per_row = pixels_per_logical_px(viewer)
    moved = np.array(edited[0].coordinates) - np.array(region.coordinates)
    assert np.allclose(moved, [-30 * per_col * 0.8, 20 * per_row * 0.8, 0.0], atol=1e-3)
    assert edited[0].frame_of_reference_uid == "1.2.3" and edited[0].graphic_type == "POLYGON"


# -- drawing --------------------------------------------------------------------------------
def test_freehand_drawing_makes_a_closed_polyline_on_the_shown_image(
    viewer: SliceViewer, qtbot: QtBot
) -> None:
    viewer.set_slice(2)
    drawn: list[Region] = []
    viewer.editor.sig_region_drawn.connect(drawn.append)
    window = viewer.window_level
    assert viewer.editor.draw()
    path = [QPoint(x, 120) for x in range(120, 260, 10)] + [QPoint(260, y) for y in
                                                            range(120, 220, 10)]
    path += [QPoint(x, 220) for x in range(260, 140, -10)]
    drag(qtbot, viewer, QPoint(110, 120), path)
    assert len(drawn) == 1 and not viewer.editor.active
    region = drawn[0]
    assert region.graphic_type == "POLYLINE" and not region.is_3d
    assert region.referenced_sop_uid == "1.2.3.2"  # the shown slice's image
    assert region.referenced_frame is None
    assert region.coordinates[0] == region.coordinates[-1]
    coords = np.array(region.coordinates)
    assert viewer.volume is not None
    _, dy, dx = viewer.volume.spacing
    ratio = viewer.gl_widget.devicePixelRatioF()
    (x0, y0), (x1, y1) = (viewer.widget_to_world(110 * ratio, 120 * ratio),
                          viewer.widget_to_world(260 * ratio, 220 * ratio))
    want = np.array([x0 / dx + 0.5, y0 / dy + 0.5, x1 / dx + 0.5, y1 / dy + 0.5])
    got = np.concatenate([coords.min(axis=0), coords.max(axis=0)])
    assert np.allclose(got, want, atol=0.01), (got, want)
    assert viewer.window_level == window


def test_click_corners_and_double_click_make_a_polygon(viewer: SliceViewer, qtbot: QtBot) -> None:
    drawn: list[Region] = []
    viewer.editor.sig_region_drawn.connect(drawn.append)
    viewer.editor.draw()
    target = viewer.gl_widget
    for point in (QPoint(100, 100), QPoint(220, 110)):
        qtbot.mouseClick(target, Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseMove(target, QPoint(160, 200))
    qtbot.mouseDClick(target, Qt.MouseButton.LeftButton, pos=QPoint(160, 200))
    assert len(drawn) == 1
    coords = drawn[0].coordinates
    assert len(coords) == 4 and coords[0] == coords[-1]  # three corners, closed
    assert drawn[0].referenced_sop_uid == "1.2.3.0"
    # Backspace takes back a corner; Enter closes
    viewer.editor.draw()
    for point in (QPoint(100, 100), QPoint(220, 110), QPoint(300, 300), QPoint(160, 200)):
        qtbot.mouseClick(target, Qt.MouseButton.LeftButton, pos=point)
    qtbot.keyClick(viewer, Qt.Key.Key_Backspace)
    qtbot.keyClick(viewer, Qt.Key.Key_Return)
    assert len(drawn) == 2 and len(drawn[1].coordinates) == 4


def test_redraw_while_editing_emits_an_edit_on_the_same_image(
    viewer: SliceViewer, qtbot: QtBot
) -> None:
    edited: list[tuple[str, Region]] = []
    drawn: list[Region] = []
    viewer.editor.sig_region_edited.connect(lambda uid, r: edited.append((uid, r)))
    viewer.editor.sig_region_drawn.connect(drawn.append)
    assert viewer.editor.redraw("uid-1", SQUARE)
    assert viewer.editor.mode == EditorMode.REDRAW and viewer.slice_index == 1
    drag(qtbot, viewer, QPoint(60, 60), [QPoint(120, 60), QPoint(120, 120), QPoint(60, 120)])
    assert not drawn and len(edited) == 1
    uid, region = edited[0]
    assert uid == "uid-1" and region.referenced_sop_uid == "1.2.3.1"
    assert region.referenced_sop_class_uid == SQUARE.referenced_sop_class_uid


def test_multiframe_and_3d_only_volumes(qtbot: QtBot, viewer: SliceViewer) -> None:
    vol = make_volume(np.zeros((3, 32, 32)))
    vol.sop_uids = ("1.2.9",) * 3
    vol.frames = (1, 2, 3)
    viewer.show_volume(vol, slice_index=1)
    drawn: list[Region] = []
    viewer.editor.sig_region_drawn.connect(drawn.append)
    viewer.editor.draw()
    drag(qtbot, viewer, QPoint(100, 100), [QPoint(200, 100), QPoint(200, 200), QPoint(100, 200)])
    assert drawn[-1].referenced_sop_uid == "1.2.9" and drawn[-1].referenced_frame == 2

    vol3 = make_volume(np.zeros((3, 32, 32)))
    vol3.sop_uids = ("",) * 3
    viewer.show_volume(vol3, slice_index=2)
    viewer.editor.draw()
    drag(qtbot, viewer, QPoint(100, 100), [QPoint(200, 100), QPoint(200, 200), QPoint(100, 200)])
    region = drawn[-1]
    assert region.is_3d and region.graphic_type == "POLYGON"
    assert region.frame_of_reference_uid == "1.2.3"
    assert region.coordinates[0] == region.coordinates[-1]
    assert {p[2] for p in region.coordinates} == {4.0}  # on slice 2's plane (z = 2 * 2 mm)


# -- geometry, no display -------------------------------------------------------------------
def _volume() -> ImageVolume:
    return make_volume(np.zeros((4, 20, 20)), spacing=(2.0, 0.5, 0.5))


def test_3d_region_moves_within_the_slice_plane() -> None:
    vol = _volume()
    region = Region("POLYGON", ((1.0, 1.0, 4.2), (3.0, 1.0, 4.2), (3.0, 2.0, 3.8), (1.0, 1.0, 4.2)),
                    frame_of_reference_uid="1.2.3")
    base = plane_points(vol, region)
    assert np.allclose(base[0], [1.0, 1.0])  # world mm of this viewer = patient x, y here
    moved = moved_region(vol, region, base, base + [2.0, -0.5])
    got = np.array(moved.coordinates) - np.array(region.coordinates)
    assert np.allclose(got, [2.0, -0.5, 0.0])  # z (off-plane) kept
    assert moved.frame_of_reference_uid == "1.2.3" and moved.graphic_type == "POLYGON"
    assert pixel_for_point(vol, moved.coordinates[0]) == pytest.approx((6.5, 1.5))


def test_unmoved_points_keep_their_exact_values() -> None:
    vol = _volume()
    region = Region("POLYLINE", ((1.123456, 2.0), (5.0, 2.0), (5.0, 7.0)), referenced_sop_uid="x")
    base = plane_points(vol, region)
    points = moved_vertex("POLYLINE", base, 2, np.array([1.0, 0.0]), 0.5)
    moved = moved_region(vol, region, base, points)
    assert moved.coordinates[:2] == region.coordinates[:2]
    assert moved.coordinates[2] == pytest.approx((7.0, 7.0))


def test_circle_ellipse_and_closed_polyline_shapes_stay_valid() -> None:
    circle = np.array([[10.0, 10.0], [13.0, 10.0]])
    box = shape_box("CIRCLE", circle)
    assert np.allclose(box, [7, 7, 13, 13])
    bigger = scaled_to_handle("CIRCLE", circle, box, (1, 1), np.array([2.0, 1.0]), 0.5)
    assert np.allclose(bigger[0], [10, 10]) and np.allclose(bigger[1], [15.0, 10.0])

    # a rotated ellipse: its axes stay perpendicular and centred when an end is dragged
    ellipse = np.array([[0.0, 0.0], [4.0, 4.0], [3.0, 1.0], [1.0, 3.0]])
    out = moved_vertex("ELLIPSE", ellipse, 1, np.array([1.0, 1.0]), 0.5)
    centre = (out[0] + out[1]) / 2
    assert np.allclose(centre, [2.0, 2.0]) and np.allclose((out[2] + out[3]) / 2, centre)
    assert abs(np.dot(out[1] - out[0], out[3] - out[2])) < 1e-9
    assert np.linalg.norm(out[1] - out[0]) == pytest.approx(np.linalg.norm([6.0, 6.0]))

    ring = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 0.0]])
    out = moved_vertex("POLYLINE", ring, 0, np.array([-1.0, -1.0]), 0.5)
    assert np.array_equal(out[0], out[-1]) and np.allclose(out[0], [-1, -1])
    # a handle never flips the shape inside out
    flat = scaled_to_handle("POLYLINE", ring, shape_box("POLYLINE", ring), (1, 0),
                            np.array([-50.0, 0.0]), 0.5)
    assert flat[:, 0].max() - flat[:, 0].min() == pytest.approx(0.5)


def test_drawn_region_needs_somewhere_to_live() -> None:
    vol = _volume()
    vol.sop_uids = ("",) * 4
    vol.frame_of_reference_uid = ""
    assert drawn_region(vol, 0, np.array([[0, 0], [1, 0], [1, 1.0]])) is None
