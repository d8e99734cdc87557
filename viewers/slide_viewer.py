"""A whole-slide viewer widget: pyramid tiles, pan and zoom, minimap, scale bar, AI overlays.

The widget adapts a ``SlideViewport`` (where it looks) and a ``TileSource`` (tiles,
fetched on worker threads): painting draws what is cached, the lowest level first
as a backdrop so nothing is ever empty, and asks for the tiles it lacks; a tile
that arrives is announced through a queued signal, so nothing touches Qt from a
worker thread and the UI thread never waits for the archive. Only a tile that
arrives repaints: a blank one (a gap, or a failed fetch the source waits to retry)
does not, so a view with missing tiles never loops paint -> request -> repaint.
Tiles are drawn straight from the source's bounded cache (a QImage over the cached
array, no copy kept here), so the cache's MB bound is the view's whole tile memory.
Mouse: drag pans, wheel zooms at the cursor. Keys: arrows pan, + / - zoom, 0 fits.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from app.archive.tiles import TileKey, TileSource
from app.results.ann_reader import AnnotationGroupInfo
from viewers.slide_editor import SlideEditor
from viewers.slide_overlays import GroupLayer, layers_for
from viewers.slide_viewport import SlideViewport

MINIMAP_MAX = 200


class SlideViewer(QWidget):
    """Shows one slide pyramid from ``source`` with ``groups`` drawn over it."""

    sig_view_changed = Signal()
    sig_groups_changed = Signal()  # set_groups replaced the groups shown (legend refresh)
    sig_tile_arrived = Signal()  # a tile came in (on the UI thread)
    _sig_tile = Signal(object)  # TileKey, from worker threads (queued)

    def __init__(
        self,
        source: TileSource,
        groups: Sequence[AnnotationGroupInfo] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.source = source
        self.viewport = SlideViewport(source.pyramid)
        self.layers: list[GroupLayer] = layers_for(groups)
        self._painting: list[np.ndarray] = []  # the arrays under this paint's QImages
        self._drag: QPointF | None = None
        self._cursor: tuple[float, float] | None = None
        self._overview = len(source.pyramid.levels) - 1
        self.tiles_arrived = 0
        self._closed = False
        self._closing = threading.Lock()  # workers never signal a closed widget
        # Callables drawing over the annotation layers (the region editor's handles).
        self.overlay_painters: list[Callable[[QPainter], None]] = []
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(320, 240)
        self._sig_tile.connect(self._on_tile, Qt.ConnectionType.QueuedConnection)
        self.viewport.width, self.viewport.height = self.width(), self.height()
        self.viewport.fit()
        self.source.request(self.viewport.visible_tiles(self._overview, margin=99), self._arrived)
        self.editor = SlideEditor(self)

    # -- intent ---------------------------------------------------------------
    def zoom(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        self.viewport.zoom(factor, anchor)
        self._moved()

    def pan(self, dx: float, dy: float) -> None:
        self.viewport.pan(dx, dy)
        self._moved()

    def fit(self) -> None:
        self.viewport.fit()
        self._moved()

    def show_region(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Fly to a rectangle in base-level pixels."""
        self.viewport.show_region(x0, y0, x1, y1)
        self._moved()

    def set_group_visible(self, number: int, visible: bool) -> None:
        for layer in self.layers:
            if layer.group.number == number:
                layer.visible = visible
        self.update()

    def set_group_opacity(self, number: int, opacity: float) -> None:
        for layer in self.layers:
            if layer.group.number == number:
                layer.opacity = min(max(opacity, 0.0), 1.0)
        self.update()

    def pending_tiles(self) -> list[TileKey]:
        """Tiles of the current view not cached yet and not blank (what it still waits for)."""
        return [
            k
            for k in self.viewport.visible_tiles()
            if self.source.cached(k) is None and not self.source.is_blank(k)
        ]

    # -- Qt events --------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        self.viewport.width, self.viewport.height = self.width(), self.height()
        super().resizeEvent(event)
        self._moved()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            pos = event.position()
            self.zoom(1.25**steps, (pos.x(), pos.y()))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag = event.position()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._cursor = self.viewport.to_base(pos.x(), pos.y())
        if self._drag is not None:
            delta = self._drag - pos
            self._drag = pos
            self.pan(delta.x(), delta.y())
        else:
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag = None

    def keyPressEvent(self, event: QKeyEvent) -> None:
        step = min(self.width(), self.height()) / 4
        moves = {
            Qt.Key.Key_Left: (-step, 0.0),
            Qt.Key.Key_Right: (step, 0.0),
            Qt.Key.Key_Up: (0.0, -step),
            Qt.Key.Key_Down: (0.0, step),
        }
        key = Qt.Key(event.key())
        if key in moves:
            self.pan(*moves[key])
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom(1.5)
        elif key == Qt.Key.Key_Minus:
            self.zoom(1 / 1.5)
        elif key == Qt.Key.Key_0:
            self.fit()
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(40, 40, 44))
        vp = self.viewport
        level = vp.level
        # edge tiles are padded past the slide (some converters pad with white)
        (sx0, sy0), (sx1, sy1) = vp.to_screen(
            np.array([[0.0, 0.0], [vp.pyramid.base.width, vp.pyramid.base.height]])
        )
        painter.save()
        painter.setClipRect(QRectF(sx0, sy0, sx1 - sx0, sy1 - sy0))
        self._draw_level(painter, self._overview)
        if level != self._overview:
            self._draw_level(painter, level)
        painter.restore()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        view = QRectF(0, 0, self.width(), self.height())
        for layer in self.layers:
            layer.paint(painter, vp.to_screen, view)
        for paint in self.overlay_painters:
            paint(painter)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self._draw_minimap(painter)
        self._draw_scale_bar(painter)
        self._draw_cursor_position(painter)
        painter.end()
        self._painting.clear()

    # -- internals --------------------------------------------------------------
    def _moved(self) -> None:
        self.source.cancel_pending()
        keys = self.viewport.visible_tiles(margin=1)
        if self.source.fits(len(keys), self.viewport.level):
            self.source.request(keys, self._arrived)
        self.update()
        self.sig_view_changed.emit()

    def _arrived(self, key: TileKey, tile: np.ndarray | None) -> None:
        if tile is None:
            return  # blank stays blank: no repaint, so no new request for it
        with self._closing:  # worker thread: queued to the UI thread, while the widget lives
            if not self._closed:
                self._sig_tile.emit(key)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop tile deliveries to this widget; the source stays open for its owner."""
        with self._closing:
            self._closed = True
        self.source.cancel_pending()
        super().closeEvent(event)

    def _on_tile(self, key: object) -> None:
        self.tiles_arrived += 1
        self.update()
        self.sig_tile_arrived.emit()

    def _image(self, key: TileKey) -> QImage | None:
        """The cached tile as a QImage over its array (valid until this paint ends)."""
        tile = self.source.cached(key)
        if tile is None:
            return None
        h, w = tile.shape[:2]
        data = np.ascontiguousarray(tile)
        self._painting.append(data)
        return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888)

    def _draw_level(self, painter: QPainter, level: int) -> None:
        vp = self.viewport
        lvl = vp.pyramid.levels[level]
        d = vp.pyramid.downsample(level)
        missing = []
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        visible = vp.visible_tiles(level)
        for key in visible:
            img = self._image(key)
            if img is None:
                missing.append(key)
                continue
            x0, y0 = key.col * lvl.tile_width * d, key.row * lvl.tile_height * d
            corners = vp.to_screen(
                np.array([[x0, y0], [x0 + lvl.tile_width * d, y0 + lvl.tile_height * d]])
            )
            (sx0, sy0), (sx1, sy1) = corners
            # one screen pixel of overlap hides seams between scaled tiles
            painter.drawImage(QRectF(sx0, sy0, sx1 - sx0 + 0.5, sy1 - sy0 + 0.5), img)
        # a level whose view would not fit the cache (a pyramid without coarse levels,
        # zoomed out) is not asked for: its tiles would evict each other as they arrive
        if missing and self.source.fits(len(visible), level):
            self.source.request(missing, self._arrived)

    def minimap_rect(self) -> QRectF:
        """Where the minimap is drawn (widget pixels, top right)."""
        base = self.viewport.pyramid.base
        k = MINIMAP_MAX / max(base.width, base.height)
        w, h = base.width * k, base.height * k
        return QRectF(self.width() - w - 10, 10, w, h)

    def _draw_minimap(self, painter: QPainter) -> None:
        vp = self.viewport
        base = vp.pyramid.base
        k = MINIMAP_MAX / max(base.width, base.height)
        box = self.minimap_rect()
        painter.fillRect(box.adjusted(-2, -2, 2, 2), QColor(20, 20, 20, 200))
        lvl = vp.pyramid.levels[self._overview]
        d = vp.pyramid.downsample(self._overview)
        painter.save()
        painter.setClipRect(box)  # edge tiles are padded past the slide
        for row in range(lvl.tiles_down):
            for col in range(lvl.tiles_across):
                img = self._image(TileKey(self._overview, col, row))
                if img is None:
                    continue
                tw, th = lvl.tile_width * d * k, lvl.tile_height * d * k
                painter.drawImage(QRectF(box.left() + col * tw, box.top() + row * th, tw, th), img)
        painter.restore()
        x0, y0 = vp.to_base(0, 0)
        x1, y1 = vp.to_base(self.width(), self.height())
        view = QRectF(box.left() + x0 * k, box.top() + y0 * k, (x1 - x0) * k, (y1 - y0) * k)
        painter.setPen(QPen(QColor(255, 60, 60), 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(view.intersected(box.adjusted(-1, -1, 1, 1)))

    def _draw_scale_bar(self, painter: QPainter) -> None:
        um_per_px = self.viewport.micrometres_per_screen_px()
        if um_per_px <= 0:
            return
        target = 150 * um_per_px
        exp = 10 ** math.floor(math.log10(target))
        nice = max(m * exp for m in (1, 2, 5) if m * exp <= target)
        length = nice / um_per_px
        x, y = 16.0, self.height() - 24.0
        painter.fillRect(QRectF(x - 6, y - 22, length + 12, 34), QColor(0, 0, 0, 150))
        painter.fillRect(QRectF(x, y, length, 5), QColor(255, 255, 255))
        painter.setPen(QColor(255, 255, 255))
        painter.setFont(QFont(painter.font().family(), 9))
        label = f"{nice / 1000:g} mm" if nice >= 1000 else f"{nice:g} µm"
        painter.drawText(QPointF(x, y - 6), label)

    def _draw_cursor_position(self, painter: QPainter) -> None:
        vp = self.viewport
        level = vp.level
        text = f"level {level + 1}/{len(vp.pyramid.levels)} · {vp.scale:.2f} px/px"
        if self._cursor is not None:
            bx, by = self._cursor
            um = vp.pyramid.base.spacing_mm[1] * 1000.0
            text = f"x {bx:.0f}, y {by:.0f} px ({bx * um:.0f}, {by * um:.0f} µm) · " + text
        painter.setFont(QFont(painter.font().family(), 9))
        metrics = painter.fontMetrics()
        w = metrics.horizontalAdvance(text) + 12
        box = QRectF(self.width() - w - 10, self.height() - 26, w, 20)
        painter.fillRect(box, QColor(0, 0, 0, 150))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    # -- the reader's version of the groups ------------------------------------------------
    def set_groups(self, groups: Sequence[AnnotationGroupInfo]) -> None:
        """Show ``groups`` instead (e.g. ``app.review.slide_regions.reader_groups``); each
        group number keeps its visibility and opacity, unchanged groups keep their layer."""
        old = {layer.group.number: layer for layer in self.layers}
        layers = []
        for group in groups:
            layer = old.get(group.number)
            if layer is None or layer.group is not group:
                new = GroupLayer(group)
                if layer is not None:
                    new.visible, new.opacity = layer.visible, layer.opacity
                layer = new
            layers.append(layer)
        self.layers = layers
        self.update()
        self.sig_groups_changed.emit()
