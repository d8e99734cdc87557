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
from vtkmodules.vtkCommonCore import vtkPoints, vtkUnsignedCharArray
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkPolyLine
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer, vtkTextActor

from app.archive.volume import ImageVolume, slice_index_for_region
from app.domain import Region
from viewers.region_slicing import region_pieces

NORMAL_COLOUR = (1.0, 0.62, 0.1)  # amber outline
HIGHLIGHT_COLOUR = (0.2, 1.0, 1.0)  # cyan: the finding the reader picked
OVERLAY_Z = -0.5  # in front of the image plane (the camera looks along +z)
EDIT_COLOUR = (1.0, 0.9, 0.2)  # yellow: a region being edited or drawn
BOX_COLOUR = (0.85, 0.85, 0.85)
BOX_HANDLE_RGB = (255, 255, 255)
VERTEX_HANDLE_RGB = (255, 230, 50)


@dataclass(frozen=True)
class Handle:
    """A square drag handle: centre (world mm), side (mm), a vertex's (yellow) or a box's (white)."""

    centre: np.ndarray
    side: float
    vertex: bool


@dataclass(frozen=True)
class Outline:
    """One polyline in world mm on the slice plane; ``closed`` joins the last point to the first."""

    points: np.ndarray  # (k, 2)
    closed: bool
    highlight: bool
    owner: str | None = None  # what the region belongs to (a finding's Tracking UID)


def region_outlines(
    regions: Sequence[Region],
    volume: ImageVolume,
    slice_index: int,
    *,
    owners: Sequence[str] | None = None,
    highlight: str | None = None,
) -> list[Outline]:
    """The outlines to draw on ``slice_index``: 2D regions on their own image, 3D ones on
    every slice they cross (``viewers.region_slicing``)."""
    _, dy, dx = volume.spacing
    marker = 0.025 * max(volume.shape[2] * dx, volume.shape[1] * dy)
    scale = np.array([dx, dy])
    out: list[Outline] = []
    for n, region in enumerate(regions):
        if not region.coordinates:
            continue
        owner = owners[n] if owners is not None else None
        lit = highlight is not None and owner == highlight
        if region.is_3d:
            for piece in region_pieces(volume, region, slice_index):
                world = (piece.pixels - 0.5) * scale
                if piece.marker:
                    shapes = [
                        s for p in world
                        for s in [(c, False) for c in _cross(p, marker)] + [
                            (_circle(p, marker), True)
                        ]
                    ]
                else:
                    shapes = [(world, piece.closed)]
                out.extend(Outline(points, closed, lit, owner) for points, closed in shapes)
            continue
        if slice_index_for_region(volume, region) != slice_index:
            continue
        pixels = np.array([p[:2] for p in region.coordinates], dtype=np.float64)
        world = (pixels - 0.5) * scale
        for points, closed in _shapes(region.graphic_type, world, marker):
            out.append(Outline(points, closed, lit, owner))
    return out


def _shapes(graphic_type: str, world: np.ndarray, marker: float) -> list[tuple[np.ndarray, bool]]:
    kind = graphic_type.upper()
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
            False: line_actor(NORMAL_COLOUR, 2.0),
            True: line_actor(HIGHLIGHT_COLOUR, 3.0),
        }
        for actor in self._actors.values():
            renderer.AddViewProp(actor)

    def show(self, outlines: Sequence[Outline]) -> None:
        for lit, actor in self._actors.items():
            actor.GetMapper().SetInputData(
                outline_polydata([o for o in outlines if o.highlight == lit])
            )
            actor.SetVisibility(any(o.highlight == lit for o in outlines))

    def clear(self) -> None:
        self.show([])


def line_actor(colour: tuple[float, float, float], width: float) -> vtkActor:
    """An unlit, unpickable actor for lines of one colour and width (empty until given data)."""
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


def outline_polydata(outlines: Sequence[Outline], z: float = OVERLAY_Z) -> vtkPolyData:
    """The outlines as VTK polylines at depth ``z`` (smaller z is nearer the camera)."""
    points = vtkPoints()
    lines = vtkCellArray()
    for outline in outlines:
        ids = []
        for x, y in outline.points:
            ids.append(points.InsertNextPoint(float(x), float(y), z))
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


class EditOverlay:
    """What the region editor draws: the shape, its box, square handles and a one-line hint."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self._shape = line_actor(EDIT_COLOUR, 2.5)
        self._box = line_actor(BOX_COLOUR, 1.0)
        self._fill = line_actor((1.0, 1.0, 1.0), 1.0)
        self._fill.GetMapper().SetColorModeToDirectScalars()
        self._fill.GetMapper().SetScalarModeToUseCellData()
        self._border = line_actor((0.0, 0.0, 0.0), 1.5)
        self._hint = vtkTextActor()
        prop = self._hint.GetTextProperty()
        prop.SetColor(*EDIT_COLOUR)
        prop.SetJustificationToCentered()
        prop.SetVerticalJustificationToBottom()
        prop.ShadowOn()
        prop.BoldOn()
        self._renderer = renderer
        self._actors = (self._box, self._shape, self._fill, self._border, self._hint)
        for actor in self._actors:
            actor.SetVisibility(False)
            renderer.AddViewProp(actor)

    def show(
        self, shapes: Sequence[Outline], box: Sequence[Outline], handles: Sequence[Handle],
        hint: str, ratio: float,
    ) -> None:
        """Draw these (``ratio``: device pixels per logical pixel, for the text size)."""
        self._shape.GetMapper().SetInputData(outline_polydata(shapes, z=-0.6))
        self._box.GetMapper().SetInputData(outline_polydata(box, z=-0.6))
        fill, border = _squares(handles)
        self._fill.GetMapper().SetInputData(fill)
        self._border.GetMapper().SetInputData(border)
        self._hint.SetInput(hint)
        self._hint.GetTextProperty().SetFontSize(int(13 * ratio))
        width = self._renderer.GetRenderWindow().GetSize()[0]
        self._hint.SetDisplayPosition(width // 2, int(26 * ratio))  # above the edge letter
        for actor in self._actors:
            actor.SetVisibility(True)

    def hide(self) -> None:
        for actor in self._actors:
            actor.SetVisibility(False)


def _squares(handles: Sequence[Handle]) -> tuple[vtkPolyData, vtkPolyData]:
    """Filled squares and their black borders, in front of the outlines."""
    points, border_points = vtkPoints(), vtkPoints()
    polys, lines = vtkCellArray(), vtkCellArray()
    colours = vtkUnsignedCharArray()
    colours.SetNumberOfComponents(3)
    for k, handle in enumerate(handles):
        h = handle.side / 2.0
        cx, cy = float(handle.centre[0]), float(handle.centre[1])
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            points.InsertNextPoint(cx + sx * h, cy + sy * h, -0.7)
            border_points.InsertNextPoint(cx + sx * h, cy + sy * h, -0.8)
        polys.InsertNextCell(4, [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3])
        lines.InsertNextCell(5, [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3, 4 * k])
        colours.InsertNextTuple3(*(VERTEX_HANDLE_RGB if handle.vertex else BOX_HANDLE_RGB))
    fill, border = vtkPolyData(), vtkPolyData()
    fill.SetPoints(points)
    fill.SetPolys(polys)
    fill.GetCellData().SetScalars(colours)
    border.SetPoints(border_points)
    border.SetLines(lines)
    return fill, border
