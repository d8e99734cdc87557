"""Region geometry on the slice plane, for the region editor (numpy only: no Qt, no VTK).

Points are world mm on the shown slice plane, as the slice viewer draws them: the centre of
pixel (column i, row j) is at (i * dx, j * dy), x to the right, y down. SCOORD puts (0, 0) at
the top-left corner of the first pixel, so SCOORD (c, r) is ((c - 0.5) * dx, (r - 0.5) * dy).
"""

from __future__ import annotations

import numpy as np

from app.archive.volume import ImageVolume, pixel_for_point
from app.domain import Region


def plane_points(volume: ImageVolume, region: Region) -> np.ndarray:
    """The region's points as (k, 2) world mm on the slice plane, where the viewer draws them."""
    _, dy, dx = volume.spacing
    if region.is_3d:
        pixels = np.array([pixel_for_point(volume, p[:3]) for p in region.coordinates])
    else:
        pixels = np.array([p[:2] for p in region.coordinates], dtype=np.float64)
    return (pixels.reshape(-1, 2) - 0.5) * np.array([dx, dy])


def moved_region(
    volume: ImageVolume, region: Region, base: np.ndarray, points: np.ndarray
) -> Region:
    """``region`` with point i moved within the slice plane by ``points[i] - base[i]`` (mm).

    Points that did not move keep their exact values; 3D points keep their distance from
    the slice plane.
    """
    _, dy, dx = volume.spacing
    delta = np.asarray(points, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    coords: list[tuple[float, ...]] = []
    if region.is_3d:
        row, col = np.asarray(volume.row_cosines), np.asarray(volume.col_cosines)
        for p, (ddx, ddy) in zip(region.coordinates, np.round(delta, 4), strict=True):
            moved = np.asarray(p[:3], dtype=np.float64) + ddx * row + ddy * col
            coords.append(tuple(float(v) for v in moved) + tuple(p[3:]))
    else:
        shift = np.round(delta / np.array([dx, dy]), 4)
        for p, (dc, dr) in zip(region.coordinates, shift, strict=True):
            coords.append((float(p[0] + dc), float(p[1] + dr)) + tuple(p[2:]))
    return Region(
        region.graphic_type, tuple(coords),
        referenced_sop_uid=region.referenced_sop_uid,
        referenced_sop_class_uid=region.referenced_sop_class_uid,
        referenced_frame=region.referenced_frame,
        frame_of_reference_uid=region.frame_of_reference_uid,
    )


def drawn_region(
    volume: ImageVolume,
    slice_index: int,
    points: np.ndarray,
    *,
    like: Region | None = None,
    sop_class_uid: str | None = None,
) -> Region | None:
    """A closed outline drawn on ``slice_index`` (world mm) as a Region, or None if unplaceable.

    2D (a closed POLYLINE in SCOORD pixels on the slice's image) unless ``like`` is 3D or the
    slice has no SOP Instance UID; then 3D (a closed POLYGON in the volume's frame of reference,
    on the slice plane). ``like`` (the region being redrawn) supplies the references.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    use_3d = like.is_3d if like is not None else not volume.sop_uids[slice_index]
    if not use_3d:
        _, dy, dx = volume.spacing
        pixels = np.round(pts / np.array([dx, dy]) + 0.5, 3)
        coords = [(float(c), float(r)) for c, r in pixels]
        if like is not None:
            sop, cls, frame = (
                like.referenced_sop_uid, like.referenced_sop_class_uid, like.referenced_frame
            )
        else:
            sop, cls, frame = volume.sop_uids[slice_index], sop_class_uid, volume.frames[slice_index]
        return Region(
            "POLYLINE", (*coords, coords[0]), referenced_sop_uid=sop,
            referenced_sop_class_uid=cls, referenced_frame=frame,
        )
    uid = like.frame_of_reference_uid if like is not None else volume.frame_of_reference_uid
    if not uid:
        return None
    origin, normal = np.asarray(volume.origin), volume.normal
    plane = origin + normal * float(np.dot(volume.positions[slice_index] - origin, normal))
    xyz = (plane + np.outer(pts[:, 0], volume.row_cosines)
           + np.outer(pts[:, 1], volume.col_cosines))
    coords3 = [tuple(float(v) for v in np.round(p, 3)) for p in xyz]
    return Region("POLYGON", (*coords3, coords3[0]), frame_of_reference_uid=uid)


def is_closed(kind: str, points: np.ndarray) -> bool:
    return kind in ("POLYLINE", "POLYGON") and len(points) > 2 and bool(
        np.allclose(points[0], points[-1])
    )


def _ellipse_box(points: np.ndarray) -> np.ndarray:
    centre = (points[0] + points[1]) / 2.0
    a, b = points[1] - centre, (points[3] - points[2]) / 2.0
    half = np.sqrt(a**2 + b**2)  # the extent of centre + a cos t + b sin t along x and y
    return np.concatenate([centre - half, centre + half])


def shape_box(kind: str, points: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) world mm around the shape as drawn."""
    if kind == "CIRCLE" and len(points) >= 2:
        r = float(np.linalg.norm(points[1] - points[0]))
        return np.concatenate([points[0] - r, points[0] + r])
    if kind == "ELLIPSE" and len(points) >= 4:
        return _ellipse_box(points)
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def scaled_to_handle(
    kind: str, points: np.ndarray, box: np.ndarray, handle: tuple[int, int],
    delta: np.ndarray, min_size: float,
) -> np.ndarray:
    """The shape after dragging box handle ``handle`` by ``delta``: scaled against the
    opposite side (a circle about its centre), never flipped or smaller than ``min_size``."""
    out = points.copy()
    if kind == "CIRCLE" and len(points) >= 2:
        centre, r = points[0], float(np.linalg.norm(points[1] - points[0]))
        grabbed = centre + np.array(handle, dtype=np.float64) * r + delta
        new_r = max([abs(grabbed[a] - centre[a]) for a in (0, 1) if handle[a]] + [min_size / 2])
        out[1:] = centre + (points[1:] - centre) * (new_r / r if r > 0 else 1.0)
        return out
    for axis, h in enumerate(handle):
        lo, hi = float(box[axis]), float(box[axis + 2])
        if h == 0 or hi - lo < 1e-9:
            continue
        anchor, edge = (hi, lo) if h < 0 else (lo, hi)
        scale = (edge + delta[axis] - anchor) / (edge - anchor)
        scale = max(scale, min_size / (hi - lo))
        out[:, axis] = anchor + (points[:, axis] - anchor) * scale
    return out


def moved_vertex(
    kind: str, points: np.ndarray, index: int, delta: np.ndarray, min_size: float
) -> np.ndarray:
    """The shape after dragging vertex ``index`` by ``delta``.

    An ellipse's axis end moves along its axis, its partner mirrored, so the axes stay at right
    angles; a closed polyline's first and last points move together.
    """
    out = points.copy()
    if kind == "ELLIPSE" and len(points) >= 4:
        partner = index ^ 1
        centre = (points[index] + points[partner]) / 2.0
        axis = points[index] - centre
        length = float(np.linalg.norm(axis))
        unit = axis / length if length > 0 else np.array([1.0, 0.0])
        half = max(float(np.dot(points[index] + delta - centre, unit)), min_size / 2)
        out[index], out[partner] = centre + unit * half, centre - unit * half
        return out
    out[index] = points[index] + delta
    if is_closed(kind, points) and index in (0, len(points) - 1):
        out[0] = out[-1] = out[index]
    return out
