"""The slide region editor driven by real mouse and key events (QTest): drag a vertex,
Enter keeps it, Esc drops it, Backspace removes a vertex, clicks draw a polygon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.archive.slide_pyramid import SlideLevel, SlidePyramid
from app.archive.tiles import TileSource
from app.domain import Region
from app.errors import ArchiveError
from viewers.slide_editor import SlideEditMode
from viewers.slide_viewer import SlideViewer

IMAGE = "1.2.826.0.1.3680043.8.498.1"
SQUARE = Region("POLYGON", ((400.0, 300.0), (600.0, 300.0), (600.0, 500.0), (400.0, 500.0)), IMAGE)


class _NoTiles:
    """An archive that has no frames: the view shows its blank backdrop."""

    def retrieve_frames(self, *args: object, **kwargs: object) -> list[bytes]:
        raise ArchiveError("no frames here")


@pytest.fixture()
def viewer(qtbot: QtBot) -> Iterator[SlideViewer]:
    levels = tuple(
        SlideLevel(f"{IMAGE}.{i}", 1500 // 2**i, 1100 // 2**i, 256, 256, 1, (0.00025 * 2**i,) * 2)
        for i in range(3)
    )
    source = TileSource(_NoTiles(), SlidePyramid("1.2.3", "1.2.3.4", levels))  # type: ignore[arg-type]
    view = SlideViewer(source)
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    yield view
    view.close()
    source.close()


def _screen(view: SlideViewer, point: tuple[float, float]) -> QPoint:
    ((x, y),) = view.viewport.to_screen(np.array([point], dtype=np.float64))
    return QPoint(round(x), round(y))


def _drag(view: SlideViewer, start: QPoint, end: QPoint) -> None:
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(view, (start + end) / 2)
    QTest.mouseMove(view, end)
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def test_drag_a_vertex_and_keep_it(viewer: SlideViewer, qtbot: QtBot, tmp_path: Path) -> None:
    editor = viewer.editor
    assert editor.edit("uid-1", SQUARE)
    assert editor.mode is SlideEditMode.EDIT
    start = _screen(viewer, SQUARE.coordinates[0])
    assert 0 < start.x() < 800 and 0 < start.y() < 600  # flown to the region
    end = start + QPoint(40, 25)
    _drag(viewer, start, end)
    viewer.grab().save(str(tmp_path / "slide_editor.png"))
    expected = viewer.viewport.to_base(end.x(), end.y())
    with qtbot.waitSignal(editor.sig_region_edited, timeout=2000) as blocker:
        QTest.keyClick(viewer, Qt.Key.Key_Return)
    uid, region = blocker.args
    assert uid == "uid-1" and region.graphic_type == "POLYGON"
    assert region.referenced_sop_uid == IMAGE
    assert region.coordinates[0] == pytest.approx(expected, abs=0.05)
    assert region.coordinates[1:] == SQUARE.coordinates[1:]
    assert not editor.active


def test_esc_cancels_and_a_drag_elsewhere_pans(viewer: SlideViewer, qtbot: QtBot) -> None:
    editor = viewer.editor
    editor.edit("uid-1", SQUARE)
    cx = viewer.viewport.cx
    _drag(viewer, QPoint(700, 550), QPoint(650, 550))  # no vertex there: the view pans
    assert viewer.viewport.cx > cx
    start = _screen(viewer, SQUARE.coordinates[2])
    _drag(viewer, start, start + QPoint(-30, -30))
    edited: list[object] = []
    editor.sig_region_edited.connect(lambda *a: edited.append(a))
    QTest.keyClick(viewer, Qt.Key.Key_Escape)
    assert not editor.active and edited == []


def test_backspace_removes_the_hovered_vertex(viewer: SlideViewer, qtbot: QtBot) -> None:
    editor = viewer.editor
    editor.edit("uid-1", SQUARE)
    QTest.mouseMove(viewer, _screen(viewer, SQUARE.coordinates[1]))
    QTest.keyClick(viewer, Qt.Key.Key_Backspace)
    QTest.mouseMove(viewer, _screen(viewer, SQUARE.coordinates[2]))
    QTest.keyClick(viewer, Qt.Key.Key_Backspace)  # a polygon keeps three vertices
    with qtbot.waitSignal(editor.sig_region_edited, timeout=2000) as blocker:
        QTest.keyClick(viewer, Qt.Key.Key_Enter)
    _uid, region = blocker.args
    assert region.coordinates == (SQUARE.coordinates[0], *SQUARE.coordinates[2:])


def test_draw_a_polygon_by_clicks(viewer: SlideViewer, qtbot: QtBot) -> None:
    editor = viewer.editor
    assert editor.draw(IMAGE)
    clicks = [QPoint(200, 200), QPoint(320, 210), QPoint(300, 330), QPoint(500, 500)]
    for p in clicks:
        QTest.mouseClick(viewer, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    QTest.keyClick(viewer, Qt.Key.Key_Backspace)  # takes back the last corner
    with qtbot.waitSignal(editor.sig_region_drawn, timeout=2000) as blocker:
        QTest.mouseClick(  # a click on the first corner closes it
            viewer, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, clicks[0]
        )
    (region,) = blocker.args
    assert region.graphic_type == "POLYGON" and region.referenced_sop_uid == IMAGE
    expected = [viewer.viewport.to_base(p.x(), p.y()) for p in clicks[:3]]
    np.testing.assert_allclose(region.coordinates, expected, atol=0.05)
    assert not editor.active

    editor.draw(IMAGE, owner="uid-9")  # a redraw ends as an edit of that finding
    for p in clicks[:3]:
        QTest.mouseClick(viewer, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    with qtbot.waitSignal(editor.sig_region_edited, timeout=2000) as blocker:
        QTest.keyClick(viewer, Qt.Key.Key_Return)
    assert blocker.args[0] == "uid-9"


def test_points_move_and_go_one_by_one(viewer: SlideViewer, qtbot: QtBot) -> None:
    editor = viewer.editor
    cells = Region("MULTIPOINT", ((450.0, 350.0), (500.0, 400.0), (560.0, 380.0)), IMAGE)
    assert editor.edit("cells", cells)
    QTest.mouseMove(viewer, _screen(viewer, cells.coordinates[1]))
    QTest.keyClick(viewer, Qt.Key.Key_Delete)
    start = _screen(viewer, cells.coordinates[2])
    _drag(viewer, start, start + QPoint(10, 0))
    with qtbot.waitSignal(editor.sig_region_edited, timeout=2000) as blocker:
        QTest.keyClick(viewer, Qt.Key.Key_Return)
    _uid, region = blocker.args
    assert region.graphic_type == "MULTIPOINT" and len(region.coordinates) == 2
    assert region.coordinates[0] == cells.coordinates[0]
    assert region.coordinates[1][0] > cells.coordinates[2][0]


def test_what_cannot_be_edited(viewer: SlideViewer) -> None:
    assert not viewer.editor.edit("uid-1", Region("ELLIPSE", ((1.0, 2.0),) * 4, IMAGE))
    assert not viewer.editor.edit("uid-1", Region("POINT", ((1.0, 2.0),), IMAGE))
    assert not viewer.editor.active


def test_set_groups_keeps_visibility_and_tells(viewer: SlideViewer, qtbot: QtBot) -> None:
    from app.domain import Code
    from app.results.ann_reader import AnnotationGroupInfo

    code = Code("1", "99X", "x")

    def group(number: int, x: float) -> AnnotationGroupInfo:
        shape = np.array([[x, 10.0], [x + 50, 10.0], [x + 50, 60.0]], dtype=np.float32)
        return AnnotationGroupInfo(
            number, f"g{number}", "g", code, code, "POLYGON", (255, 0, 0), (shape,), None
        )

    first = group(1, 10.0)
    viewer.set_groups([first])
    viewer.set_group_visible(1, False)
    layer = viewer.layers[0]
    with qtbot.waitSignal(viewer.sig_groups_changed, timeout=1000):
        viewer.set_groups([first, group(2, 100.0)])
    assert viewer.layers[0] is layer  # unchanged group: same layer
    moved = group(1, 20.0)
    viewer.set_groups([moved, group(2, 100.0)])
    assert viewer.layers[0].group is moved and not viewer.layers[0].visible
    assert viewer.layers[1].visible
