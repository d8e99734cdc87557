"""A 2D slice viewer for an ``ImageVolume`` (VTK inside a Qt widget).

The slice on screen is a vtkImageData whose scalars are a view of the
volume's own numpy slice (no copy). Pixel (column i, row j) sits at world
(i * dx, j * dy, 0) mm; the camera looks along +z with view-up -y, so row 0 is
at the top and column 0 on the left, the way the image was acquired
(radiological display), without flipping any data.

Keys, wheel and drags are handled in Qt by ``viewers.slice_input``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import vtkmodules.qt

vtkmodules.qt.PyQtImpl = "PySide6"

import vtkmodules.vtkInteractionStyle  # the interactor's default style classes
import vtkmodules.vtkRenderingOpenGL2  # the OpenGL render window (side-effect import)
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import (
    vtkImageSlice,
    vtkImageSliceMapper,
    vtkRenderer,
    vtkWindowToImageFilter,
)

from app.archive.volume import ImageVolume
from app.domain import Finding, Region
from viewers.overlay_layers import OverlayLayers
from viewers.reformat import Plane
from viewers.region_editor import RegionEditor
from viewers.slice_annotations import SliceAnnotations
from viewers.slice_input import PRESETS, SliceInput


class SliceViewer(QWidget):
    """Shows one slice of a volume; scroll, window/level, zoom, pan, finding outlines."""

    sig_slice_changed = Signal(int)
    sig_window_changed = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)
        self._vtk = QVTKRenderWindowInteractor(self)
        self._vtk.installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._vtk)
        self.setFocusProxy(self._vtk)

        self._renderer = vtkRenderer()
        self._renderer.SetBackground(0.0, 0.0, 0.0)
        self._vtk.GetRenderWindow().AddRenderer(self._renderer)
        # VTK's default 8x multisampling smooths nothing an image slice needs and halved
        # the frame rate on Mesa's software rasteriser (scroll benchmark, docs/performance.md)
        self._vtk.GetRenderWindow().SetMultiSamples(0)
        self._batch_depth = 0  # > 0: inside ``batched()``, frames wait for its end
        self._render_pending = False
        self._vtk.GetRenderWindow().GetInteractor().SetInteractorStyle(None)

        self._image = vtkImageData()
        mapper = vtkImageSliceMapper()
        mapper.SetInputData(self._image)
        self._slice_actor = vtkImageSlice()
        self._slice_actor.SetMapper(mapper)
        self._slice_actor.GetProperty().SetInterpolationTypeToLinear()
        self._slice_actor.SetVisibility(False)
        self._renderer.AddViewProp(self._slice_actor)

        # outlines, measurement labels and SEG masks, with the reader's show/hide controls
        self.overlays = OverlayLayers(self._renderer, self._redraw_overlays)
        self._text = SliceAnnotations(self._renderer)

        self._volume: ImageVolume | None = None
        self._plane: Plane | None = None  # what is scrolled through: acquired or reformatted
        self._slice_data: np.ndarray | None = None  # keeps the vtk array's memory alive
        self._index = 0
        self._center = 40.0
        self._width = 80.0
        self._regions: list[Region] = []
        self._owners: list[str] | None = None
        self._highlight: str | None = None
        self._hidden: tuple[str | None, Region] | None = None  # drawn by the editor instead
        self._initialized = False
        self._fitted = True  # refit on resize until the reader zooms or pans
        self.editor = RegionEditor(self)
        self.input = SliceInput(self)
        self.clear("No study open")

    # -- public ----------------------------------------------------------------------
    @property
    def volume(self) -> ImageVolume | None:
        return self._volume

    @property
    def slice_index(self) -> int:
        return self._index

    @property
    def regions(self) -> tuple[Region, ...]:
        """The regions given to ``set_regions``/``set_findings``."""
        return tuple(self._regions)

    @property
    def renderer(self) -> vtkRenderer:
        return self._renderer

    @property
    def gl_widget(self) -> QVTKRenderWindowInteractor:
        """The VTK widget that receives the mouse (its cursor shows the editor's mode)."""
        return self._vtk

    @property
    def plane(self) -> Plane | None:
        """The plane on screen (``plane.reformatted``: coronal or sagittal of an axial series)."""
        return self._plane

    @property
    def window_level(self) -> tuple[float, float]:
        """(centre, width) now shown."""
        return self._center, self._width

    def show_volume(self, volume: ImageVolume, slice_index: int | None = None) -> None:
        """Show ``volume`` at ``slice_index`` (default: the middle slice) with its default window."""
        self.editor.cancel()
        self._volume, self._plane = volume, Plane(volume)
        self._regions, self._owners, self._highlight = [], None, None
        self.overlays.masks.clear()  # segments belong to a series: the caller sets new ones
        self._center, self._width = volume.window_center, max(volume.window_width, 1.0)
        self._show_plane(volume.shape[0] // 2 if slice_index is None else slice_index)

    def set_plane(self, name: str) -> bool:
        """Show plane ``name`` (ACQUIRED, AXIAL, CORONAL, SAGITTAL) from its middle image, W/L
        kept; False (nothing changes) when the volume cannot show it (yet)."""
        plane = Plane.named(self._volume, name) if self._volume is not None else None
        if plane is None or self.editor.active:
            return False
        if plane != self._plane:
            self._plane = plane
            self._show_plane(plane.count // 2)
        return True

    def _show_plane(self, index: int) -> None:
        assert self._volume is not None and self._plane is not None
        self._index = -1
        self._slice_actor.SetVisibility(True)
        self._text.show_volume(self._volume, self._plane)
        self._relayout_text()
        self._apply_window(emit=True)
        with self.batched():
            self.set_slice(index)
            self.reset_view()

    def set_slice(self, index: int) -> None:
        if self._volume is None or self._plane is None:
            return
        index = max(0, min(int(index), self._plane.count - 1))
        if index == self._index:
            return
        self._index = index
        self._slice_data = self._plane.image(index)
        cols, rows = self._plane.size
        dx, dy = self._plane.spacing
        self._image.SetDimensions(cols, rows, 1)
        self._image.SetSpacing(dx, dy, 1.0)
        self._image.SetOrigin(0.0, 0.0, 0.0)
        flat = self._slice_data.reshape(-1, 3) if self._volume.is_color else self._slice_data.ravel()
        scalars = numpy_to_vtk(flat, deep=False)
        self._image.GetPointData().SetScalars(scalars)
        self._image.Modified()
        self._update_slice_state()
        self._update_regions()
        self._update_text()
        self._render()
        self.sig_slice_changed.emit(index)

    def refresh_slice(self, index: int) -> None:
        """Slice ``index`` of the volume on screen has filled in (or become a gap):
        redraw it if it is the one shown. Called as a streaming load progresses."""
        if self._volume is None or index != self._index or self._reformatted:
            return
        self._image.Modified()
        self._update_slice_state()
        self._render()

    def _update_slice_state(self) -> None:
        """A slice still loading, or a gap, shows a note in place of its pixels."""
        vol = self._volume
        if vol is None or self._index < 0 or self._reformatted:
            return
        loaded = vol.is_loaded(self._index)
        self._slice_actor.SetVisibility(loaded)
        note = ""
        if self._index in vol.gaps:
            note = "Image not available:\n" + textwrap.fill(vol.gaps[self._index], 60)
        elif not loaded:
            note = "Loading…"
        self._text.message.SetInput(note)
        self._text.message.SetVisibility(bool(note))

    def set_window(self, center: float, width: float) -> None:
        self._center, self._width = float(center), max(float(width), 1.0)
        self._apply_window(emit=True)
        self._render()

    def set_regions(
        self,
        regions: Sequence[Region],
        highlight: str | None = None,
        *,
        owners: Sequence[str] | None = None,
    ) -> None:
        """Outline ``regions`` on the slices they belong to.

        ``owners[i]`` names what region ``i`` belongs to (a finding's Tracking UID);
        the regions whose owner equals ``highlight`` are drawn highlighted.
        """
        self._regions = list(regions)
        self._owners = list(owners) if owners is not None else None
        self._highlight = highlight
        self._update_regions()
        self._render()

    def set_hidden_region(self, owner: str | None, region: Region | None) -> None:
        """Leave ``region`` of ``owner`` out of the outlines (the editor draws it); None: none."""
        self._hidden = (owner, region) if region is not None else None
        self._update_regions()
        self._render()

    def set_findings(self, findings: Sequence[Finding], highlight: str | None = None) -> None:
        """Outline every region of ``findings``; ``highlight`` is a Tracking UID."""
        pairs = [(f.tracking_uid, r) for f in findings for r in f.regions]
        self.overlays.set_findings(findings)
        self.set_regions([r for _, r in pairs], highlight, owners=[o for o, _ in pairs])

    def clear(self, message: str) -> None:
        """Show no image, only ``message`` in the middle."""
        self.editor.cancel()
        self._volume, self._plane = None, None
        self._slice_data = None
        self._index = -1
        self._slice_actor.SetVisibility(False)
        self.overlays.clear()
        self._text.show_message(message)
        self._render()

    def reset_view(self) -> None:
        """Fit the whole slice in the view, centred."""
        if self._plane is None:
            return
        cols, rows = self._plane.size
        dx, dy = self._plane.spacing
        w, h = (cols - 1) * dx, (rows - 1) * dy
        cx, cy = w / 2.0, h / 2.0
        camera = self._renderer.GetActiveCamera()
        camera.ParallelProjectionOn()
        camera.SetFocalPoint(cx, cy, 0.0)
        camera.SetPosition(cx, cy, -1000.0)
        camera.SetViewUp(0.0, -1.0, 0.0)
        aspect = max(self._vtk.width(), 1) / max(self._vtk.height(), 1)
        camera.SetParallelScale(0.5 * max(h + dy, (w + dx) / aspect) * 1.02)
        self._renderer.ResetCameraClippingRange()
        self._fitted = True
        self._update_text()
        self._render()

    def set_text_visible(self, visible: bool) -> None:
        """Show or hide the corner and orientation text (T toggles it)."""
        self._text.set_visible(visible)
        self._render()

    def render(self) -> None:  # type: ignore[override]
        """Draw now (tests and screenshots call this before grabbing)."""
        self._render()

    def rendered_rgb(self) -> np.ndarray:
        """What the GL area shows, as a (rows, columns, 3) uint8 array, top row first."""
        self._vtk.GetRenderWindow().Render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(self._vtk.GetRenderWindow())
        grab.SetInputBufferTypeToRGB()
        grab.ReadFrontBufferOff()
        grab.Update()
        out = grab.GetOutput()
        w, h, _ = out.GetDimensions()
        rgb = vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)
        return np.ascontiguousarray(rgb[::-1, :, :3])

    def world_to_widget(self, x: float, y: float) -> tuple[float, float]:
        """Where world (x, y, 0) mm appears, in the GL area's device pixels, top-left origin."""
        self._renderer.SetWorldPoint(x, y, 0.0, 1.0)
        self._renderer.WorldToDisplay()
        dx, dy, _ = self._renderer.GetDisplayPoint()
        height = self._vtk.GetRenderWindow().GetSize()[1]
        return dx, height - 1 - dy

    def widget_to_world(self, x: float, y: float) -> tuple[float, float]:
        """The world (x, y) mm on the slice plane at GL-area device pixel (x, y), top-left origin."""
        height = self._vtk.GetRenderWindow().GetSize()[1]
        self._renderer.SetDisplayPoint(x, height - 1 - y, 0.0)
        self._renderer.DisplayToWorld()
        wx, wy, _, w = self._renderer.GetWorldPoint()
        return wx / (w or 1.0), wy / (w or 1.0)

    def center_on(self, x: float, y: float) -> None:
        """Pan so that world (x, y) mm on the slice is in the middle of the view (zoom kept)."""
        camera = self._renderer.GetActiveCamera()
        _, _, fz = camera.GetFocalPoint()
        _, _, pz = camera.GetPosition()
        camera.SetFocalPoint(x, y, fz)
        camera.SetPosition(x, y, pz)
        self._fitted = False
        self._render()

    def mm_per_device_pixel(self) -> float:
        """World mm per GL-area device pixel at the current zoom."""
        height = max(self._vtk.GetRenderWindow().GetSize()[1], 1)
        return 2.0 * self._renderer.GetActiveCamera().GetParallelScale() / height

    # -- Qt events (handled by SliceInput) ------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._vtk:
            handled = self.input.event_filter(event)
            if handled is not None:
                return handled
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.input.key(event):
            super().keyPressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.input.wheel(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.input.press(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self.input.move(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self.input.release(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Release the GL context and X resources now, not at interpreter exit."""
        self._vtk.Finalize()
        super().closeEvent(event)

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        if not self._initialized:  # lets the widget's own paint events render
            self._vtk.Initialize()
            self._initialized = True
            self._text.scale_fonts(self._vtk.devicePixelRatioF())
            self.overlays.labels.font_size = round(13 * self._vtk.devicePixelRatioF())
        self._relayout_text()

    # -- used by SliceInput ------------------------------------------------------------
    @property
    def text_visible(self) -> bool:
        return bool(self._text.visible)

    def reset_window(self) -> None:
        """Back to the series' own window (R, with ``reset_view``)."""
        if self._volume is not None:
            self._center = self._volume.window_center
            self._width = max(self._volume.window_width, 1.0)
            self._apply_window(emit=True)

    def set_readout(self, text: str) -> None:
        """The value-under-the-cursor line of the corner text ("" hides it)."""
        if self._text.set_readout(text):
            self._render()

    def gl_resized(self) -> None:
        self._relayout_text()
        if self._fitted:
            self.reset_view()

    def zoom_by(self, factor: float) -> None:
        self._zoom(factor)

    def pan_by(self, dx_px: int, dy_px: int) -> None:
        self._pan(dx_px, dy_px)

    # -- internals -----------------------------------------------------------------------
    @property
    def _reformatted(self) -> bool:
        return self._plane is not None and self._plane.reformatted

    def _zoom(self, factor: float) -> None:
        camera = self._renderer.GetActiveCamera()
        camera.SetParallelScale(camera.GetParallelScale() / factor)
        self._fitted = False
        self._update_text()
        self._render()

    def _pan(self, dx_px: int, dy_px: int) -> None:
        camera = self._renderer.GetActiveCamera()
        per_px = 2.0 * camera.GetParallelScale() / max(self._vtk.height(), 1)
        fx, fy, fz = camera.GetFocalPoint()
        px, py, pz = camera.GetPosition()
        # screen right is +x, screen down is +y: move the camera against the drag
        sx, sy = -dx_px * per_px, -dy_px * per_px
        camera.SetFocalPoint(fx + sx, fy + sy, fz)
        camera.SetPosition(px + sx, py + sy, pz)
        self._fitted = False
        self._render()

    def _apply_window(self, *, emit: bool) -> None:
        prop = self._slice_actor.GetProperty()
        prop.SetColorWindow(self._width)
        prop.SetColorLevel(self._center)
        self._update_text()
        if emit:
            self.sig_window_changed.emit(self._center, self._width)

    def _update_regions(self) -> None:
        if self._volume is None or self._index < 0 or self._reformatted:
            self.overlays.clear()  # regions and masks belong to the acquired slices
            return
        regions, owners = self._regions, self._owners
        if self._hidden is not None:
            owner, hidden = self._hidden
            keep = [
                n for n, r in enumerate(regions)
                if not (r == hidden and (owners is None or owners[n] == owner))
            ]
            regions = [regions[n] for n in keep]
            owners = [owners[n] for n in keep] if owners is not None else None
        self.overlays.draw(self._volume, self._index, regions, owners, self._highlight)

    def _redraw_overlays(self) -> None:
        self._update_regions()
        self._render()

    def _update_text(self) -> None:
        vol = self._volume
        if vol is None or self._index < 0:
            return
        window = (self._center, self._width)
        preset = next((name for name, c, w in PRESETS if (c, w) == window), "")
        self._text.update(vol, self._index, window, preset, self._zoom_percent(), self._plane)

    def _zoom_percent(self) -> float:
        if self._plane is None:
            return 100.0
        scale = self._renderer.GetActiveCamera().GetParallelScale()
        dx, _ = self._plane.spacing  # column spacing: in a reformat, rows are slices apart
        screen_px_per_mm = max(self._vtk.height(), 1) / (2.0 * scale)
        return 100.0 * screen_px_per_mm * dx

    def _relayout_text(self) -> None:
        self._text.layout(self._vtk.width(), self._vtk.height(), self._vtk.devicePixelRatioF())

    def _render(self) -> None:
        if self._batch_depth:
            self._render_pending = True  # drawn once, when the batch ends
        elif self._vtk.isVisible():
            self._vtk.GetRenderWindow().Render()

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Draw once at the end of a group of changes (a new volume, its slice, its
        outlines), not after each: a frame at 1024x1024 costs ~50 ms on Mesa's software
        rasteriser, and each one blocks the UI (event-loop lag benchmark)."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if not self._batch_depth and self._render_pending:
                self._render_pending = False
                self._render()
