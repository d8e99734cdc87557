"""The VTK slice viewer, driven with real Qt events under Xvfb, checked on rendered pixels."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.archive.volume import ImageVolume
from app.domain import Region
from tests.ui.qt_helpers import dispose
from viewers.region_overlay import region_outlines
from viewers.slice_annotations import opposite_label, orientation_label
from viewers.slice_viewer import PRESETS, SliceViewer

pytestmark = pytest.mark.gui


def make_volume(pixels: np.ndarray, *, spacing: tuple[float, float, float] = (2.0, 1.0, 1.0),
                window: tuple[float, float] = (40.0, 80.0)) -> ImageVolume:
    z = pixels.shape[0]
    return ImageVolume(
        pixels=pixels.astype(np.float32),
        sop_uids=tuple(f"1.2.3.{k}" for k in range(z)),
        frames=(None,) * z,
        positions=np.array([[0.0, 0.0, spacing[0] * k] for k in range(z)]),
        spacing=spacing,
        origin=(0.0, 0.0, 0.0),
        row_cosines=(1.0, 0.0, 0.0),
        col_cosines=(0.0, 1.0, 0.0),
        frame_of_reference_uid="1.2.3",
        modality="CT",
        window_center=window[0],
        window_width=window[1],
        description="Test series",
    )


@pytest.fixture()
def viewer(qtbot: QtBot) -> Iterator[SliceViewer]:
    widget = SliceViewer()
    widget.resize(420, 420)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    dispose(widget)


def test_scroll_keys_and_wheel_change_the_slice(viewer: SliceViewer, qtbot: QtBot) -> None:
    viewer.show_volume(make_volume(np.zeros((30, 16, 16))))
    assert viewer.slice_index == 15  # the middle slice
    seen: list[int] = []
    viewer.sig_slice_changed.connect(seen.append)
    for key, expected in (
        (Qt.Key.Key_Down, 16),
        (Qt.Key.Key_Up, 15),
        (Qt.Key.Key_PageDown, 18),
        (Qt.Key.Key_PageUp, 15),
        (Qt.Key.Key_End, 29),
        (Qt.Key.Key_Down, 29),  # clamped, no signal
        (Qt.Key.Key_Home, 0),
    ):
        qtbot.keyClick(viewer, key)
        assert viewer.slice_index == expected, key
    assert seen == [16, 15, 18, 15, 29, 0]
    wheel = QWheelEvent(
        QPointF(50, 50), QPointF(viewer.mapToGlobal(QPoint(50, 50))), QPoint(0, 0),
        QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(viewer._vtk, wheel)  # the GL child gets the real wheel events
    assert viewer.slice_index == 1


def test_presets_reset_and_drag_change_window(viewer: SliceViewer, qtbot: QtBot) -> None:
    viewer.show_volume(make_volume(np.zeros((3, 16, 16)), window=(300.0, 1200.0)))
    assert viewer.window_level == (300.0, 1200.0)
    with qtbot.waitSignal(viewer.sig_window_changed) as blocker:
        qtbot.keyClick(viewer, Qt.Key.Key_1)
    assert blocker.args == [40.0, 80.0]
    for n, (_, center, width) in enumerate(PRESETS):
        qtbot.keyClick(viewer, getattr(Qt.Key, f"Key_{n + 1}"))
        assert viewer.window_level == (center, width)
    assert viewer.window_level == (60.0, 160.0)  # 8: liver
    qtbot.keyClick(viewer, Qt.Key.Key_R)
    assert viewer.window_level == (300.0, 1200.0)
    target = viewer._vtk
    qtbot.mousePress(target, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(target, QPoint(160, 130))
    qtbot.mouseRelease(target, Qt.MouseButton.LeftButton, pos=QPoint(160, 130))
    center, width = viewer.window_level
    assert width > 1200.0 and center > 300.0  # right widens, down raises the level


def _coloured(rgb: np.ndarray) -> np.ndarray:
    """Pixels that are clearly not grey (the image is grey; outlines are amber or cyan)."""
    rgb = rgb.astype(int)
    return (rgb.max(axis=2) - rgb.min(axis=2)) > 80


def test_region_outline_lands_on_its_pixels_right_side_up(viewer: SliceViewer) -> None:
    """A white 10x10 pixel square in the top-left quadrant, and a polygon whose SCOORD corners
    are that square's pixel edges: on screen the outline must hug the white square, and the
    square must be top-left (rows go down the screen, columns to the right)."""
    pixels = np.zeros((3, 64, 64))
    rows, cols = slice(6, 16), slice(10, 20)
    pixels[1, rows, cols] = 1000.0
    viewer.show_volume(make_volume(pixels), slice_index=1)
    viewer.set_text_visible(False)  # white text would count as white pixels
    corners = ((10.0, 6.0), (20.0, 6.0), (20.0, 16.0), (10.0, 16.0))  # SCOORD: pixel edges
    viewer.set_regions([Region("POLYGON", corners, referenced_sop_uid="1.2.3.1")])
    rgb = viewer.rendered_rgb()
    h, w, _ = rgb.shape

    white = np.all(rgb > 200, axis=2)
    ys, xs = np.nonzero(white)
    assert ys.size > 0, "the white square is not on screen"
    outline = _coloured(rgb)
    oy, ox = np.nonzero(outline)
    assert oy.size > 0, "no outline drawn"
    # right side up: the square is in the top-left quadrant of the (square) view
    assert ys.mean() < h / 2 and xs.mean() < w / 2
    # the outline's box matches the white square's box to within ~1 image pixel (6 px here)
    px = (min(w, h) / 64.0)
    for got, want in ((oy.min(), ys.min()), (oy.max(), ys.max()), (ox.min(), xs.min()),
                      (ox.max(), xs.max())):
        assert abs(int(got) - int(want)) <= 1.2 * px
    # the outline is where VTK says the polygon's corners are
    x0, y0 = viewer.world_to_widget(9.5, 5.5)  # SCOORD (10, 6) -> world (9.5, 5.5) mm
    assert abs(ox.min() - x0) <= 2 and abs(oy.min() - y0) <= 2
    # on another slice the region is not drawn
    viewer.set_slice(0)
    assert not _coloured(viewer.rendered_rgb()).any()


def test_highlight_and_3d_marker_on_nearest_slice(viewer: SliceViewer) -> None:
    vol = make_volume(np.zeros((5, 32, 32)))
    point = Region("POINT", ((8.0, 8.0, 2.0 * 3 + 0.4),), frame_of_reference_uid="1.2.3")
    square = Region("POLYGON", ((2, 2), (6, 2), (6, 6), (2, 6)), referenced_sop_uid="1.2.3.3")
    assert [len(region_outlines([point], vol, k)) for k in range(5)] == [0, 0, 0, 3, 0]
    lit = region_outlines([point, square], vol, 3, owners=["a", "b"], highlight="b")
    assert [o.highlight for o in lit] == [False, False, False, True]
    viewer.show_volume(vol, slice_index=3)
    viewer.set_regions([point, square], "b", owners=["a", "b"])
    rgb = viewer.rendered_rgb().astype(int)
    cyan = (rgb[..., 2] > 180) & (rgb[..., 1] > 180) & (rgb[..., 0] < 120)
    amber = (rgb[..., 0] > 180) & (rgb[..., 2] < 100)
    assert cyan.any() and amber.any()


def test_clear_shows_a_message_and_no_image(viewer: SliceViewer, qtbot: QtBot) -> None:
    viewer.show_volume(make_volume(np.full((2, 16, 16), 1000.0)))
    qtbot.keyClick(viewer, Qt.Key.Key_T)  # text off
    assert np.all(viewer.rendered_rgb() > 200, axis=2).mean() > 0.3
    viewer.clear("Cannot show this series")
    assert viewer.volume is None
    assert np.all(viewer.rendered_rgb() > 200, axis=2).mean() < 0.05


def test_orientation_labels() -> None:
    assert opposite_label("LF") == "RH"
    assert orientation_label((-1, 0, 0)) == "R"
    assert orientation_label((0, 0, -1)) == "F"
    assert orientation_label((0.7, 0.7, 0)) in ("LP", "PL")
