"""A synthetic PA chest radiograph for the demo (MONOCHROME2, 12 bits in uint16).

The image is drawn as X-ray path lengths through a simple torso (soft tissue,
lungs cut by the diaphragm domes, heart and mediastinum, spine, ribs,
clavicles, vessel markings) and turned into brightness with Beer-Lambert, so it
shades like a radiograph. Coordinates are mm from the image centre: X to the
image right (patient's left on a PA view), Y down (towards the feet).
Optionally a right apical-lateral pneumothorax or nodules, whose
outlines come back in pixel coordinates for the AI finding regions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.demo.phantoms import gaussian_weights

SIZE = 2048
SPACING = 0.2  # mm per pixel at the detector


@dataclass(frozen=True)
class Lung:
    """A lung field: a superellipse cut below by a diaphragm dome."""

    cx: float
    cy: float
    ax: float
    ay: float
    dome_top: float  # Y of the dome's highest point
    n: float = 2.6

    def value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """< 1 inside the superellipse."""
        return np.abs((x - self.cx) / self.ax) ** self.n + np.abs((y - self.cy) / self.ay) ** self.n

    def dome(self, x: np.ndarray) -> np.ndarray:
        return self.dome_top + 0.012 * (x - self.cx) ** 2

    def boundary(self, count: int = 360) -> np.ndarray:
        """(count, 2) points (X, Y) on the superellipse, counter-clockwise on screen."""
        t = np.linspace(0.0, 2 * math.pi, count, endpoint=False)
        c, s = np.cos(t), np.sin(t)
        px = self.cx + self.ax * np.sign(c) * np.abs(c) ** (2 / self.n)
        py = self.cy + self.ay * np.sign(s) * np.abs(s) ** (2 / self.n)
        return np.stack([px, py], axis=1)

    def collapsed(self, f: float) -> Lung:
        """The lung shrunk by ``f`` towards the middle of its medial border (its hilum side).

        The anchor lies on the boundary, so the collapsed lung stays inside the lung
        and the gap (a pneumothorax) is widest at the apex and lateral wall.
        """
        medial = -1.0 if self.cx > 0 else 1.0
        ax_, ay_ = self.cx + medial * self.ax, self.cy + 0.25 * self.ay
        return Lung(
            cx=ax_ + f * (self.cx - ax_),
            cy=ay_ + f * (self.cy - ay_),
            ax=self.ax * f,
            ay=self.ay * f,
            dome_top=self.dome_top,
            n=self.n,
        )


RIGHT_LUNG = Lung(cx=-80.0, cy=-8.0, ax=64.0, ay=128.0, dome_top=88.0)  # image left
LEFT_LUNG = Lung(cx=82.0, cy=-2.0, ax=60.0, ay=122.0, dome_top=102.0)


@dataclass(frozen=True)
class Radiograph:
    """Stored pixels plus the outline (column, row) of the abnormality, if any."""

    pixels: np.ndarray  # (rows, columns) uint16
    pixel_spacing: float
    outline: tuple[tuple[float, float], ...] = ()  # pneumothorax: closed polygon, pixels
    # Per nodule: (centre, a point on its edge) in pixels, as a DICOM CIRCLE.
    nodule_circles: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = ()


def to_pixel(x: float, y: float) -> tuple[float, float]:
    origin = -(SIZE - 1) / 2.0 * SPACING
    return ((x - origin) / SPACING, (y - origin) / SPACING)


def _soft(v: np.ndarray, width: float) -> np.ndarray:
    return np.clip(v / width, 0.0, 1.0)


def _lung_mask(lung: Lung, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _soft(1.0 - lung.value(x, y), 0.08) * _soft(lung.dome(x) - y, 6.0)


def chest_radiograph(
    rng: np.random.Generator,
    *,
    pneumothorax: bool = False,
    nodules: Sequence[tuple[float, float, float]] = (),
) -> Radiograph:
    """A PA chest radiograph; each nodule is (X, Y, diameter) in mm on the image plane.

    The (smooth) path lengths are drawn at half resolution and interpolated; the
    quantum noise is added at full resolution.
    """
    n = SIZE // 2
    axis = (-(SIZE - 1) / 2.0 + 0.5 + 2.0 * np.arange(n)).astype(np.float32) * SPACING
    xi, y = np.meshgrid(axis, axis)
    scale = float(rng.uniform(0.96, 1.04))  # body habitus: anatomy is x / scale
    x = xi / scale
    half = 60.0 + 135.0 / (1.0 + np.exp(-(y + 172.0) / 10.0)) - 0.03 * np.clip(y + 120, 0, None)
    path = 2.3 * np.sqrt(np.clip(1.0 - (x / half) ** 2, 0.0, 1.0))  # soft tissue
    lungs_soft = _lung_mask(RIGHT_LUNG, x, y) + _lung_mask(LEFT_LUNG, x, y)
    collapsed = RIGHT_LUNG.collapsed(0.82) if pneumothorax else None
    if collapsed is not None:
        level = RIGHT_LUNG.cy + 0.25 * RIGHT_LUNG.ay  # apical and upper lateral only
        ptx = _lung_mask(RIGHT_LUNG, x, y) * (1.0 - _lung_mask(collapsed, x, y))
        ptx *= _soft(level - y, 8.0)
    path -= 1.35 * lungs_soft
    # Heart, mediastinum, aortic knob, spine.
    path += 0.9 * _soft(32.0 - np.abs(x - 4.0), 6.0) * _soft(70.0 - y, 10.0)
    path += 0.5 * np.sqrt(np.clip(1 - ((x - 32) / 19) ** 2 - ((y + 42) / 19) ** 2, 0, 1))
    discs = 0.12 * (np.cos(2 * math.pi * (y + 6.0) / 27.0) > 0.82)
    path += (0.85 - discs) * _soft(19.0 - np.abs(x), 3.0) * _soft(y + 190.0, 5.0)
    path += _ribs(x, y, half) + _clavicles(x, y)
    # Heart silhouette replaces lung; vessel markings: strongest at the hila.
    heart = np.clip(1 - ((x - 24) / 80) ** 2 - ((y - 58) / 64) ** 2, 0, 1)
    path += 1.0 * _soft(heart, 0.15) * lungs_soft
    w = gaussian_weights(n, 2 * SPACING, 3.0)
    noise = w @ rng.standard_normal((w.shape[1], w.shape[1])).astype(np.float32) @ w.T
    hila = np.exp(-(((np.abs(x) - 60) / 40) ** 2) - ((y - 5) / 55) ** 2)
    markings = (0.05 * noise + 0.12 + 0.4 * hila) * lungs_soft
    if collapsed is not None:
        markings *= 1.0 - ptx
        path -= 0.12 * ptx
        edge = np.clip(1.0 - np.abs(1.0 - collapsed.value(x, y)) / 0.02, 0.0, 1.0)
        path += 0.14 * edge * (ptx > 0.2)  # the visceral pleural line
    path += markings
    outline: tuple[tuple[float, float], ...] = ()
    if collapsed is not None:
        outline = _crescent(RIGHT_LUNG, collapsed, scale)
    circles = []
    for nx, ny, diameter in nodules:
        r2 = ((xi - nx) ** 2 + (y - ny) ** 2) / (diameter / 2.0) ** 2
        path += 0.45 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
        centre = _f32(to_pixel(nx, ny))
        circles.append((centre, _f32((centre[0] + diameter / 2.0 / SPACING, centre[1]))))
    path = _upsample2(_upsample2(path, 0), 1)
    signal = 4095.0 * (1.0 - np.exp(-0.5 * np.clip(path, 0.0, None)))
    signal += rng.normal(0.0, 14.0, signal.shape).astype(np.float32)
    pixels = np.clip(np.rint(signal), 0, 4095).astype(np.uint16)
    return Radiograph(pixels, SPACING, outline, tuple(circles))


def _upsample2(a: np.ndarray, axis: int) -> np.ndarray:
    """Twice as many samples along ``axis`` by linear interpolation (sample centres kept)."""
    a = np.moveaxis(a, axis, 0)
    prev = np.concatenate([a[:1], a[:-1]])
    nxt = np.concatenate([a[1:], a[-1:]])
    out = np.empty((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
    out[0::2] = 0.75 * a + 0.25 * prev
    out[1::2] = 0.75 * a + 0.25 * nxt
    return np.moveaxis(out, 0, axis)


def _ribs(x: np.ndarray, y: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Posterior ribs (arcs falling laterally) and fainter anterior ribs, drawn band by band."""
    t = np.abs(x)
    inside = _soft(t - 14.0, 4.0) * _soft(half - 10.0 - t, 6.0)
    lateral = _soft(t - 40.0, 10.0)
    rows = y[:, 0]
    out = np.zeros_like(x)
    for i in range(10):
        y0 = -150.0 + 26.0 * i
        lo, hi = np.searchsorted(rows, [y0 - 20.0, y0 + 130.0])
        tb, yb = t[lo:hi], y[lo:hi]
        back = y0 - 0.25 * tb + 0.0035 * tb * tb  # posterior rib, arcs down laterally
        d = np.abs(yb - back)
        rib = 0.42 * np.exp(-((d / 5.0) ** 4)) + 0.12 * np.exp(-(((d - 5.0) / 1.2) ** 2))
        if i < 6:
            front = y0 + 38.0 + 0.45 * (160.0 - tb)  # anterior rib, falls medially
            rib += lateral[lo:hi] * 0.14 * np.exp(-((np.abs(yb - front) / 6.0) ** 4))
        out[lo:hi] += inside[lo:hi] * rib
    return out


def _clavicles(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    t = np.abs(x)
    centre = -128.0 - 0.14 * t + 0.0006 * (t - 80.0) ** 2
    return (
        0.6 * np.exp(-((np.abs(y - centre) / 7.0) ** 4)) * _soft(150.0 - t, 8.0) * _soft(t - 12, 4)
    )


def _crescent(lung: Lung, collapsed: Lung, scale: float) -> tuple[tuple[float, float], ...]:
    """Closed outline (pixels) of the air between the chest wall and the collapsed lung."""
    level = lung.cy + 0.25 * lung.ay - 8.0
    outer = [p for p in lung.boundary() if collapsed.value(p[:1], p[1:])[0] > 1.02 and p[1] < level]
    inner = [p for p in collapsed.boundary() if p[1] < level]
    medial = -1.0 if lung.cx > 0 else 1.0
    anchor = (lung.cx + medial * lung.ax, lung.cy + 0.25 * lung.ay)

    def angle(p: np.ndarray) -> float:
        return math.atan2(p[1] - anchor[1], medial * (p[0] - anchor[0])) % (2 * math.pi)

    outer.sort(key=angle)
    inner.sort(key=angle, reverse=True)
    ring = outer[:: max(1, len(outer) // 24)] + inner[:: max(1, len(inner) // 12)]
    pts = [to_pixel(float(p[0]) * scale, float(p[1])) for p in ring]
    pts = [_f32(p) for p in pts]
    return tuple(pts + [pts[0]])


def _f32(point: tuple[float, float]) -> tuple[float, float]:
    """Rounded so that it survives DICOM's 32-bit float Graphic Data unchanged."""
    return (float(np.float32(round(point[0], 1))), float(np.float32(round(point[1], 1))))
