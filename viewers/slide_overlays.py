"""Drawing a slide's annotation groups with QPainter, fluid with thousands of points.

Polygons (and other outlines) are drawn as outlines in the group's colour; points
are dots when few are on screen and, when many are or the view is zoomed far out,
clustered on a grid of screen cells: one disc per cell, its size growing with the
count. Coordinates are base-level pixels; ``to_screen`` maps them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPolygonF

from app.results.ann_reader import AnnotationGroupInfo

ToScreen = Callable[[np.ndarray], np.ndarray]  # (n, 2) base px -> (n, 2) screen px
MAX_DOTS = 1500
CLUSTER_CELL = 28.0


class GroupLayer:
    """One group's shapes, precomputed as arrays, with its visibility and opacity."""

    def __init__(self, group: AnnotationGroupInfo) -> None:
        self.group = group
        self.visible = True
        self.opacity = 0.9
        if group.is_points:
            self.points = (
                np.concatenate(group.shapes).astype(np.float64)
                if group.shapes
                else np.zeros((0, 2))
            )
        else:
            self.points = np.zeros((0, 2))

    def paint(self, painter: QPainter, to_screen: ToScreen, view: QRectF) -> int:
        """Draw into ``painter``; returns how many marks were drawn."""
        if not self.visible:
            return 0
        r, g, b = self.group.colour
        colour = QColor(r, g, b)
        colour.setAlphaF(self.opacity)
        if self.group.is_points:
            return self._paint_points(painter, to_screen, view, colour)
        pen = QPen(colour, 2.0)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        drawn = 0
        for shape in self.group.shapes:
            screen = to_screen(shape.astype(np.float64))
            poly = QPolygonF([QPointF(float(x), float(y)) for x, y in screen])
            if not poly.boundingRect().intersects(view):
                continue
            if self.group.graphic_type == "POLYLINE":
                painter.drawPolyline(poly)
            else:
                painter.drawPolygon(poly)
            drawn += 1
        return drawn

    def _paint_points(
        self, painter: QPainter, to_screen: ToScreen, view: QRectF, colour: QColor
    ) -> int:
        if not len(self.points):
            return 0
        screen = to_screen(self.points)
        inside = (
            (screen[:, 0] >= view.left())
            & (screen[:, 0] < view.right())
            & (screen[:, 1] >= view.top())
            & (screen[:, 1] < view.bottom())
        )
        screen = screen[inside]
        painter.setPen(QPen(colour.darker(150), 1.0))
        painter.setBrush(QBrush(colour))
        if len(screen) <= MAX_DOTS:
            for x, y in screen:
                painter.drawEllipse(QPointF(float(x), float(y)), 3.0, 3.0)
            return len(screen)
        cells = np.floor(screen / CLUSTER_CELL).astype(np.int64)
        keys, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        # Each disc sits at the mean of its points (not on a grid), its area follows the
        # cell's share of the densest cell, and it is see-through: a slide full of cells
        # must still show its tissue when zoomed out.
        mean_x = np.bincount(inverse, weights=screen[:, 0]) / counts
        mean_y = np.bincount(inverse, weights=screen[:, 1]) / counts
        densest = float(counts.max())
        fill = QColor(colour)
        fill.setAlphaF(colour.alphaF() * 0.6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(fill))
        for x, y, n in zip(mean_x, mean_y, counts, strict=True):
            radius = 2.5 + (CLUSTER_CELL * 0.3 - 2.5) * float(np.sqrt(n / densest))
            painter.drawEllipse(QPointF(float(x), float(y)), radius, radius)
        return len(keys)


def layers_for(groups: Sequence[AnnotationGroupInfo]) -> list[GroupLayer]:
    return [GroupLayer(g) for g in groups]
