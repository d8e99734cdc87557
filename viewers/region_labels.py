"""Measurement labels (value and unit) drawn next to a finding's region on the slice."""

from __future__ import annotations

from collections.abc import Sequence

from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTextActor

from app.domain import Finding, Measurement
from viewers.region_overlay import HIGHLIGHT_COLOUR, NORMAL_COLOUR, Outline


def measurement_label(m: Measurement) -> str:
    """e.g. 'Volume 12.5 ml' (UCUM unit code; no unit for a ratio)."""
    unit = m.unit.value
    value = f"{m.value:.3g}" if abs(m.value) < 1000 else f"{m.value:.0f}"
    return f"{m.concept.meaning} {value}" + ("" if unit in ("1", "") else f" {unit}")


def finding_labels(findings: Sequence[Finding]) -> dict[str, str]:
    """Tracking UID -> the label text of its measurements (findings without any: none)."""
    return {
        f.tracking_uid: "\n".join(measurement_label(m) for m in f.measurements)
        for f in findings
        if f.measurements
    }


class RegionLabels:
    """One text actor per labelled finding on the slice, anchored right of its outline."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self._renderer = renderer
        self._actors: list[vtkTextActor] = []
        self.font_size = 13

    def show(
        self, outlines: Sequence[Outline], texts: dict[str, str]
    ) -> list[tuple[str, float, float]]:
        """Place the labels; returns (text, x, y) world mm of each (for tests)."""
        boxes: dict[str, tuple[float, float, float, float, bool]] = {}
        for o in outlines:
            if o.owner is None or o.owner not in texts or not len(o.points):
                continue
            x0, y0 = (float(v) for v in o.points.min(axis=0))
            x1, y1 = (float(v) for v in o.points.max(axis=0))
            old = boxes.get(o.owner)
            if old is not None:
                x0, y0 = min(x0, old[0]), min(y0, old[1])
                x1, y1 = max(x1, old[2]), max(y1, old[3])
            boxes[o.owner] = (x0, y0, x1, y1, o.highlight or bool(old and old[4]))
        placed = []
        while len(self._actors) < len(boxes):
            actor = vtkTextActor()
            prop = actor.GetTextProperty()
            prop.ShadowOn()
            prop.BoldOn()
            prop.SetVerticalJustificationToTop()
            actor.GetPositionCoordinate().SetCoordinateSystemToWorld()
            actor.PickableOff()
            self._renderer.AddViewProp(actor)
            self._actors.append(actor)
        for actor, (owner, (_, y0, x1, _, lit)) in zip(self._actors, boxes.items(), strict=False):
            text = texts[owner]
            actor.SetInput(text)
            actor.GetTextProperty().SetFontSize(self.font_size)
            actor.GetTextProperty().SetColor(*(HIGHLIGHT_COLOUR if lit else NORMAL_COLOUR))
            x, y = x1 + 4.0, y0  # right of the region, level with its top
            actor.GetPositionCoordinate().SetValue(x, y, -0.9)
            actor.SetVisibility(True)
            placed.append((text, x, y))
        for actor in self._actors[len(boxes) :]:
            actor.SetVisibility(False)
        return placed

    def clear(self) -> None:
        for actor in self._actors:
            actor.SetVisibility(False)
