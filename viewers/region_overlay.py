"""Finding regions drawn over the current slice as VTK polylines.

Geometry is worked out in plain numpy (``region_outlines``) and only then
turned into VTK actors, so where a region lands can be checked without a
render. Coordinates follow the slice viewer's convention: world x/y in mm,
with the centre of pixel (column i, row j) at (i * dx, j * dy) and rows going
down the screen. SCOORD puts (0, 0) at the top-left *corner* of the first
pixel, so SCOORD (c, r) maps to ((c - 0.5) * dx, (r - 0.5) * dy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkPolyLine
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer

from app.archive.volume import ImageVolume, pixel_for_point, slice_index_for_region
from app.domain import Region

NORMAL_COLOUR = (1.0, 0.62, 0.1)  # amber outline
HIGHLIGHT_COLOUR = (0.2, 1.0, 1.0)  # cyan: the finding the reader picked
OVERLAY_Z = -0.5  # in front of the image plane (the camera looks along +z)


@dataclass(frozen=True)
class Outline:
    """One polyline in world mm on the slice plane; ``closed`` joins the last point to the first."""

    points: np.ndarray  # (k, 2)
    closed: bool
    highlight: bool


def region_outlines(
    regions: Sequence[Region],
    volume: ImageVolume,
    slice_index: int,
    *,
    owners: Sequence[str] | None = None,
    highlight: str | None = None,
) -> list[Outline]:
    """The outlines to draw on ``slice_index``: 2D regions on their own image, 3D on the nearest."""
    _, dy, dx = volume.spacing
    marker = 0.025 * max(volume.shape[2] * dx, volume.shape[1] * dy)
    out: list[Outline] = []
    for n, region in enumerate(regions):
        if slice_index_for_region(volume, region) != slice_index or not region.coordinates:
            continue
        lit = highlight is not None and owners is not None and owners[n] == highlight
        if region.is_3d:
            pixels = np.array([pixel_for_point(volume, p[:3]) for p in region.coordinates])
        else:
            pixels = np.array([p[:2] for p in region.coordinates], dtype=np.float64)
        world = (pixels - 0.5) * np.array([dx, dy])
        for points, closed in _shapes(region.graphic_type, world, marker, region.is_3d):
            out.append(Outline(points, closed, lit))
    return out


def _shapes(
    graphic_type: str, world: np.ndarray, marker: float, is_3d: bool
) -> list[tuple[np.ndarray, bool]]:
    kind = graphic_type.upper()
    if is_3d:  # a marker on the nearest slice, plus the outline projected onto it
        centre = np.mean(world, axis=0)
        shapes = [(c, False) for c in _cross(centre, marker)] + [(_circle(centre, marker), True)]
        if kind in ("POLYGON", "POLYLINE") and len(world) > 1:
            shapes.append((world, kind == "POLYGON"))
        return shapes
    if kind == "POLYGON":
        return [(world, True)]
    if kind == "POLYLINE":
        closed = len(world) > 2 and bool(np.allclose(world[0], world[-1]))
        return [(world[:-1] if closed else world, closed)]
    if kind == "CIRCLE" and len(world) >= 2:
        radius = float(np.linalg.norm(world[1] - world[0]))
        return [(_circle(world[0], radius), True)]
    if kind == "ELLIPSE" and len(world) >= 4:
        return [(_ellipse(world), True)]
    # POINT, MULTIPOINT and anything unknown: a cross at each point
    return [(c, False) for p in world for c in _cross(p, marker)]


def _cross(centre: np.ndarray, size: float) -> list[np.ndarray]:
    x, y = float(centre[0]), float(centre[1])
    return [np.array([[x - size, y], [x + size, y]]), np.array([[x, y - size], [x, y + size]])]


def _circle(centre: np.ndarray, radius: float, segments: int = 64) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def _ellipse(world: np.ndarray, segments: int = 64) -> np.ndarray:
    """DICOM ELLIPSE: the major axis end points, then the minor axis end points."""
    major = world[1] - world[0]
    centre = (world[0] + world[1]) / 2.0
    a = float(np.linalg.norm(major)) / 2.0
    b = float(np.linalg.norm(world[3] - world[2])) / 2.0
    u = major / (2.0 * a) if a > 0 else np.array([1.0, 0.0])
    v = np.array([-u[1], u[0]])
    t = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    return centre + np.outer(a * np.cos(t), u) + np.outer(b * np.sin(t), v)


class RegionOverlay:
    """Two line actors (normal and highlighted) holding every outline on the slice."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self._actors = {
            False: self._make_actor(NORMAL_COLOUR, 2.0),
            True: self._make_actor(HIGHLIGHT_COLOUR, 3.0),
        }
        for actor in self._actors.values():
            renderer.AddViewProp(actor)

    @staticmethod
    def _make_actor(colour: tuple[float, float, float], width: float) -> vtkActor:
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(vtkPolyData())
        actor = vtkActor()
        actor.SetMapper(mapper)
        prop = actor.GetProperty()
        prop.SetColor(*colour)
        prop.SetLineWidth(width)
        prop.LightingOff()
        actor.PickableOff()
        return actor

    def show(self, outlines: Sequence[Outline]) -> None:
        for lit, actor in self._actors.items():
            actor.GetMapper().SetInputData(_polydata([o for o in outlines if o.highlight == lit]))
            actor.SetVisibility(any(o.highlight == lit for o in outlines))

    def clear(self) -> None:
        self.show([])


def _polydata(outlines: Sequence[Outline]) -> vtkPolyData:
    points = vtkPoints()
    lines = vtkCellArray()
    for outline in outlines:
        ids = []
        for x, y in outline.points:
            ids.append(points.InsertNextPoint(float(x), float(y), OVERLAY_Z))
        if outline.closed and ids:
            ids.append(ids[0])
        line = vtkPolyLine()
        line.GetPointIds().SetNumberOfIds(len(ids))
        for i, pid in enumerate(ids):
            line.GetPointIds().SetId(i, pid)
        lines.InsertNextCell(line)
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetLines(lines)
    return poly
