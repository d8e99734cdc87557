"""Run by test_high_dpi in a fresh process with QT_SCALE_FACTOR=2 (Qt reads it at start-up)."""

from __future__ import annotations

import sys

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from tests.ui.test_slice_viewer import make_volume
from viewers.reformat import CORONAL
from viewers.slice_viewer import SliceViewer


def main() -> None:
    app = QApplication(sys.argv)
    viewer = SliceViewer()
    viewer.resize(300, 300)
    viewer.show()
    for _ in range(50):
        app.processEvents()
    ratio = viewer.gl_widget.devicePixelRatioF()
    assert ratio == 2.0, ratio
    pixels = np.zeros((20, 32, 32))
    pixels[2:6, 10:14, 20:26] = 1000.0
    viewer.show_volume(make_volume(pixels))
    assert viewer.set_plane(CORONAL)
    viewer.set_slice(11)
    width, height = viewer.gl_widget.GetRenderWindow().GetSize()
    assert (width, height) == (600, 600), (width, height)
    # the value under a logical mouse position is the pixel drawn there
    x, y = viewer.world_to_widget(22.0, 30.0)  # column 22, row 15 (z 4)
    pos = QPointF(x / ratio, y / ratio)
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        pos,
        pos,
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(viewer.gl_widget, event)
    assert viewer._text.readout == "HU 1000 (x 22, y 11, z 5)", viewer._text.readout
    # the edge letters sit at the edges of the device-pixel view, in doubled fonts
    spots = [a.GetPositionCoordinate().GetValue()[:2] for a in viewer._text.edges]
    (lx, ly), (rx, ry), (tx, ty), (bx, by) = spots
    assert lx < 40 and rx > 540 and abs(ly - 300) < 20 and abs(ry - 300) < 20, spots
    assert ty > 540 and by < 40 and abs(tx - 300) < 20 and abs(bx - 300) < 20, spots  # y up
    assert viewer._text.edges[0].GetTextProperty().GetFontSize() == 28
    # the block is drawn where world_to_widget says, in device pixels
    viewer.set_text_visible(False)
    rgb = viewer.rendered_rgb()
    assert rgb.shape[:2] == (600, 600)
    ys, xs = np.nonzero(np.all(rgb > 200, axis=2))
    left, top = viewer.world_to_widget(19.5, 27.0)
    right, bottom = viewer.world_to_widget(25.5, 35.0)
    row_px = 2.0 / viewer.mm_per_device_pixel()
    for got, want in ((xs.min(), left), (xs.max(), right), (ys.min(), top), (ys.max(), bottom)):
        assert abs(got - want) <= row_px, (got, want)
    viewer.close()
    print("HIGH-DPI OK")


if __name__ == "__main__":
    main()
