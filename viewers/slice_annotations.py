"""The text drawn over a slice: corner facts, patient direction letters, a centred message.

Corners: series and size (top left), window/level and preset (top right),
slice number and position (bottom left), zoom (bottom right). The letters at
the edges say which patient direction each side of the image faces, so an
image shown upside down or mirrored is visible at a glance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import vtkmodules.vtkRenderingFreeType  # noqa: F401  (text rendering)
from vtkmodules.vtkRenderingCore import vtkRenderer, vtkTextActor

from app.archive.volume import ImageVolume
from viewers.reformat import Plane

REFORMAT_NOTE = "AI regions are shown in the acquired plane"

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


def edge_labels(volume: ImageVolume, plane: Plane | None = None) -> list[str]:
    """Letters for the left, right, top and bottom edges of the displayed slice."""
    if plane is not None and plane.reformatted:
        right, down = plane.directions()
        return [orientation_label(d) for d in (-right, right, -down, down)]
    if volume.has_geometry:
        row, col = np.asarray(volume.row_cosines), np.asarray(volume.col_cosines)
        return [orientation_label(d) for d in (-row, row, -col, col)]
    if volume.patient_orientation:  # projection image: Patient Orientation, e.g. ("L", "F")
        rows, cols = volume.patient_orientation
        return [opposite_label(rows), rows, opposite_label(cols), cols]
    return ["", "", "", ""]


class CornerText:
    """Text in the four corners of the view, numbered as in vtkCornerAnnotation
    (0 lower left, 1 lower right, 2 upper left, 3 upper right), at a fixed font size.

    vtkCornerAnnotation refits its font to the viewport each time any corner changes,
    rasterising the text at several sizes: about 40 ms of every slice step on Mesa's
    software rasteriser (scroll benchmark, docs/performance.md). These are four plain
    text actors, placed by ``layout``.
    """

    MARGIN = 6  # logical pixels from the edges

    def __init__(self, make_actor: Callable[[], vtkTextActor]) -> None:
        self._actors = [make_actor() for _ in range(4)]
        for n, actor in enumerate(self._actors):
            prop = actor.GetTextProperty()
            if n % 2:
                prop.SetJustificationToRight()
            else:
                prop.SetJustificationToLeft()
            if n >= 2:
                prop.SetVerticalJustificationToTop()
            else:
                prop.SetVerticalJustificationToBottom()

    def set_text(self, corner: int, text: str) -> None:
        if self._actors[corner].GetInput() != text:  # an unchanged text costs nothing to draw
            self._actors[corner].SetInput(text)

    def text(self, corner: int) -> str:
        return str(self._actors[corner].GetInput() or "")

    @property
    def visible(self) -> bool:
        return bool(self._actors[0].GetVisibility())

    def set_visible(self, visible: bool) -> None:
        for actor in self._actors:
            actor.SetVisibility(visible)

    def set_font_size(self, size: int) -> None:
        for actor in self._actors:
            actor.GetTextProperty().SetFontSize(size)

    def layout(self, width: float, height: float, ratio: float) -> None:
        """Place the corners for a view of ``width`` x ``height`` logical pixels."""
        m = self.MARGIN
        spots = ((m, m), (width - m, m), (m, height - m), (width - m, height - m))
        for actor, (x, y) in zip(self._actors, spots, strict=True):
            actor.SetDisplayPosition(int(x * ratio), int(y * ratio))


class SliceAnnotations:
    """Owns the text actors of one renderer."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self._renderer = renderer
        self.corners = CornerText(self._text_actor)
        self.edges = [self._text_actor() for _ in range(4)]  # left, right, top, bottom
        self.message = self._text_actor()
        self.message.GetTextProperty().SetJustificationToCentered()
        self.message.GetTextProperty().SetVerticalJustificationToCentered()
        self.scale_fonts(1.0)
        self._zoom = ""
        self._readout = ""

    @property
    def visible(self) -> bool:
        return self.corners.visible

    def set_visible(self, visible: bool) -> None:
        self.corners.set_visible(visible)
        for actor in self.edges:
            actor.SetVisibility(visible)

    def scale_fonts(self, ratio: float) -> None:
        """Font sizes for a screen with ``ratio`` device pixels per logical pixel."""
        self.corners.set_font_size(int(14 * ratio))
        for actor in self.edges:
            actor.GetTextProperty().SetFontSize(int(14 * ratio))
        self.message.GetTextProperty().SetFontSize(int(16 * ratio))

    def show_message(self, text: str) -> None:
        """Only ``text`` in the middle: no corner or edge text."""
        for corner in range(4):
            self.corners.set_text(corner, "")
        for actor in self.edges:
            actor.SetInput("")
        self.message.SetInput(text)
        self.message.SetVisibility(True)

    def show_volume(self, volume: ImageVolume, plane: Plane | None = None) -> None:
        self.message.SetVisibility(False)
        self._readout = ""
        for actor, label in zip(self.edges, edge_labels(volume, plane), strict=True):
            actor.SetInput(label)

    def update(
        self, volume: ImageVolume, index: int, window: tuple[float, float], preset: str,
        zoom_percent: float, plane: Plane | None = None,
    ) -> None:
        plane = plane or Plane(volume)
        z = plane.count
        cols, rows = plane.size
        center, width = window
        top_left = f"{volume.description or 'Series'}\n{volume.modality}  {cols}×{rows}"
        if plane.reformatted:
            top_left += f"\n{plane.name.capitalize()} reformat\n{REFORMAT_NOTE}"
        self.corners.set_text(2, top_left)
        self.corners.set_text(3, f"W {width:.0f}  L {center:.0f}" + (f"\n{preset}" if preset else ""))
        if volume.has_geometry:
            word = plane.name.capitalize() if plane.reformatted else "Slice"
            position = plane.position(index)
            self.corners.set_text(0, f"{word} {index + 1}/{z}\nPos {position:.1f} mm")
        else:
            self.corners.set_text(0, f"Image {index + 1}/{z}")
        self._zoom = f"Zoom {zoom_percent:.0f}%"
        self._set_bottom_right()

    @property
    def readout(self) -> str:
        """The value under the cursor now shown ("" when the cursor is off the image)."""
        return self._readout

    def set_readout(self, text: str) -> bool:
        """Show ``text`` (the value under the cursor) above the zoom; True if it changed."""
        if text == self._readout:
            return False
        self._readout = text
        self._set_bottom_right()
        return True

    def _set_bottom_right(self) -> None:
        self.corners.set_text(1, f"{self._readout}\n{self._zoom}" if self._readout else self._zoom)

    def layout(self, width: int, height: int, ratio: float) -> None:
        """Place the edge letters and the message for a view of ``width`` x ``height`` (logical)."""
        w, h = max(width, 1), max(height, 1)
        self.corners.layout(w, h, ratio)
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
