"""The slide viewer with the finding under review framed: a highlighted box around its region.

``SlideViewer`` draws tiles and the AI groups; this adds one thing a reader needs while
stepping through findings: where the current one is. The frame is the region's
bounding box in base-level pixels, drawn over the AI groups (under the minimap and the
scale bar) in a colour no group uses
(a dark halo under a bright line, legible on tissue and on background).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QResizeEvent

from viewers.slide_viewer import SlideViewer

FRAME = QColor(255, 230, 60)  # bright yellow
HALO = QColor(0, 0, 0, 170)
FRAME_PAD_PX = 6.0  # screen pixels between the region and its frame


class HighlightSlideViewer(SlideViewer):
    """A ``SlideViewer`` that frames one highlighted region (``set_highlight``), and keeps
    the whole slide fitted while its size settles, until the reader moves the view."""

    highlight: tuple[float, float, float, float] | None = None
    auto_fit = True  # the view is "the whole slide" (refitted on resize)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.overlay_painters.append(self._paint_highlight)

    def fit(self) -> None:
        self.auto_fit = True
        super().fit()

    def zoom(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        self.auto_fit = False
        super().zoom(factor, anchor)

    def pan(self, dx: float, dy: float) -> None:
        self.auto_fit = False
        super().pan(dx, dy)

    def show_region(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.auto_fit = False
        super().show_region(x0, y0, x1, y1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.auto_fit:
            super().fit()

    def set_highlight(self, box: tuple[float, float, float, float] | None) -> None:
        """Frame the base-pixel box (x0, y0, x1, y1); None removes the frame."""
        self.highlight = box
        self.update()

    def highlight_rect(self) -> QRectF | None:
        """The frame on screen (widget pixels), or None when nothing is highlighted."""
        if self.highlight is None:
            return None
        x0, y0, x1, y1 = self.highlight
        (sx0, sy0), (sx1, sy1) = self.viewport.to_screen(np.array([[x0, y0], [x1, y1]], float))
        pad = FRAME_PAD_PX
        return QRectF(sx0 - pad, sy0 - pad, sx1 - sx0 + 2 * pad, sy1 - sy0 + 2 * pad)

    def _paint_highlight(self, painter: QPainter) -> None:
        """Drawn with the overlays, so the minimap and scale bar stay on top of it."""
        rect = self.highlight_rect()
        if rect is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(HALO, 5.0))
        painter.drawRect(rect)
        pen = QPen(FRAME, 2.5)
        pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRect(rect)
        painter.restore()
