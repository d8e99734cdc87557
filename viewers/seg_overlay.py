"""DICOM SEG segments drawn as coloured translucent masks over the current slice.

Each segment's mask (uint8 0..255 per pixel, from ``app.results.seg_reader``) is
blended in numpy, in the segment's recommended display colour, into one RGBA image
on the slice's own pixel grid; a VTK image actor shows it just in front of the
image (nearest-neighbour, so a mask pixel covers exactly its image pixel).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkImageSlice, vtkImageSliceMapper, vtkRenderer

from app.results.seg_source import SegmentLayer

MASK_Z = -0.25  # between the image (z = 0) and the outlines (z = -0.5)
DEFAULT_OPACITY = 0.45


def blend_masks(
    layers: Sequence[SegmentLayer],
    slice_index: int,
    shape: tuple[int, int],
    opacity: dict[str, float],
    hidden: set[str] | frozenset[str] = frozenset(),
) -> np.ndarray | None:
    """The (rows, columns, 4) uint8 RGBA of the visible masks on one slice, or None if none."""
    premultiplied: np.ndarray | None = None
    alpha: np.ndarray | None = None
    for layer in layers:
        mask = layer.masks.get(slice_index)
        if mask is None or layer.key in hidden:
            continue
        a = mask.astype(np.float32) * (opacity.get(layer.key, DEFAULT_OPACITY) / 255.0)
        colour = np.asarray(layer.segment.colour, dtype=np.float32)
        if premultiplied is None or alpha is None:
            premultiplied, alpha = np.zeros(shape + (3,), np.float32), np.zeros(shape, np.float32)
        premultiplied = colour * a[..., None] + premultiplied * (1.0 - a[..., None])
        alpha = a + alpha * (1.0 - a)
    if premultiplied is None or alpha is None or not alpha.any():
        return None
    rgb = np.where(alpha[..., None] > 0, premultiplied / np.maximum(alpha[..., None], 1e-6), 0)
    rgba = np.empty(shape + (4,), np.uint8)
    rgba[..., :3] = np.clip(np.rint(rgb), 0, 255)
    rgba[..., 3] = np.clip(np.rint(alpha * 255.0), 0, 255)
    return rgba


class SegOverlay:
    """The segment layers of the shown series; per-segment visibility and opacity."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self._image = vtkImageData()
        mapper = vtkImageSliceMapper()
        mapper.SetInputData(self._image)
        self._actor = vtkImageSlice()
        self._actor.SetMapper(mapper)
        prop = self._actor.GetProperty()
        prop.SetInterpolationTypeToNearest()
        prop.SetColorWindow(255.0)  # pass the RGBA bytes through unchanged
        prop.SetColorLevel(127.5)
        self._actor.SetVisibility(False)
        self._actor.PickableOff()
        renderer.AddViewProp(self._actor)
        self.layers: list[SegmentLayer] = []
        self.hidden: set[str] = set()
        self.opacity: dict[str, float] = {}
        self._rgba: np.ndarray | None = None  # keeps the vtk array's memory alive

    def set_layers(self, layers: Sequence[SegmentLayer]) -> None:
        self.layers = list(layers)
        self.opacity = {layer.key: self.opacity.get(layer.key, DEFAULT_OPACITY) for layer in layers}
        self.hidden &= {layer.key for layer in layers}

    def show(
        self,
        slice_index: int,
        shape: tuple[int, int],
        spacing: tuple[float, float],
        visible: bool = True,
    ) -> None:
        """Draw the masks of ``slice_index`` (``shape`` rows, columns; ``spacing`` dx, dy mm)."""
        rgba = (
            blend_masks(self.layers, slice_index, shape, self.opacity, self.hidden)
            if (visible and slice_index >= 0)
            else None
        )
        if rgba is None:
            self._actor.SetVisibility(False)
            return
        rows, cols = shape
        self._rgba = rgba
        self._image.SetDimensions(cols, rows, 1)
        self._image.SetSpacing(spacing[0], spacing[1], 1.0)
        self._image.SetOrigin(0.0, 0.0, MASK_Z)
        scalars = numpy_to_vtk(rgba.reshape(-1, 4), deep=False)
        self._image.GetPointData().SetScalars(scalars)
        self._image.Modified()
        self._actor.SetVisibility(True)

    def clear(self) -> None:
        self.layers = []
        self._actor.SetVisibility(False)
