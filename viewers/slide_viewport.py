"""Where the slide view looks: centre and scale in base-level pixels (no Qt).

``scale`` is base pixels per screen pixel (1 = full resolution, larger = zoomed
out). The level drawn is the coarsest one still at least as fine as the screen;
``visible_tiles`` lists that level's tiles the viewport touches, nearest the centre
first, plus a ring of ``margin`` tiles to prefetch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.archive.slide_pyramid import SlidePyramid
from app.archive.tiles import TileKey

MIN_SCALE = 0.25


@dataclass
class SlideViewport:
    pyramid: SlidePyramid
    width: int = 800
    height: int = 600
    cx: float = 0.0
    cy: float = 0.0
    scale: float = 1.0

    def fit(self) -> None:
        """The whole slide in view."""
        base = self.pyramid.base
        self.cx, self.cy = base.width / 2, base.height / 2
        self.scale = self.max_scale() * 0.98

    def max_scale(self) -> float:
        base = self.pyramid.base
        return max(base.width / max(self.width, 1), base.height / max(self.height, 1)) * 1.05

    def zoom(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        """Zoom in by ``factor`` (> 1 in) keeping the base point under ``anchor`` (screen) fixed."""
        ax, ay = anchor if anchor is not None else (self.width / 2, self.height / 2)
        bx, by = self.to_base(ax, ay)
        self.scale = min(max(self.scale / factor, MIN_SCALE), self.max_scale() * 2)
        self.cx = bx - (ax - self.width / 2) * self.scale
        self.cy = by - (ay - self.height / 2) * self.scale

    def pan(self, dx_screen: float, dy_screen: float) -> None:
        base = self.pyramid.base
        self.cx = min(max(self.cx + dx_screen * self.scale, 0.0), float(base.width))
        self.cy = min(max(self.cy + dy_screen * self.scale, 0.0), float(base.height))

    def show_region(self, x0: float, y0: float, x1: float, y1: float, margin: float = 1.3) -> None:
        """Fly to a base-pixel rectangle: centred, with some context around it."""
        self.cx, self.cy = (x0 + x1) / 2, (y0 + y1) / 2
        need = max((x1 - x0) / max(self.width, 1), (y1 - y0) / max(self.height, 1)) * margin
        self.scale = min(max(need, MIN_SCALE), self.max_scale())

    def to_base(self, sx: float, sy: float) -> tuple[float, float]:
        return (
            self.cx + (sx - self.width / 2) * self.scale,
            self.cy + (sy - self.height / 2) * self.scale,
        )

    def to_screen(self, points: np.ndarray) -> np.ndarray:
        out = np.empty_like(points, dtype=np.float64)
        out[:, 0] = (points[:, 0] - self.cx) / self.scale + self.width / 2
        out[:, 1] = (points[:, 1] - self.cy) / self.scale + self.height / 2
        return out

    @property
    def level(self) -> int:
        return self.pyramid.level_for(self.scale)

    def visible_tiles(self, level: int | None = None, margin: int = 0) -> list[TileKey]:
        level = self.level if level is None else level
        lvl = self.pyramid.levels[level]
        d = self.pyramid.downsample(level)
        x0, y0 = self.to_base(0, 0)
        x1, y1 = self.to_base(self.width, self.height)
        c0 = max(math.floor(x0 / d / lvl.tile_width) - margin, 0)
        r0 = max(math.floor(y0 / d / lvl.tile_height) - margin, 0)
        c1 = min(math.floor(x1 / d / lvl.tile_width) + margin, lvl.tiles_across - 1)
        r1 = min(math.floor(y1 / d / lvl.tile_height) + margin, lvl.tiles_down - 1)
        keys = [TileKey(level, c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
        mc = (self.cx / d) / lvl.tile_width
        mr = (self.cy / d) / lvl.tile_height
        keys.sort(key=lambda k: (k.col + 0.5 - mc) ** 2 + (k.row + 0.5 - mr) ** 2)
        return keys

    def micrometres_per_screen_px(self) -> float:
        return self.pyramid.base.spacing_mm[1] * 1000.0 * self.scale
