"""The text drawn over a slice: corner facts, patient direction letters, a centred message.

Corners: series and size (top left), window/level and preset (top right),
slice number and position (bottom left), zoom (bottom right). The letters at
the edges say which patient direction each side of the image faces, so an
image shown upside down or mirrored is visible at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import vtkmodules.vtkRenderingFreeType  # noqa: F401  (text rendering)
from vtkmodules.vtkRenderingAnnotation import vtkCornerAnnotation
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTextActor

from app.archive.volume import ImageVolume

TEXT_COLOUR = (0.92, 0.92, 0.86)
_PATIENT_AXES = (("L", "R"), ("P", "A"), ("H", "F"))  # + and - direction of x, y, z
_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}


def orientation_label(direction: Sequence[float]) -> str:
    """Patient direction letters for a unit vector, strongest axis first (e.g. "LP")."""
    vec = np.asarray(direction, dtype=np.float64)
    order = np.argsort(-np.abs(vec))
    letters = [_PATIENT_AXES[i][0 if vec[i] > 0 else 1] for i in order if abs(vec[i]) > 0.3]
    return "".join(letters[:2])


def opposite_label(letters: str) -> str:
    """The opposite patient direction: "LF" -> "RH"."""
    return "".join(_OPPOSITE.get(c, c) for c in letters)


def edge_labels(volume: ImageVolume) -> list[str]:
    """Letters for the left, right, top and bottom edges of the displayed slice."""
    if volume.has_geometry:
        row, col = np.asarray(volume.row_cosines), np.asarray(volume.col_cosines)
        return [orientation_label(d) for d in (-row, row, -col, col)]
    if volume.patient_orientation:  # projection image: Patient Orientation, e.g. ("L", "F")
        rows, cols = volume.patient_orientation
        return [opposite_label(rows), rows, opposite_label(cols), cols]
    return ["", "", "", ""]


class SliceAnnotations:
    """Owns the text actors of one renderer."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self._renderer = renderer
        self.corners = vtkCornerAnnotation()
        # font size = linear * viewport_size ** nonlinear, clamped to [min, max]
        self.corners.SetLinearFontScaleFactor(5.0)
        self.corners.SetNonlinearFontScaleFactor(1.0)
        self.corners.GetTextProperty().SetColor(*TEXT_COLOUR)
        self.corners.GetTextProperty().ShadowOn()
        renderer.AddViewProp(self.corners)
        self.edges = [self._text_actor() for _ in range(4)]  # left, right, top, bottom
        self.message = self._text_actor()
        self.message.GetTextProperty().SetJustificationToCentered()
        self.message.GetTextProperty().SetVerticalJustificationToCentered()
        self.scale_fonts(1.0)

    @property
    def visible(self) -> bool:
        return bool(self.corners.GetVisibility())

    def set_visible(self, visible: bool) -> None:
        self.corners.SetVisibility(visible)
        for actor in self.edges:
            actor.SetVisibility(visible)

    def scale_fonts(self, ratio: float) -> None:
        """Font sizes for a screen with ``ratio`` device pixels per logical pixel."""
        self.corners.SetMaximumFontSize(int(15 * ratio))
        self.corners.SetMinimumFontSize(int(11 * ratio))
        for actor in self.edges:
            actor.GetTextProperty().SetFontSize(int(14 * ratio))
        self.message.GetTextProperty().SetFontSize(int(16 * ratio))

    def show_message(self, text: str) -> None:
        """Only ``text`` in the middle: no corner or edge text."""
        for corner in range(4):
            self.corners.SetText(corner, "")
        for actor in self.edges:
            actor.SetInput("")
        self.message.SetInput(text)
        self.message.SetVisibility(True)

    def show_volume(self, volume: ImageVolume) -> None:
        self.message.SetVisibility(False)
        for actor, label in zip(self.edges, edge_labels(volume), strict=True):
            actor.SetInput(label)

    def update(
        self, volume: ImageVolume, index: int, window: tuple[float, float], preset: str,
        zoom_percent: float,
    ) -> None:
        z, rows, cols = volume.shape
        center, width = window
        self.corners.SetText(2, f"{volume.description or 'Series'}\n{volume.modality}  {cols}×{rows}")
        self.corners.SetText(3, f"W {width:.0f}  L {center:.0f}" + (f"\n{preset}" if preset else ""))
        if volume.has_geometry:
            position = volume.slice_distance(index)
            self.corners.SetText(0, f"Slice {index + 1}/{z}\nPos {position:.1f} mm")
        else:
            self.corners.SetText(0, f"Image {index + 1}/{z}")
        self.corners.SetText(1, f"Zoom {zoom_percent:.0f}%")

    def layout(self, width: int, height: int, ratio: float) -> None:
        """Place the edge letters and the message for a view of ``width`` x ``height`` (logical)."""
        w, h = max(width, 1), max(height, 1)
        spots = ((8, h / 2), (w - 22, h / 2), (w / 2, h - 22), (w / 2, 8))
        for actor, (x, y) in zip(self.edges, spots, strict=True):
            actor.SetDisplayPosition(int(x * ratio), int(y * ratio))
        self.message.SetDisplayPosition(int(w * ratio / 2), int(h * ratio / 2))

    def _text_actor(self) -> vtkTextActor:
        actor = vtkTextActor()
        actor.GetTextProperty().SetColor(*TEXT_COLOUR)
        actor.GetTextProperty().ShadowOn()
        self._renderer.AddViewProp(actor)
        return actor
