"""Synthetic head volumes for the demo: a non-contrast head CT and a T2-like MR brain.

Both come from one labelled head model (scalp, skull tables and diploe, CSF,
gray and white matter, deep gray nuclei, ventricles) in patient coordinates
(LPS, mm, axial slices), so lesions are placed in mm and land where the AI
finding regions say. Everything is drawn from a seeded numpy generator, fast
enough for the whole demo set in seconds. The chest radiograph is in
``app.demo.radiograph``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Tissue labels of the head model.
AIR, SKIN, FAT, TABLE, DIPLOE, CSF, GRAY, WHITE, DEEP, FALX = range(10)

CT_HU = np.array([-1000, 45, -90, 1500, 950, 6, 38, 28, 35, 60], dtype=np.float32)
MR_T2 = np.array([0, 650, 1250, 40, 1100, 1900, 1000, 700, 880, 250], dtype=np.float32)


@dataclass(frozen=True)
class Lesion:
    """An ellipsoidal lesion in patient coordinates (mm), axis-aligned."""

    center: tuple[float, float, float]
    semi_axes: tuple[float, float, float]

    @property
    def volume_ml(self) -> float:
        a, b, c = self.semi_axes
        return 4.0 / 3.0 * math.pi * a * b * c / 1000.0

    def outline(self, z: float, n: int = 24, scale: float = 1.0) -> list[tuple[float, float]]:
        """Closed (x, y) outline in mm of the lesion's cross-section at ``z`` (empty if none)."""
        cx, cy, cz = self.center
        a, b, c = self.semi_axes
        f = 1.0 - ((z - cz) / c) ** 2
        if f <= 0:
            return []
        r = math.sqrt(f) * scale
        pts = [
            (cx + a * r * math.cos(2 * math.pi * k / n), cy + b * r * math.sin(2 * math.pi * k / n))
            for k in range(n)
        ]
        return pts + [pts[0]]


@dataclass(frozen=True)
class Volume:
    """An axial image stack: stored pixel values plus its geometry (ImageOrientation 1\\0\\0\\0\\1\\0)."""

    pixels: np.ndarray  # (slices, rows, columns), stored values
    origin_xy: tuple[float, float]  # patient x, y of the centre of pixel (row 0, column 0)
    z_positions: tuple[float, ...]  # patient z of each slice, increasing
    pixel_spacing: float  # mm, same for rows and columns
    slice_thickness: float
    lesion: Lesion | None

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """(column, row) of patient point (x, y) on any slice."""
        return (
            (x - self.origin_xy[0]) / self.pixel_spacing,
            (y - self.origin_xy[1]) / self.pixel_spacing,
        )

    def nearest_slice(self, z: float) -> int:
        return int(np.argmin(np.abs(np.asarray(self.z_positions) - z)))


def gaussian_weights(n: int, spacing: float, node_step: float) -> np.ndarray:
    """(n, nodes) weights that smooth values on a coarse node grid onto n samples."""
    length = n * spacing
    nodes = np.arange(-2 * node_step, length + 2 * node_step, node_step)
    pos = (np.arange(n) + 0.5) * spacing
    w = np.exp(-0.5 * ((pos[:, None] - nodes[None, :]) / (0.6 * node_step)) ** 2)
    w[w < 1e-6] = 0.0  # no subnormal floats: they make the matrix products crawl
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


class SmoothField3D:
    """Band-limited noise (unit-ish variance) sampled slice by slice."""

    def __init__(
        self, rng: np.random.Generator, size: int, spacing: float, z: np.ndarray, step: float
    ) -> None:
        self._w = gaussian_weights(size, spacing, step)
        self._wt = np.ascontiguousarray(self._w.T)
        self._z0 = float(z.min()) - 2 * step
        self._step = step
        nz = int((float(z.max()) - self._z0) / step) + 4
        self._grid = (
            rng.standard_normal((nz, self._w.shape[1], self._w.shape[1])).astype(np.float32) * 2.2
        )

    def slice(self, z: float, box: tuple[slice, slice] = (slice(None), slice(None))) -> np.ndarray:
        """The field on the plane at ``z``, within ``box`` (rows, columns)."""
        t = (z - self._z0) / self._step
        k = math.floor(t)
        f = t - k
        g = (1 - f) * self._grid[k] + f * self._grid[k + 1]
        return self._w[box[0]] @ (g @ self._wt[:, box[1]])


def _head_box(z: float, origin: float, spacing: float, size: int) -> tuple[slice, slice]:
    """Rows and columns that can hold head (not air) on the plane at ``z``."""
    c = (72.0 if z >= 0 else 55.0) + 16.0
    f = math.sqrt(max(0.0, 1.0 - (z / c) ** 2)) if abs(z) < c else 0.0
    half_x, y_lo, y_hi = 84.0 * f + 4.0, 5.0 - 102.0 * f - 4.0, 5.0 + 102.0 * f + 4.0

    def index(v: float) -> int:
        return min(size, max(0, round((v - origin) / spacing)))

    return slice(index(y_lo), index(y_hi) + 1), slice(index(-half_x), index(half_x) + 1)


def _head_labels(
    x: np.ndarray, y: np.ndarray, z: float, fold: np.ndarray, sulci: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tissue labels of one axial slice, and depth below the inner skull (mm)."""
    c = 72.0 if z >= 0 else 55.0
    # Normalized radius of the inner skull (brain surface) ellipsoid, and the distance
    # to it in mm to first order, (1 - rho) / |grad rho|; outer surfaces add mm.
    u, v, w = x / 68.0, (y - 5.0) / 86.0, z / c
    rho = np.sqrt(u * u + v * v + w * w)
    grad = np.sqrt((u / 68.0) ** 2 + (v / 86.0) ** 2 + (w / c) ** 2) / np.maximum(rho, 1e-3)
    depth = (1.0 - rho) / np.maximum(grad, 1e-4)  # mm below the inner skull; < 0 outside
    labels = np.full(x.shape, AIR, dtype=np.uint8)
    outside = -depth
    labels[outside < 12.5] = SKIN
    labels[outside < 11.0] = FAT
    labels[outside < 8.0] = TABLE
    labels[(outside < 5.5) & (outside > 2.0)] = DIPLOE
    labels[outside < 0.0] = CSF  # thin subarachnoid layer
    brain = depth > 1.0
    labels[brain] = WHITE
    labels[brain & (depth < 4.5 + 5.0 * np.maximum(fold, 0.0))] = GRAY  # gyri
    sulcus = brain & (np.abs(sulci) < 0.09) & (depth < 9.0 + 4.0 * fold)
    labels[sulcus] = CSF
    labels[
        brain & (np.abs(sulci) < 0.5) & (depth < 12.0 + 4.0 * fold) & ~sulcus & (depth > 3.0)
    ] = GRAY
    # Interhemispheric fissure with the falx, deep nuclei, ventricles.
    fissure = brain & (np.abs(y - 5.0) > 30.0)
    labels[fissure & (np.abs(x) < 1.6)] = CSF
    labels[fissure & (np.abs(x) < 0.5)] = FALX
    for sx in (-1.0, 1.0):
        if abs(z - 8.0) < 13.0:
            deep = ((x - sx * 20.0) / 11.0) ** 2 + ((y - 8.0) / 20.0) ** 2 + ((z - 8.0) / 13.0) ** 2
            labels[brain & (deep < 1.0)] = DEEP
        if abs(z - 22.0) >= 13.0:
            continue
        # Frontal horns near the midline, bodies, then atria diverging backwards.
        half_width = (
            2.5
            + 3.5 * np.exp(-(((y - 24.0) / 9.0) ** 2))
            + 2.0 * np.exp(-(((y + 26.0) / 7.0) ** 2))
        )
        xc = sx * (4.5 + half_width + 0.16 * np.maximum(y + 8.0, 0.0))
        vent = ((x - xc) / half_width) ** 2 + ((y + 1.0) / 34.0) ** 2 + ((z - 22.0) / 13.0) ** 2
        labels[brain & (vent < 1.0)] = CSF
    if abs(z - 8.0) < 9.0:
        third = (x / 2.0) ** 2 + ((y - 10.0) / 12.0) ** 2 + ((z - 8.0) / 9.0) ** 2
        labels[brain & (third < 1.0)] = CSF
    return labels, depth


def _lesion_mask(
    x: np.ndarray, y: np.ndarray, z: float, lesion: Lesion, scale: float, edge: np.ndarray
) -> np.ndarray:
    """Inside the lesion ellipsoid scaled by ``scale``, its border made irregular by ``edge``."""
    cx, cy, cz = lesion.center
    a, b, c = (s * scale for s in lesion.semi_axes)
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 + ((z - cz) / c) ** 2 < 1.0 + 0.12 * edge


def _grid(size: int, spacing: float) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    origin = -(size - 1) / 2.0 * spacing
    axis = (origin + np.arange(size) * spacing).astype(np.float32)
    x, y = np.meshgrid(axis, axis)  # x along columns, y along rows
    return x, y, (origin, origin)


def head_ct(
    rng: np.random.Generator,
    lesion: Lesion | None = None,
    *,
    size: int = 512,
    slices: int = 44,
    thickness: float = 3.0,
) -> Volume:
    """A non-contrast head CT, stored as HU + 1024 (int16), optionally with a hyperdense bleed."""
    spacing = 0.45
    x, y, origin = _grid(size, spacing)
    z_positions = np.round(-42.0 + thickness * np.arange(slices), 3)
    fold = SmoothField3D(rng, size, spacing, z_positions, 9.0)
    sulci = SmoothField3D(rng, size, spacing, z_positions, 6.0)
    texture = SmoothField3D(rng, size, spacing, z_positions, 4.0)
    out = np.empty((slices, size, size), dtype=np.int16)
    for k, z in enumerate(z_positions.tolist()):
        box = _head_box(z, origin[0], spacing, size)
        xb, yb = x[box], y[box]
        labels, depth = _head_labels(xb, yb, z, fold.slice(z, box), sulci.slice(z, box))
        hu = CT_HU[labels]
        tex = texture.slice(z, box)
        bone = (labels == TABLE) | (labels == DIPLOE)
        hu[bone] += 120.0 * tex[bone]
        soft = (labels >= CSF) & (labels <= FALX)
        hu[soft] += 1.5 * tex[soft]
        if lesion is not None:
            edge = fold.slice(z + 2.0, box)
            edema = _lesion_mask(xb, yb, z, lesion, 1.35, edge) & (depth > 1.0)
            hu[edema] = 20.0
            blood = _lesion_mask(xb, yb, z, lesion, 1.0, edge)
            hu[blood] = 72.0 + 4.0 * tex[blood]
        plane = np.full((size, size), CT_HU[AIR], dtype=np.float32)
        plane[box] = hu
        plane += rng.normal(0.0, 3.5, plane.shape).astype(np.float32)
        out[k] = np.clip(np.rint(plane + 1024.0), 0, 4095).astype(np.int16)
    return Volume(out, origin, tuple(float(v) for v in z_positions), spacing, thickness, lesion)


def mr_brain(
    rng: np.random.Generator,
    lesion: Lesion | None = None,
    *,
    size: int = 256,
    slices: int = 24,
    spacing_z: float = 6.0,
    thickness: float = 5.0,
) -> Volume:
    """An axial T2-weighted-looking MR brain (uint16, 12 bits), optionally with a mass and edema."""
    spacing = 0.9
    x, y, origin = _grid(size, spacing)
    z_positions = np.round(-45.0 + spacing_z * np.arange(slices), 3)
    fold = SmoothField3D(rng, size, spacing, z_positions, 9.0)
    sulci = SmoothField3D(rng, size, spacing, z_positions, 6.0)
    texture = SmoothField3D(rng, size, spacing, z_positions, 5.0)
    # Coil sensitivity: brighter towards the back of the head.
    bias = (1.0 + 0.12 * (y / 115.0)).astype(np.float32)
    out = np.empty((slices, size, size), dtype=np.uint16)
    for k, z in enumerate(z_positions.tolist()):
        box = _head_box(z, origin[0], spacing, size)
        xb, yb = x[box], y[box]
        labels, depth = _head_labels(xb, yb, z, fold.slice(z, box), sulci.slice(z, box))
        signal = MR_T2[labels]
        tex = texture.slice(z, box)
        tissue = labels != AIR
        signal[tissue] *= 1.0 + 0.03 * tex[tissue]
        if lesion is not None:
            edge = fold.slice(z + 2.0, box)
            edema = _lesion_mask(xb, yb, z, lesion, 1.6, 2.0 * edge) & (depth > 1.0)
            signal[edema] = 1500.0
            mass = _lesion_mask(xb, yb, z, lesion, 1.0, edge)
            signal[mass] = 1150.0 + 180.0 * tex[mass]
            core = _lesion_mask(xb, yb, z, lesion, 0.45, edge)
            signal[core] = 1750.0
        plane = np.zeros((size, size), dtype=np.float32)
        plane[box] = signal
        plane *= bias
        noisy = np.hypot(plane + rng.normal(0, 18.0, plane.shape), rng.normal(0, 18.0, plane.shape))
        out[k] = np.clip(np.rint(noisy), 0, 4095).astype(np.uint16)
    return Volume(out, origin, tuple(float(v) for v in z_positions), spacing, thickness, lesion)
