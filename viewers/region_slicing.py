"""Where a SCOORD3D region crosses one slice (numpy only: no Qt, no VTK).

A 3D region is drawn on every slice whose slab it enters: the slab of slice k is
the set of points within half a slice spacing of its plane, measured along the
slice normal. On that slice the reader sees

- POINT / MULTIPOINT: the points that lie in the slab (as markers);
- POLYLINE / POLYGON / ELLIPSE: a shape lying in the slab entirely is drawn whole;
  otherwise the pieces of its edges inside the slab, and, for a closed shape, the
  segments where its surface cuts the slice plane itself;
- ELLIPSOID: the ellipse where it cuts the slice plane.

Results are SCOORD-style (column, row) pixel coordinates on the slice (the centre of
the first pixel is (0.5, 0.5)), the same convention as 2D regions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.archive.volume import ImageVolume
from app.domain import Region

ELLIPSE_SEGMENTS = 64
_EPS = 1e-6


@dataclass(frozen=True)
class SlicePiece:
    """A piece of a 3D region on one slice, in SCOORD pixels; ``marker``: draw a marker at
    each point instead of a line."""

    pixels: np.ndarray  # (k, 2) column, row
    closed: bool = False
    marker: bool = False


def region_pieces(volume: ImageVolume, region: Region, slice_index: int) -> list[SlicePiece]:
    """What of 3D ``region`` to draw on ``slice_index`` (empty: it does not reach that slice)."""
    if not region.is_3d or not region.coordinates:
        return []
    if volume.frame_of_reference_uid and region.frame_of_reference_uid not in (
        None,
        "",
        volume.frame_of_reference_uid,
    ):
        return []
    points = np.asarray([p[:3] for p in region.coordinates], dtype=np.float64).reshape(-1, 3)
    normal = volume.normal
    plane = float(np.dot(volume.positions[slice_index], normal))
    half = max(abs(float(volume.spacing[0])) / 2.0, 1e-3)
    kind = region.graphic_type.upper()
    if kind in ("POINT", "MULTIPOINT"):
        inside = np.abs(points @ normal - plane) <= half + _EPS
        if not inside.any():
            return []
        return [SlicePiece(_to_pixels(volume, points[inside]), marker=True)]
    if kind == "ELLIPSOID" and len(points) >= 6:
        ring = _ellipsoid_section(points, normal, plane)
        return [] if ring is None else [SlicePiece(_to_pixels(volume, ring), closed=True)]
    if kind == "ELLIPSE" and len(points) >= 4:
        points, closed = _ellipse_ring(points), True
    elif kind == "POLYGON":
        closed = len(points) > 2
    elif kind == "POLYLINE":
        closed = len(points) > 3 and bool(np.allclose(points[0], points[-1]))
    else:  # unknown: markers at the points in the slab
        inside = np.abs(points @ normal - plane) <= half + _EPS
        return [SlicePiece(_to_pixels(volume, points[inside]), marker=True)] if inside.any() else []
    if closed and len(points) > 1 and np.allclose(points[0], points[-1]):
        points = points[:-1]
    return _polyline_pieces(volume, points, closed, normal, plane, half)


def _polyline_pieces(
    volume: ImageVolume,
    points: np.ndarray,
    closed: bool,
    normal: np.ndarray,
    plane: float,
    half: float,
) -> list[SlicePiece]:
    t = points @ normal - plane
    if np.all(np.abs(t) <= half + _EPS):  # lies in this slab: draw it whole
        return [SlicePiece(_to_pixels(volume, points), closed=closed and len(points) > 2)]
    n = len(points)
    edges = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if closed and n > 2 else [])
    pieces: list[SlicePiece] = []
    for a, b in edges:
        clipped = _clip_to_slab(points[a], points[b], t[a], t[b], half)
        if clipped is not None:
            pieces.append(SlicePiece(_to_pixels(volume, clipped)))
    if closed and n > 2:
        for segment in _plane_cuts(points, t, normal):
            pieces.append(SlicePiece(_to_pixels(volume, segment)))
    return pieces


def _clip_to_slab(
    p: np.ndarray, q: np.ndarray, tp: float, tq: float, half: float
) -> np.ndarray | None:
    """The part of segment p-q with |t| <= half, or None."""
    if abs(tq - tp) < _EPS:
        return np.stack([p, q]) if abs(tp) <= half + _EPS else None
    u1, u2 = (-half - tp) / (tq - tp), (half - tp) / (tq - tp)
    lo, hi = max(0.0, min(u1, u2)), min(1.0, max(u1, u2))
    if hi - lo <= _EPS:
        return None
    return np.stack([p + lo * (q - p), p + hi * (q - p)])


def _plane_cuts(points: np.ndarray, t: np.ndarray, normal: np.ndarray) -> list[np.ndarray]:
    """Segments where the closed polygon's interior meets the plane t = 0 (even-odd pairing
    of its edge crossings along the cut line)."""
    n = len(points)
    crossings = []
    for a in range(n):
        b = (a + 1) % n
        if (t[a] < 0) != (t[b] < 0):
            u = t[a] / (t[a] - t[b])
            crossings.append(points[a] + u * (points[b] - points[a]))
    if len(crossings) < 2:
        return []
    poly_normal = np.zeros(3)
    for a in range(n):  # Newell's method
        p, q = points[a], points[(a + 1) % n]
        poly_normal += np.cross(p, q)
    direction = np.cross(normal, poly_normal)
    if np.linalg.norm(direction) < _EPS:
        return []
    cuts = sorted(crossings, key=lambda c: float(np.dot(c, direction)))
    return [np.stack([cuts[k], cuts[k + 1]]) for k in range(0, len(cuts) - 1, 2)]


def _ellipse_ring(points: np.ndarray) -> np.ndarray:
    """DICOM ELLIPSE (major axis ends, then minor axis ends) sampled as a closed ring."""
    centre = (points[0] + points[1]) / 2.0
    a, b = (points[1] - points[0]) / 2.0, (points[3] - points[2]) / 2.0
    angles = np.linspace(0.0, 2.0 * math.pi, ELLIPSE_SEGMENTS, endpoint=False)
    return centre + np.outer(np.cos(angles), a) + np.outer(np.sin(angles), b)


def _ellipsoid_section(points: np.ndarray, normal: np.ndarray, plane: float) -> np.ndarray | None:
    """DICOM ELLIPSOID (three pairs of axis end points) cut by the plane n.x = plane."""
    centre = points[:6].mean(axis=0)
    axes = np.stack([(points[2 * k + 1] - points[2 * k]) / 2.0 for k in range(3)], axis=1)
    w = axes.T @ normal  # x = centre + axes @ u with |u| = 1; the plane is w.u = h
    h = plane - float(np.dot(centre, normal))
    size = float(np.dot(w, w))
    if size < _EPS or h * h >= size:
        return None
    radius = math.sqrt(1.0 - h * h / size)
    unit = w / math.sqrt(size)
    helper = np.eye(3)[int(np.argmin(np.abs(unit)))]
    e1 = np.cross(unit, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(unit, e1)
    angles = np.linspace(0.0, 2.0 * math.pi, ELLIPSE_SEGMENTS, endpoint=False)
    u = (h / size) * w + radius * (np.outer(np.cos(angles), e1) + np.outer(np.sin(angles), e2))
    return centre + u @ axes.T


def _to_pixels(volume: ImageVolume, xyz: np.ndarray) -> np.ndarray:
    """Patient points projected onto the slice plane as SCOORD (column, row)."""
    offset = np.asarray(xyz, dtype=np.float64).reshape(-1, 3) - np.asarray(volume.origin)
    _, sy, sx = volume.spacing
    cols = offset @ np.asarray(volume.row_cosines) / sx + 0.5
    rows = offset @ np.asarray(volume.col_cosines) / sy + 0.5
    return np.stack([cols, rows], axis=1)
