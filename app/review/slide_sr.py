"""TID 1500 SR findings whose regions are on a whole-slide image, as groups the slide
view draws beside the bulk annotations (Qt-free).

An SR region is on the slide when it references one of the pyramid's level images
(SCOORD: image coordinates of that level's Total Pixel Matrix, or of one frame (tile)
when a frame is referenced) or lies in the slide's Frame of Reference (SCOORD3D, mm).
Each such finding is one group, numbered from ``SR_GROUP_BASE`` by its place among the
study's SR findings (so a group keeps its number, and its show/hide state, while the
reader rejects others), in one colour no AI group of the demo uses, labelled with its
Tracking Identifier. CIRCLE and ELLIPSE are drawn as 64-sided polygons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from app.archive.slide_pyramid import SlideLevel, SlidePyramid
from app.domain import Finding, Region
from app.results.ann_reader import AnnotationGroupInfo

SR_GROUP_BASE = 10_000
SR_COLOUR = (255, 150, 40)  # orange
_SIDES = 64


def sr_numbers(findings: Sequence[Finding]) -> dict[str, int]:
    """Group number of each TID 1500 finding (by Tracking UID), stable for a study."""
    sr = [f for f in findings if f.template == "TID1500"]
    return {f.tracking_uid: SR_GROUP_BASE + i for i, f in enumerate(sr)}


def sr_groups(
    findings: Sequence[Finding], pyramid: SlidePyramid, numbers: dict[str, int]
) -> tuple[AnnotationGroupInfo, ...]:
    """One group per finding of ``findings`` (numbered by ``numbers``, see ``sr_numbers``)
    whose first region is on the slide, in base-level image coordinates."""
    out = []
    for f in findings:
        number = numbers.get(f.tracking_uid)
        placed = on_slide(f.regions[0], pyramid) if f.regions and number is not None else None
        if placed is None or number is None:
            continue
        kind, shape = placed
        points = kind == "POINT"
        out.append(
            AnnotationGroupInfo(
                number=number,
                uid=f"sr-{f.tracking_uid}",
                label=f.tracking_id or f.finding.meaning,
                category=f.finding,
                property_type=f.finding,
                graphic_type=kind,
                colour=SR_COLOUR,
                shapes=tuple(p.reshape(1, 2) for p in shape) if points else (shape,),
                probabilities=None,
            )
        )
    return tuple(out)


def on_slide(region: Region, pyramid: SlidePyramid) -> tuple[str, np.ndarray] | None:
    """(graphic type to draw, (n, 2) base-level image coordinates) of ``region``, or None
    when it is not on this slide."""
    pts = np.asarray(region.coordinates, dtype=np.float64)
    if pts.ndim != 2 or not len(pts):
        return None
    if region.is_3d:
        base_for = pyramid.base.frame_of_reference_uid
        if not base_for or region.frame_of_reference_uid != base_for:
            return None
        if not pyramid.has_slide_geometry or pts.shape[1] < 3:
            return None
        xy = pyramid.slide_to_base(pts[:, :3])
    else:
        found = _level_of(region.referenced_sop_uid or "", pyramid)
        if found is None:
            return None
        index, level = found
        offset = np.zeros(2)
        if region.referenced_frame:
            tile = _tile_of(level, region.referenced_sop_uid or "", region.referenced_frame)
            if tile is None:
                return None
            offset = np.array([tile[0] * level.tile_width, tile[1] * level.tile_height], float)
        xy = (pts[:, :2] + offset) * pyramid.downsample(index)
    kind = region.graphic_type.upper()
    if kind in ("POINT", "MULTIPOINT"):
        return "POINT", xy
    if kind == "CIRCLE" and len(xy) >= 2:
        r = float(np.linalg.norm(xy[1] - xy[0]))
        return "POLYGON", _ellipse(xy[0], np.array([r, 0.0]), np.array([0.0, r]))
    if kind == "ELLIPSE" and len(xy) >= 4:
        centre = (xy[0] + xy[1]) / 2
        return "POLYGON", _ellipse(centre, (xy[1] - xy[0]) / 2, (xy[3] - xy[2]) / 2)
    closed = len(xy) > 2 and np.allclose(xy[0], xy[-1])
    return ("POLYGON" if kind == "POLYGON" or closed else "POLYLINE"), xy


def _level_of(sop_uid: str, pyramid: SlidePyramid) -> tuple[int, SlideLevel] | None:
    for i, level in enumerate(pyramid.levels):
        if sop_uid == level.sop_uid or sop_uid in (level.tile_sops or {}).values():
            return i, level
    return None


def _tile_of(level: SlideLevel, sop_uid: str, frame: int) -> tuple[int, int] | None:
    """Tile (col, row) of 1-based ``frame`` of instance ``sop_uid`` of ``level``."""
    if level.sparse is not None:
        for key, number in level.sparse.items():
            if number == frame and level.sop_for(*key) == sop_uid:
                return key
        return None
    index = frame - 1
    if not 0 <= index < level.tiles_across * level.tiles_down:
        return None
    return index % level.tiles_across, index // level.tiles_across


def _ellipse(centre: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, _SIDES, endpoint=False)
    return centre + np.outer(np.cos(t), a) + np.outer(np.sin(t), b)
