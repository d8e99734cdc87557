"""A synthetic, tissue-like slide drawn tile by tile (Qt-free, deterministic).

The slide is defined once in base-level pixel coordinates: a tissue mask and a
tumor mask (coarse maps, sampled bilinearly), a few tumor polygons, and nuclei
(position, radius, Ki-67-like positive or negative). Any tile of any pyramid level
is then rendered on its own, so a gigapixel slide never has to sit in memory, and
the AI annotations (``app.demo.slide_annotations``) are the very shapes drawn here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

COARSE = 32  # base pixels per cell of the coarse tissue/tumor maps
BACKGROUND = np.array([242.0, 240.0, 244.0])
EOSIN = np.array([232.0, 160.0, 196.0])
TUMOR = np.array([178.0, 110.0, 170.0])
NEGATIVE_NUCLEUS = np.array([70.0, 60.0, 140.0])  # haematoxylin blue
POSITIVE_NUCLEUS = np.array([120.0, 70.0, 30.0])  # DAB brown


@dataclass(frozen=True)
class Nucleus:
    x: float  # base-level pixel column (centre)
    y: float  # base-level pixel row
    radius: float  # base-level pixels
    positive: bool
    probability: float  # the "AI's" confidence in its class


@dataclass
class SlideContent:
    """Everything the slide shows, in base-level pixel coordinates."""

    width: int
    height: int
    tissue: np.ndarray  # coarse map, 0..1
    tumor: np.ndarray  # coarse map, 0..1
    tumor_polygons: list[np.ndarray]  # each (n, 2) of (column, row)
    tumor_probabilities: list[float]
    nuclei: list[Nucleus]
    seed: int
    _buckets: dict[tuple[int, int], list[Nucleus]] = field(default_factory=dict)

    BUCKET = 512

    def __post_init__(self) -> None:
        for n in self.nuclei:
            key = (int(n.x) // self.BUCKET, int(n.y) // self.BUCKET)
            self._buckets.setdefault(key, []).append(n)

    def nuclei_in(self, x0: float, y0: float, x1: float, y1: float) -> list[Nucleus]:
        """Nuclei whose centre lies within [x0, x1) x [y0, y1), plus a margin of 16 px."""
        b = self.BUCKET
        out: list[Nucleus] = []
        for bx in range(int(x0 - 16) // b, int(x1 + 16) // b + 1):
            for by in range(int(y0 - 16) // b, int(y1 + 16) // b + 1):
                out.extend(self._buckets.get((bx, by), ()))
        return out


def make_content(width: int, height: int, seed: int) -> SlideContent:
    """The slide's tissue, tumor regions and nuclei for this size and seed."""
    rng = np.random.default_rng(seed)
    cw, ch = math.ceil(width / COARSE) + 2, math.ceil(height / COARSE) + 2
    tissue = _tissue_map(cw, ch, rng)
    polygons = _tumor_polygons(width, height, tissue, rng)
    tumor_img = Image.new("L", (cw, ch), 0)
    draw = ImageDraw.Draw(tumor_img)
    for poly in polygons:
        draw.polygon([(float(x) / COARSE, float(y) / COARSE) for x, y in poly], fill=255)
    tumor = np.asarray(tumor_img, dtype=np.float32) / 255.0
    tumor = _blur(tumor, 1) * (tissue > 0.5)
    probs = [round(float(rng.uniform(0.7, 0.98)), 3) for _ in polygons]
    nuclei = _nuclei(width, height, tissue, tumor, rng)
    return SlideContent(width, height, tissue, tumor, polygons, probs, nuclei, seed)


def render_tile(content: SlideContent, level_scale: int, x0: int, y0: int, size: int) -> np.ndarray:
    """The RGB uint8 tile (size x size) whose top-left pixel is (x0, y0) at a level
    ``level_scale`` times coarser than the base; outside the slide is background."""
    # float32, and per-pixel scalars kept 2D until the end: a slide is thousands of tiles
    d = float(level_scale)
    cols = (x0 + np.arange(size) + 0.5) * d
    rows = (y0 + np.arange(size) + 0.5) * d
    tissue = _bilinear(content.tissue, rows / COARSE, cols / COARSE)
    tumor = _bilinear(content.tumor, rows / COARSE, cols / COARSE)
    rng = np.random.default_rng((content.seed, level_scale, x0, y0))
    fibre = np.sin((cols[None, :] / 37.0 + np.sin(rows[:, None] / 53.0) * 3.0).astype(np.float32))
    eosin, tumor_rgb, background = (c.astype(np.float32) for c in (EOSIN, TUMOR, BACKGROUND))
    # stain grain (sd 6, in tissue) plus scanner noise (sd 2, everywhere): one normal field
    # with their combined spread
    spread = np.sqrt(36.0 * tissue * tissue + 4.0)
    shade = tissue * fibre * 8.0 + rng.standard_normal((size, size), dtype=np.float32) * spread
    colour = (eosin - background) + (tumor_rgb - eosin) * tumor[..., None]
    rgb = background + colour * tissue[..., None] + shade[..., None]
    _draw_nuclei(rgb, content, d, x0, y0, size)
    outside = (rows[:, None] >= content.height) | (cols[None, :] >= content.width)
    rgb[outside] = BACKGROUND
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _draw_nuclei(
    rgb: np.ndarray, content: SlideContent, d: float, x0: int, y0: int, size: int
) -> None:
    bx0, by0 = x0 * d, y0 * d
    for n in content.nuclei_in(bx0, by0, bx0 + size * d, by0 + size * d):
        cx, cy, r = n.x / d - x0, n.y / d - y0, max(n.radius / d, 0.6)
        ix0, ix1 = max(int(cx - r - 1), 0), min(int(cx + r + 2), size)
        iy0, iy1 = max(int(cy - r - 1), 0), min(int(cy + r + 2), size)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        yy, xx = np.mgrid[iy0:iy1, ix0:ix1]
        dist = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
        alpha = np.clip(r + 0.5 - dist, 0.0, 1.0)[..., None] * 0.85
        colour = POSITIVE_NUCLEUS if n.positive else NEGATIVE_NUCLEUS
        patch = rgb[iy0:iy1, ix0:ix1]
        rgb[iy0:iy1, ix0:ix1] = patch * (1 - alpha) + colour * alpha


def _tissue_map(cw: int, ch: int, rng: np.random.Generator) -> np.ndarray:
    """A few overlapping lobes with ragged edges, in coarse-map cells."""
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    field_: np.ndarray = np.zeros((ch, cw), np.float32)
    for _ in range(4):
        cx, cy = rng.uniform(0.3, 0.7) * cw, rng.uniform(0.3, 0.7) * ch
        rx, ry = rng.uniform(0.18, 0.32) * cw, rng.uniform(0.18, 0.32) * ch
        field_ = np.maximum(field_, 1.0 - ((xx - cx) / rx) ** 2 - ((yy - cy) / ry) ** 2)
    noise = _blur(rng.normal(0.0, 1.0, (ch, cw)).astype(np.float32), 2)
    field_ = field_ + noise * 0.6
    return np.clip((field_ - 0.05) * 6.0, 0.0, 1.0)


def _tumor_polygons(
    width: int, height: int, tissue: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Three star-shaped regions whose centres lie in tissue, each 4-8 % of the slide wide."""
    inside = np.argwhere(tissue > 0.95)
    polygons: list[np.ndarray] = []
    for _ in range(3):
        cy, cx = (
            inside[rng.integers(len(inside))] * COARSE if len(inside) else (height / 2, width / 2)
        )
        radius = rng.uniform(0.04, 0.08) * min(width, height)
        angles = np.linspace(0.0, 2 * math.pi, 24, endpoint=False)
        wobble = 1.0 + 0.25 * np.sin(angles * rng.integers(2, 5) + rng.uniform(0, 6))
        wobble *= rng.uniform(0.85, 1.15, angles.size)
        xs = np.clip(cx + radius * wobble * np.cos(angles), 0, width - 1)
        ys = np.clip(cy + radius * wobble * np.sin(angles), 0, height - 1)
        polygons.append(np.stack([xs, ys], axis=1).astype(np.float32))
    return polygons


def _nuclei(
    width: int, height: int, tissue: np.ndarray, tumor: np.ndarray, rng: np.random.Generator
) -> list[Nucleus]:
    """About one nucleus per 40x40 px of tissue, five times denser in tumor; Ki-67-like
    positivity ~45 % in tumor and ~5 % outside."""
    count = int(width * height / 1600 * 0.35)
    count = min(count, 60_000)
    xs = rng.uniform(0, width, count * 3)
    ys = rng.uniform(0, height, count * 3)
    t = _bilinear_points(tissue, ys / COARSE, xs / COARSE)
    m = _bilinear_points(tumor, ys / COARSE, xs / COARSE)
    keep = rng.uniform(0, 1, xs.size) < t * (0.2 + 0.8 * m)
    xs, ys, m = xs[keep][:count], ys[keep][:count], m[keep][:count]
    positive = rng.uniform(0, 1, xs.size) < 0.05 + 0.4 * m
    radius = rng.uniform(3.0, 6.0, xs.size)
    prob = rng.uniform(0.55, 0.99, xs.size)
    return [
        Nucleus(float(x), float(y), float(r), bool(p), round(float(q), 3))
        for x, y, r, p, q in zip(xs, ys, radius, positive, prob, strict=True)
    ]


def _blur(a: np.ndarray, passes: int) -> np.ndarray:
    out = a
    for _ in range(passes):
        padded = np.pad(out, 1, mode="edge")
        out = (
            padded[1:-1, 1:-1] * 4
            + padded[:-2, 1:-1]
            + padded[2:, 1:-1]
            + padded[1:-1, :-2]
            + padded[1:-1, 2:]
        ) / 8.0
    return out.astype(np.float32)


def _bilinear(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``a`` sampled on the grid rows x cols (fractional indices), edges clamped.

    Separable: the few map rows the tile spans are interpolated along the columns
    first, then that strip along the rows (two gathers of the tile, not four)."""
    r = np.clip(rows - 0.5, 0, a.shape[0] - 1.001)
    c = np.clip(cols - 0.5, 0, a.shape[1] - 1.001)
    r0, c0 = r.astype(int), c.astype(int)
    lo, hi = int(r0.min()), int(r0.max()) + 2
    wc = (c - c0).astype(np.float32)
    strip = a[lo:hi].astype(np.float32)
    across = strip[:, c0] * (1 - wc) + strip[:, c0 + 1] * wc  # (hi - lo, len(cols))
    wr = (r - r0).astype(np.float32)[:, None]
    return across[r0 - lo] * (1 - wr) + across[r0 - lo + 1] * wr


def _bilinear_points(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    r = np.clip(rows - 0.5, 0, a.shape[0] - 1.001)
    c = np.clip(cols - 0.5, 0, a.shape[1] - 1.001)
    r0, c0 = r.astype(int), c.astype(int)
    wr, wc = r - r0, c - c0
    top = a[r0, c0] * (1 - wc) + a[r0, c0 + 1] * wc
    bottom = a[r0 + 1, c0] * (1 - wc) + a[r0 + 1, c0 + 1] * wc
    return top * (1 - wr) + bottom * wr
