"""Edit a finding's region on the slice viewer (move, resize, redraw), or draw a new one.

How the reader works it (left button only; middle-drag pan, right-drag zoom, the wheel and the
slice keys keep working, and left-drag window/level is off while the editor is active):

- ``edit(uid, region)``: the viewer goes to the region's slice and shows the region in yellow
  inside a thin box with eight square handles (plus a handle on each vertex of a polygon with
  few vertices; the axis ends of an ellipse). Drag inside the box to move the region, drag a box
  handle to resize it against the opposite side or corner (a circle keeps its centre), drag a
  vertex to move that vertex. Enter keeps the change (``sig_region_edited``); Esc drops it.
- ``draw()``: press, drag around the finding and release: the freehand outline is closed and
  kept at once (``sig_region_drawn``). For a precise polygon, click its corners instead and
  double-click, press Enter or click the first corner again to close it; Backspace takes back
  the last corner. Esc cancels. ``draw()`` while editing redraws that region (its old outline
  stays visible as a guide) and ends with ``sig_region_edited``.

The editor holds only the edit in progress; the caller puts the emitted Region into its model
and calls ``set_findings`` again. Emitted regions keep the input's coordinate system: SCOORD
(column, row) pixels on the same referenced image, or SCOORD3D (x, y, z) mm in the same frame
of reference, moved within the slice plane; a closed POLYLINE stays closed (first == last).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from vtkmodules.vtkCommonCore import vtkCommand

from app.archive.volume import ImageVolume, slice_index_for_region
from app.domain import Region
from viewers.region_geometry import (
    drawn_region,
    is_closed,
    moved_region,
    moved_vertex,
    plane_points,
    scaled_to_handle,
    shape_box,
)
from viewers.region_overlay import EditOverlay, Handle, Outline, region_outlines

if TYPE_CHECKING:
    from viewers.slice_viewer import SliceViewer

HANDLE_PX = 9  # handle side, logical pixels
VERTEX_PX = 7
GRAB_PX = 7  # how near (logical pixels) a press must be to grab a handle
MAX_VERTEX_HANDLES = 16
_BOX_HANDLES = ((-1, -1), (1, -1), (1, 1), (-1, 1), (0, -1), (1, 0), (0, 1), (-1, 0))
_CURSORS = {
    (-1, -1): Qt.CursorShape.SizeFDiagCursor, (1, 1): Qt.CursorShape.SizeFDiagCursor,
    (1, -1): Qt.CursorShape.SizeBDiagCursor, (-1, 1): Qt.CursorShape.SizeBDiagCursor,
    (0, -1): Qt.CursorShape.SizeVerCursor, (0, 1): Qt.CursorShape.SizeVerCursor,
    (1, 0): Qt.CursorShape.SizeHorCursor, (-1, 0): Qt.CursorShape.SizeHorCursor,
}
_HINTS = {  # one short line at the bottom edge: the mode and how to leave it
    "edit": "EDIT REGION  ·  Enter keeps  ·  Esc cancels",
    "draw": "DRAW REGION  ·  Esc cancels",
}


class EditorMode(str, enum.Enum):
    IDLE = ""
    EDIT = "edit"  # move/resize an existing region
    DRAW = "draw"  # draw a new region
    REDRAW = "redraw"  # draw a replacement for the region being edited


# -- the editor --------------------------------------------------------------------------------
@dataclass
class _Edit:
    owner: str
    region: Region
    slice_index: int
    base: np.ndarray  # the region's points at the start, world mm


@dataclass
class _Grab:
    kind: str  # "move", "box" or "vertex"
    index: int  # box handle or vertex number
    press: np.ndarray  # world mm where the drag began
    points: np.ndarray  # the shape's points then
    box: np.ndarray


class RegionEditor(QObject):
    """Region editing on one SliceViewer (``viewer.editor``); see the module docstring."""

    sig_region_edited = Signal(str, object)  # tracking UID, the new Region
    sig_region_drawn = Signal(object)  # a new Region
    sig_mode_changed = Signal(str)  # an EditorMode value ("" when done)

    def __init__(self, viewer: SliceViewer) -> None:
        super().__init__(viewer)
        self._viewer = viewer
        self._mode = EditorMode.IDLE
        self._edit: _Edit | None = None
        self._points = np.zeros((0, 2))  # the edited shape now, world mm
        self._grab: _Grab | None = None
        self._stroke: list[np.ndarray] = []  # freehand points while the button is down
        self._clicks: list[np.ndarray] = []  # polygon corners clicked so far
        self._press: np.ndarray | None = None  # device pixels of the press while drawing
        self._hover: np.ndarray | None = None  # world mm under the mouse while drawing
        self._overlay = EditOverlay(viewer.renderer)
        viewer.renderer.AddObserver(vtkCommand.StartEvent, self._on_render_start)
        viewer.sig_slice_changed.connect(self._on_slice_changed)

    # -- public --------------------------------------------------------------------------
    @property
    def mode(self) -> EditorMode:
        return self._mode

    @property
    def active(self) -> bool:
        """True while an edit or a drawing is in progress."""
        return self._mode != EditorMode.IDLE

    @property
    def tracking_uid(self) -> str | None:
        """The finding whose region is being edited or redrawn."""
        return self._edit.owner if self._edit else None

    def current_region(self) -> Region | None:
        """The edited region as it would be kept now (None when not editing)."""
        volume, edit = self._viewer.volume, self._edit
        if volume is None or edit is None:
            return None
        return moved_region(volume, edit.region, edit.base, self._points)

    def edit(self, tracking_uid: str, region: Region) -> bool:
        """Start moving/resizing ``region`` on its slice; False if it is not in the volume."""
        volume = self._viewer.volume
        index = (
            slice_index_for_region(volume, region)
            if volume is not None and region.coordinates else None
        )
        if volume is None or index is None:
            return False
        self._reset()
        self._viewer.set_slice(index)
        self._edit = _Edit(tracking_uid, region, index, plane_points(volume, region))
        self._points = self._edit.base.copy()
        self._viewer.set_hidden_region(tracking_uid, region)
        self._set_mode(EditorMode.EDIT)
        return True

    def draw(self) -> bool:
        """Draw a new region on the shown slice, or, while editing, a replacement outline.

        False when there is nothing to draw on (no volume, or a slice with neither a SOP
        Instance UID nor a frame of reference).
        """
        volume = self._viewer.volume
        if volume is None:
            return False
        if self._edit is not None:
            self._grab = None
            self._points = self._edit.base.copy()
            self._viewer.set_slice(self._edit.slice_index)
            self._viewer.set_hidden_region(None, None)  # the old outline guides the new one
            self._set_mode(EditorMode.REDRAW)
            return True
        index = self._viewer.slice_index
        if not volume.sop_uids[index] and not volume.frame_of_reference_uid:
            return False
        self._reset()
        self._set_mode(EditorMode.DRAW)
        return True

    def redraw(self, tracking_uid: str, region: Region) -> bool:
        """Draw a replacement for ``region`` on its slice (``edit`` then ``draw``)."""
        return self.edit(tracking_uid, region) and self.draw()

    def commit(self) -> Region | None:
        """Keep the edit (or close the clicked polygon) and emit it; None if nothing to keep."""
        edit = self._edit
        if self._mode == EditorMode.EDIT and edit is not None:
            region = self.current_region()
            self._finish()
            if region is not None and region.coordinates != edit.region.coordinates:
                self.sig_region_edited.emit(edit.owner, region)
                return region
            return None
        if self._mode in (EditorMode.DRAW, EditorMode.REDRAW) and len(self._clicks) >= 3:
            return self._emit_drawn(np.array(self._clicks))
        return None

    def cancel(self) -> None:
        """Drop the edit or drawing in progress; nothing is emitted."""
        if self.active:
            self._finish()

    # -- hooks the viewer calls (True: the event was used) -----------------------------------
    def handle_key(self, event: QKeyEvent) -> bool:
        if not self.active:
            return False
        key = event.key()
        if key == Qt.Key.Key_Escape:
            self.cancel()
            return True
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.commit()
            return True
        if key == Qt.Key.Key_Backspace and self._mode != EditorMode.EDIT:
            if self._clicks:
                self._clicks.pop()
                self._viewer.render()
            return True
        return False

    def wants_key(self, key: int) -> bool:
        """Keys the editor takes before any window shortcut while it is active."""
        keys = [Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter]
        if self._mode in (EditorMode.DRAW, EditorMode.REDRAW):
            keys.append(Qt.Key.Key_Backspace)
        return key in keys if self.active else False

    def handle_press(self, event: QMouseEvent) -> bool:
        if not self.active or event.button() != Qt.MouseButton.LeftButton:
            return False
        if not self._on_edit_slice():
            return True  # no window/level while editing, even on another slice
        device = self._device(event)
        world = self._world(device)
        if self._mode == EditorMode.EDIT:
            self._grab = self._grab_at(device, world)
            return True
        self._press = device
        if not self._clicks:
            self._stroke = [world]
        return True

    def handle_move(self, event: QMouseEvent) -> bool:
        if not self.active:
            return False
        device = self._device(event)
        world = self._world(device)
        if self._mode == EditorMode.EDIT:
            if self._grab is None:
                self._set_cursor(self._cursor_at(device, world))
                return False
            self._points = self._dragged(self._grab, world)
            self._viewer.render()
            return True
        self._set_cursor(Qt.CursorShape.CrossCursor)
        self._hover = world
        if self._press is not None and self._stroke:
            if np.linalg.norm(world - self._stroke[-1]) >= 2.0 * self._mm_per_px():
                self._stroke.append(world)
            self._viewer.render()
            return True
        if self._clicks:
            self._viewer.render()
        return False

    def handle_release(self, event: QMouseEvent) -> bool:
        if not self.active or event.button() != Qt.MouseButton.LeftButton:
            return False
        if self._mode == EditorMode.EDIT:
            self._grab = None
            return True
        if self._press is None:
            return True
        world = self._world(self._device(event))
        stroke, self._stroke, self._press = self._stroke, [], None
        if len(stroke) >= 3 and self._extent(np.array(stroke)) >= 4.0 * self._mm_per_px():
            self._emit_drawn(np.array(stroke))
            return True
        self._add_click(world)
        return True

    def handle_double_click(self, event: QMouseEvent) -> bool:
        if not self.active or event.button() != Qt.MouseButton.LeftButton:
            return False
        if self._mode != EditorMode.EDIT and self._on_edit_slice():
            self._press, self._stroke = None, []
            self._add_click(self._world(self._device(event)))
            if len(self._clicks) >= 3:
                self._emit_drawn(np.array(self._clicks))
        return True

    # -- internals ---------------------------------------------------------------------
    def _set_mode(self, mode: EditorMode) -> None:
        self._mode = mode
        self._set_cursor(Qt.CursorShape.CrossCursor if mode in (
            EditorMode.DRAW, EditorMode.REDRAW) else None)
        self.sig_mode_changed.emit(mode.value)
        self._viewer.render()

    def _reset(self) -> None:
        self._edit, self._grab, self._press, self._hover = None, None, None, None
        self._points = np.zeros((0, 2))
        self._stroke, self._clicks = [], []

    def _finish(self) -> None:
        self._reset()
        self._viewer.set_hidden_region(None, None)
        self._set_mode(EditorMode.IDLE)

    def _emit_drawn(self, points: np.ndarray) -> Region | None:
        volume, edit = self._viewer.volume, self._edit
        assert volume is not None
        index = edit.slice_index if edit else self._viewer.slice_index
        like = edit.region if edit else None
        region = drawn_region(
            volume, index, points, like=like,
            sop_class_uid=None if like else self._sop_class_uid(volume, index),
        )
        self._finish()
        if region is None:
            return None
        if edit is not None:
            self.sig_region_edited.emit(edit.owner, region)
        else:
            self.sig_region_drawn.emit(region)
        return region

    def _sop_class_uid(self, volume: ImageVolume, index: int) -> str | None:
        """The shown image's SOP Class UID, where the volume or a region on it names it."""
        per_slice = volume.sop_class_uids  # empty for volumes built without them
        if index < len(per_slice) and per_slice[index]:
            return per_slice[index]
        sop = volume.sop_uids[index]
        for region in self._viewer.regions:
            if region.referenced_sop_uid == sop and region.referenced_sop_class_uid:
                return region.referenced_sop_class_uid
        return None

    def _add_click(self, world: np.ndarray) -> None:
        near = GRAB_PX * self._ratio() * self._mm_per_px()
        if self._clicks and np.linalg.norm(world - self._clicks[-1]) < near:
            return  # the second click of a double-click, or a jitter
        if len(self._clicks) >= 3 and np.linalg.norm(world - self._clicks[0]) < near:
            self._emit_drawn(np.array(self._clicks))  # clicked the first corner: close
            return
        self._clicks.append(world)
        self._viewer.render()

    def _on_slice_changed(self, _index: int) -> None:
        if self._mode == EditorMode.DRAW:  # a new outline belongs to one image: start over
            self._stroke, self._clicks, self._press = [], [], None

    def _on_edit_slice(self) -> bool:
        return self._edit is None or self._viewer.slice_index == self._edit.slice_index

    def _kind(self) -> str:
        return self._edit.region.graphic_type.upper() if self._edit else ""

    def _box(self) -> np.ndarray:
        return shape_box(self._kind(), self._points)

    def _vertex_indices(self) -> list[int]:
        """Vertices with their own handle: few, and not under a box handle (which wins)."""
        kind, n = self._kind(), len(self._points)
        if kind == "ELLIPSE" and n >= 4:
            return [0, 1, 2, 3]
        if kind not in ("POLYGON", "POLYLINE", "MULTIPOINT"):
            return []
        count = n - 1 if is_closed(kind, self._points) else n
        if count > MAX_VERTEX_HANDLES:
            return []
        boxes = [c for _, c in self._box_handles()]
        apart = 2 * GRAB_PX * self._ratio() * self._mm_per_px()
        return [i for i in range(count)
                if all(np.linalg.norm(self._points[i] - c) > apart for c in boxes)]

    def _box_handles(self) -> list[tuple[int, np.ndarray]]:
        kind = self._kind()
        if kind == "POINT" or kind == "ELLIPSE" or len(self._points) < 2:
            return []
        x0, y0, x1, y1 = self._box()
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        half = np.array([(x1 - x0) / 2, (y1 - y0) / 2])
        return [(n, centre + np.array(h) * half) for n, h in enumerate(_BOX_HANDLES)]

    def _grab_at(self, device: np.ndarray, world: np.ndarray) -> _Grab | None:
        hit = self._hit(device, world)
        if hit is None:
            return None
        kind, index = hit
        return _Grab(kind, index, world, self._points.copy(), self._box())

    def _hit(self, device: np.ndarray, world: np.ndarray) -> tuple[str, int] | None:
        reach = GRAB_PX * self._ratio()
        for n, centre in self._box_handles():
            if self._device_distance(centre, device) <= reach:
                return "box", n
        for i in self._vertex_indices():
            if self._device_distance(self._points[i], device) <= reach:
                return "vertex", i
        margin = reach * self._mm_per_px()
        x0, y0, x1, y1 = self._box()
        if x0 - margin <= world[0] <= x1 + margin and y0 - margin <= world[1] <= y1 + margin:
            return "move", -1
        return None

    def _dragged(self, grab: _Grab, world: np.ndarray) -> np.ndarray:
        delta = world - grab.press
        kind = self._kind()
        volume = self._viewer.volume
        min_size = min(volume.spacing[1:]) if volume is not None else 1.0
        if grab.kind == "box":
            handle = _BOX_HANDLES[grab.index]
            return scaled_to_handle(kind, grab.points, grab.box, handle, delta, min_size)
        if grab.kind == "vertex":
            return moved_vertex(kind, grab.points, grab.index, delta, min_size)
        return grab.points + delta

    def _cursor_at(self, device: np.ndarray, world: np.ndarray) -> Qt.CursorShape:
        if not self._on_edit_slice():
            return Qt.CursorShape.ForbiddenCursor
        hit = self._hit(device, world)
        if hit is None:
            return Qt.CursorShape.ArrowCursor
        kind, index = hit
        if kind == "box":
            return _CURSORS[_BOX_HANDLES[index]]
        if kind == "vertex":
            return Qt.CursorShape.PointingHandCursor
        return Qt.CursorShape.SizeAllCursor

    def _set_cursor(self, shape: Qt.CursorShape | None) -> None:
        widget = self._viewer.gl_widget
        if shape is None:
            widget.unsetCursor()
        elif widget.cursor().shape() != shape:
            widget.setCursor(shape)

    # -- coordinates ---------------------------------------------------------------------
    def _ratio(self) -> float:
        return float(self._viewer.gl_widget.devicePixelRatioF())

    def _device(self, event: QMouseEvent) -> np.ndarray:
        pos = event.position()
        return np.array([pos.x(), pos.y()]) * self._ratio()

    def _world(self, device: np.ndarray) -> np.ndarray:
        return np.array(self._viewer.widget_to_world(float(device[0]), float(device[1])))

    def _device_distance(self, world: np.ndarray, device: np.ndarray) -> float:
        x, y = self._viewer.world_to_widget(float(world[0]), float(world[1]))
        return math.hypot(x - device[0], y - device[1])

    def _mm_per_px(self) -> float:
        """World mm per device pixel at the current zoom."""
        return self._viewer.mm_per_device_pixel()

    @staticmethod
    def _extent(points: np.ndarray) -> float:
        return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))

    # -- drawing (runs at the start of every render, so handles keep their size on zoom) ------
    def _on_render_start(self, _obj: object, _event: str) -> None:
        volume = self._viewer.volume
        if not self.active or volume is None or not self._on_edit_slice():
            self._overlay.hide()
            return
        px = self._mm_per_px() * self._ratio()  # mm per logical pixel
        fills: list[Handle] = []
        box_lines: list[Outline] = []
        if self._mode == EditorMode.EDIT and self._edit is not None:
            region = self.current_region()
            assert region is not None
            shapes = region_outlines([region], volume, self._edit.slice_index)
            x0, y0, x1, y1 = self._box()
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            box_lines.append(Outline(corners, True, False))
            fills += [Handle(c, HANDLE_PX * px, False) for _, c in self._box_handles()]
            fills += [Handle(self._points[i], VERTEX_PX * px, True)
                      for i in self._vertex_indices()]
        else:
            path = list(self._stroke) if self._stroke and not self._clicks else list(self._clicks)
            if self._clicks and self._hover is not None and self._press is None:
                path.append(self._hover)
            shapes = [Outline(np.array(path), False, False)] if len(path) > 1 else []
            fills += [Handle(c, (HANDLE_PX if n else 1.3 * HANDLE_PX) * px, bool(n))
                      for n, c in enumerate(self._clicks)]  # the first is the one to close on
        hint = _HINTS["edit" if self._mode == EditorMode.EDIT else "draw"]
        self._overlay.show(shapes, box_lines, fills, hint, self._ratio())

