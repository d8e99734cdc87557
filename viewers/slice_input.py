"""Keys, wheel and drags of the slice viewer, handled in Qt.

The viewer installs ``SliceInput.event_filter`` on its VTK widget, so keys and
drags behave the same whether the VTK widget or its frame has focus, and tests
drive the viewer with ordinary Qt events. The region editor sees each event
first; what it does not take scrolls, windows, zooms or pans the view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

from viewers.pixel_readout import pixel_readout
from viewers.reformat import AXIAL, CORONAL, SAGITTAL

if TYPE_CHECKING:
    from viewers.slice_viewer import SliceViewer

# name, centre, width (Hounsfield units); keys 1..8
PRESETS: tuple[tuple[str, float, float], ...] = (
    ("Brain", 40.0, 80.0),
    ("Subdural", 75.0, 215.0),
    ("Stroke", 40.0, 40.0),
    ("Bone", 600.0, 2800.0),
    ("Lung", -600.0, 1500.0),
    ("Mediastinum", 50.0, 350.0),
    ("Abdomen", 60.0, 400.0),
    ("Liver", 60.0, 160.0),
)
PLANE_KEYS = {Qt.Key.Key_A: AXIAL, Qt.Key.Key_C: CORONAL, Qt.Key.Key_S: SAGITTAL}  # with Shift


def is_plane_key(event: QKeyEvent) -> bool:
    """Shift+A / Shift+C / Shift+S (keypad modifier ignored)."""
    mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    return mods == Qt.KeyboardModifier.ShiftModifier and event.key() in PLANE_KEYS


class SliceInput:
    """Turns the reader's keys, wheel and drags into viewer calls."""

    def __init__(self, viewer: SliceViewer) -> None:
        self._viewer = viewer
        self._drag_button: Qt.MouseButton | None = None
        self._drag_last = QPoint()
        self._drag_scroll = -1.0  # >= 0: Shift+left drag, pixels not yet turned into slices

    def event_filter(self, event: QEvent) -> bool | None:
        """Handle an event of the VTK widget: True/False when handled here, None to pass on."""
        v = self._viewer
        kind = event.type()
        if kind == QEvent.Type.KeyPress:
            return self.key(event)  # type: ignore[arg-type]
        if kind == QEvent.Type.ShortcutOverride and (
            v.editor.wants_key(event.key())  # type: ignore[attr-defined]
            or is_plane_key(event)  # type: ignore[arg-type]
        ):
            event.accept()  # Esc/Enter reach the editor before any window shortcut
            return True
        if kind == QEvent.Type.MouseButtonDblClick:
            v.editor.handle_double_click(event)  # type: ignore[arg-type]
            return True
        if kind == QEvent.Type.Wheel:
            self.wheel(event)  # type: ignore[arg-type]
            return True
        if kind == QEvent.Type.MouseButtonPress:
            self.press(event)  # type: ignore[arg-type]
            return True
        if kind == QEvent.Type.MouseMove:
            self.move(event)  # type: ignore[arg-type]
            return True
        if kind == QEvent.Type.MouseButtonRelease:
            self.release(event)  # type: ignore[arg-type]
            return True
        if kind == QEvent.Type.Leave:
            v.set_readout("")
        elif kind == QEvent.Type.Resize:
            v.gl_resized()
        return None

    def key(self, event: QKeyEvent) -> bool:
        v = self._viewer
        key = event.key()
        if v.editor.handle_key(event):
            return True
        plane = v.plane
        if v.volume is None or plane is None:
            return False
        if is_plane_key(event):
            v.set_plane(PLANE_KEYS[Qt.Key(key)])
            return True
        n, index = plane.count, v.slice_index
        page = max(1, n // 10)
        moves: dict[int, int] = {
            Qt.Key.Key_Down: index + 1,
            Qt.Key.Key_Up: index - 1,
            Qt.Key.Key_PageDown: index + page,
            Qt.Key.Key_PageUp: index - page,
            Qt.Key.Key_Home: 0,
            Qt.Key.Key_End: n - 1,
        }
        if key in moves:
            v.set_slice(moves[key])
            return True
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_8:
            _, center, width = PRESETS[key - Qt.Key.Key_1]
            v.set_window(center, width)
            return True
        if key == Qt.Key.Key_T:
            v.set_text_visible(not v.text_visible)
            return True
        if key == Qt.Key.Key_R:
            v.reset_window()
            v.reset_view()
            return True
        return False

    def wheel(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        v = self._viewer
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            v.zoom_by(1.1**steps)
        else:
            v.set_slice(v.slice_index - int(np.sign(steps)) * max(1, int(abs(steps))))
        event.accept()

    def press(self, event: QMouseEvent) -> None:
        v = self._viewer
        v.gl_widget.setFocus()
        if v.editor.handle_press(event):
            return
        self._drag_button = event.button()
        self._drag_last = event.position().toPoint()
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self._drag_scroll = 0.0 if shift and event.button() == Qt.MouseButton.LeftButton else -1.0

    def move(self, event: QMouseEvent) -> None:
        v = self._viewer
        if v.editor.handle_move(event):
            return
        if self._drag_button is None or v.volume is None:
            self._update_readout(event)
            return
        pos = event.position().toPoint()
        dx, dy = pos.x() - self._drag_last.x(), pos.y() - self._drag_last.y()
        self._drag_last = pos
        if self._drag_scroll >= 0.0:  # Shift+left drag: one slice per 4 pixels, down = next
            self._drag_scroll += dy / 4.0
            steps = int(self._drag_scroll)
            self._drag_scroll -= steps
            v.set_slice(v.slice_index + steps)
        elif self._drag_button == Qt.MouseButton.LeftButton:
            center, width = v.window_level
            scale = max(width, 10.0) / 300.0
            v.set_window(center + dy * scale, width + dx * scale)
        elif self._drag_button == Qt.MouseButton.RightButton:
            v.zoom_by(1.01 ** (-dy))
        elif self._drag_button == Qt.MouseButton.MiddleButton:
            v.pan_by(dx, dy)

    def release(self, event: QMouseEvent) -> None:
        if self._viewer.editor.handle_release(event):
            return
        self._drag_button = None

    def _update_readout(self, event: QMouseEvent) -> None:
        """The value under the cursor in the corner text (mouse moves with no button)."""
        v = self._viewer
        text = ""
        plane = v.plane
        if plane is not None and v.slice_index >= 0:
            ratio = v.gl_widget.devicePixelRatioF()
            pos = event.position()
            wx, wy = v.widget_to_world(pos.x() * ratio, pos.y() * ratio)
            text = pixel_readout(plane, v.slice_index, wx, wy)
        v.set_readout(text)
