"""Edit a region's outline on the slide viewer, or draw a new one (``viewer.editor``).

How the reader works it (left button; dragging elsewhere still pans, the wheel zooms):

- ``edit(uid, region)``: the view flies to the region and shows its vertices as square
  handles (for a group of points, MULTIPOINT, each point; up to ``MAX_POINTS``). Drag a
  handle to move that vertex; Backspace (or Delete) removes the vertex under the cursor
  (a polygon keeps at least three), e.g. a cell the AI marked wrongly. Enter keeps the change
  (``sig_region_edited``), Esc drops it.
- ``draw(image_uid)``: click the corners of a new polygon; Enter, a double-click or a
  click on the first corner closes it (``sig_region_drawn``). Backspace takes back the
  last corner, Esc cancels. ``draw(image_uid, owner=uid)`` redraws that finding's region
  and ends with ``sig_region_edited`` instead.

The editor holds only the edit in progress: the caller puts the emitted ``Region``
(base-level image pixels, (column, row), on the image ``referenced_sop_uid``) into its
review session and shows the result (``SlideViewer.set_groups``). It listens to the
viewer through an event filter, so the viewer's own handlers run untouched otherwise.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QMouseEvent, QPainter, QPen, QPolygonF

from app.domain import Region

if TYPE_CHECKING:
    from viewers.slide_viewer import SlideViewer

GRAB_PX = 8.0  # how near (screen pixels) a press must be to grab a vertex
HANDLE_PX = 8.0
CLICK_PX = 4.0  # a press and release closer than this is a click, not a pan
EDITABLE = ("POLYGON", "POLYLINE", "RECTANGLE", "MULTIPOINT")
MAX_POINTS = 5000  # a group of points larger than this is not edited point by point
_KEYS = (
    Qt.Key.Key_Return,
    Qt.Key.Key_Enter,
    Qt.Key.Key_Escape,
    Qt.Key.Key_Backspace,
    Qt.Key.Key_Delete,
)
_YELLOW = QColor(255, 220, 0)


class SlideEditMode(str, enum.Enum):
    IDLE = ""
    EDIT = "edit"
    DRAW = "draw"


class SlideEditor(QObject):
    """The vertex editor and polygon drawer of one ``SlideViewer``."""

    sig_region_edited = Signal(str, object)  # tracking UID, the new Region
    sig_region_drawn = Signal(object)  # a new Region
    sig_mode_changed = Signal(str)  # a SlideEditMode value ("" when done)

    def __init__(self, viewer: SlideViewer) -> None:
        super().__init__(viewer)
        self.viewer = viewer
        self.mode = SlideEditMode.IDLE
        self.owner: str | None = None  # tracking UID of the region edited / redrawn
        self.points = np.zeros((0, 2))  # base-level pixels
        self._graphic_type = "POLYGON"
        self._image_uid: str | None = None
        self._sop_class: str | None = None
        self._grabbed: int | None = None
        self._hover: int | None = None
        self._press: QPointF | None = None
        self._cursor: np.ndarray | None = None
        viewer.installEventFilter(self)
        viewer.overlay_painters.append(self.paint)

    @property
    def active(self) -> bool:
        return self.mode is not SlideEditMode.IDLE

    # -- intent ---------------------------------------------------------------------
    def edit(self, tracking_uid: str, region: Region) -> bool:
        """Start editing ``region``'s vertices; False when its kind cannot be edited."""
        if region.graphic_type not in EDITABLE or not region.coordinates:
            return False
        if region.graphic_type == "MULTIPOINT" and len(region.coordinates) > MAX_POINTS:
            return False
        if region.graphic_type != "MULTIPOINT" and len(region.coordinates) < 2:
            return False
        self._start(SlideEditMode.EDIT, tracking_uid, region.referenced_sop_uid)
        self._sop_class = region.referenced_sop_class_uid
        pts = np.asarray([p[:2] for p in region.coordinates], dtype=np.float64)
        if region.graphic_type == "POLYLINE" and len(pts) > 3 and np.allclose(pts[0], pts[-1]):
            pts = pts[:-1]  # a closed polyline: edit the distinct corners
            self._graphic_type = "POLYGON"
        elif region.graphic_type in ("POLYLINE", "MULTIPOINT"):
            self._graphic_type = region.graphic_type
        else:
            self._graphic_type = "POLYGON"
        self.points = pts
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        self.viewer.show_region(float(x0), float(y0), float(x1), float(y1))
        return True

    def draw(self, image_uid: str, owner: str | None = None) -> bool:
        """Start drawing a polygon on the image ``image_uid`` (a redraw of ``owner``'s region
        when given)."""
        self._start(SlideEditMode.DRAW, owner, image_uid)
        self._graphic_type = "POLYGON"
        self.points = np.zeros((0, 2))
        return True

    def commit(self) -> Region | None:
        """Keep the edit (or close the drawing); emits and returns the Region."""
        if self.mode is SlideEditMode.IDLE:
            return None
        if len(self.points) < self._min_points:
            return None
        region = Region(
            self._graphic_type,
            tuple((float(x), float(y)) for x, y in self.points),
            referenced_sop_uid=self._image_uid,
            referenced_sop_class_uid=self._sop_class,
        )
        owner, mode = self.owner, self.mode
        self._finish()
        if owner is not None:
            self.sig_region_edited.emit(owner, region)
        elif mode is SlideEditMode.DRAW:
            self.sig_region_drawn.emit(region)
        return region

    def cancel(self) -> None:
        if self.active:
            self._finish()

    def remove_vertex(self, index: int) -> bool:
        if self.mode is not SlideEditMode.EDIT or len(self.points) <= self._min_points:
            return False
        self.points = np.delete(self.points, index, axis=0)
        self._hover = None
        self.viewer.update()
        return True

    # -- events (filter on the viewer) ------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self.active or watched is not self.viewer:
            return False
        kind = event.type()
        if kind == QEvent.Type.ShortcutOverride:
            if isinstance(event, QKeyEvent) and event.key() in _KEYS:
                event.accept()  # the window's shortcuts must not take these keys
                return True
            return False
        if kind == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            return self._key(event)
        if isinstance(event, QMouseEvent):
            if kind == QEvent.Type.MouseButtonPress:
                return self._pressed(event)
            if kind == QEvent.Type.MouseMove:
                return self._moved(event)
            if kind == QEvent.Type.MouseButtonRelease:
                return self._released(event)
            if kind == QEvent.Type.MouseButtonDblClick and self.mode is SlideEditMode.DRAW:
                self.commit()
                return True
        return False

    def _key(self, event: QKeyEvent) -> bool:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.commit()
        elif key == Qt.Key.Key_Escape:
            self.cancel()
        elif key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            if self.mode is SlideEditMode.DRAW and len(self.points):
                self.points = self.points[:-1]
                self.viewer.update()
            elif self._hover is not None:
                self.remove_vertex(self._hover)
        else:
            return False
        return True

    def _pressed(self, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self._press = event.position()
        if self.mode is SlideEditMode.EDIT:
            self._grabbed = self._vertex_at(event.position())
            return self._grabbed is not None  # elsewhere: the viewer pans
        return False

    def _moved(self, event: QMouseEvent) -> bool:
        pos = event.position()
        self._cursor = self._base(pos)
        if self._grabbed is not None:
            self.points[self._grabbed] = self._cursor
            self.viewer.update()
            return True
        if self.mode is SlideEditMode.EDIT:
            hover = self._vertex_at(pos)
            if hover != self._hover:
                self._hover = hover
                self.viewer.update()
        elif self.mode is SlideEditMode.DRAW:
            self.viewer.update()  # the rubber band follows the cursor
        return False

    def _released(self, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        pos, press = event.position(), self._press
        self._press = None
        if self._grabbed is not None:
            self.points[self._grabbed] = self._base(pos)
            self._grabbed = None
            self.viewer.update()
            return True
        clicked = press is not None and (pos - press).manhattanLength() <= CLICK_PX
        if self.mode is SlideEditMode.DRAW and clicked:
            if len(self.points) >= 3 and self._near_first(pos):
                self.commit()
            else:
                self.points = np.vstack([self.points, self._base(pos)])
                self.viewer.update()
        return False  # the viewer ends its pan

    # -- painting ------------------------------------------------------------------------
    def paint(self, painter: QPainter) -> None:
        """Drawn by the viewer over its annotation layers."""
        if not self.active or not len(self.points):
            return
        screen = self.viewer.viewport.to_screen(self.points)
        poly = QPolygonF([QPointF(float(x), float(y)) for x, y in screen])
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(_YELLOW, 2.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self.mode is SlideEditMode.DRAW:
            painter.drawPolyline(poly)
            if self._cursor is not None:
                ((cx, cy),) = self.viewer.viewport.to_screen(self._cursor.reshape(1, 2))
                painter.setPen(QPen(_YELLOW, 1.0, Qt.PenStyle.DashLine))
                painter.drawLine(poly.last(), QPointF(float(cx), float(cy)))
        elif self._graphic_type == "POLYLINE":
            painter.drawPolyline(poly)
        elif self._graphic_type == "MULTIPOINT":
            pass  # points: the handles are the points
        else:
            painter.drawPolygon(poly)
        half = HANDLE_PX / 2
        painter.setPen(QPen(QColor(0, 0, 0), 1.0))
        for n, (x, y) in enumerate(screen):
            hot = n == self._hover or n == self._grabbed
            painter.setBrush(QBrush(QColor(255, 80, 80) if hot else _YELLOW))
            painter.drawRect(QRectF(float(x) - half, float(y) - half, HANDLE_PX, HANDLE_PX))
        painter.restore()

    # -- internals -----------------------------------------------------------------------
    @property
    def _min_points(self) -> int:
        return {"POLYLINE": 2, "MULTIPOINT": 1}.get(self._graphic_type, 3)

    def _start(self, mode: SlideEditMode, owner: str | None, image_uid: str | None) -> None:
        self.cancel()
        self.mode, self.owner, self._image_uid = mode, owner, image_uid
        self._sop_class = None
        self.viewer.setFocus(Qt.FocusReason.OtherFocusReason)
        self.sig_mode_changed.emit(mode.value)
        self.viewer.update()

    def _finish(self) -> None:
        self.mode, self.owner = SlideEditMode.IDLE, None
        self.points = np.zeros((0, 2))
        self._grabbed = self._hover = None
        self._press = None
        self.sig_mode_changed.emit("")
        self.viewer.update()

    def _base(self, pos: QPointF) -> np.ndarray:
        return np.asarray(self.viewer.viewport.to_base(pos.x(), pos.y()), dtype=np.float64)

    def _vertex_at(self, pos: QPointF) -> int | None:
        if not len(self.points):
            return None
        screen = self.viewer.viewport.to_screen(self.points)
        d = np.hypot(screen[:, 0] - pos.x(), screen[:, 1] - pos.y())
        n = int(np.argmin(d))
        return n if d[n] <= GRAB_PX else None

    def _near_first(self, pos: QPointF) -> bool:
        ((x, y),) = self.viewer.viewport.to_screen(self.points[:1])
        return bool(np.hypot(x - pos.x(), y - pos.y()) <= GRAB_PX)
