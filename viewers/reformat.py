"""Reformatted planes of a volume: which 2D image the viewer shows and how it lies in the patient.

The acquired plane is the volume's own slices (``pixels[k]``). A reformatted plane
fixes a row (``pixels[:, k, :]``) or a column (``pixels[:, :, k]``) of every slice: its
image columns run along the acquired rows or columns, its image rows along the slice
normal, spaced by the slice spacing, so the aspect is right without resampling. Rows
are ordered head up when the slice normal has a head-foot part (the usual display of
coronal and sagittal images); the edge letters come from the real directions, so
they are right for any acquisition.

Which volume axis a named plane uses is chosen from the geometry: "coronal" is the
plane whose normal is closest to the patient's anterior-posterior axis, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.archive.volume import ImageVolume

ACQUIRED, AXIAL, CORONAL, SAGITTAL = "acquired", "axial", "coronal", "sagittal"
_PATIENT_AXIS = {SAGITTAL: 0, CORONAL: 1, AXIAL: 2}  # the plane's normal: x (L-R), y (A-P), z (H-F)


def can_reformat(volume: ImageVolume) -> bool:
    """Volumetric, at least 3 slices, every slice in: reformatted planes make sense."""
    loaded = volume.loaded is None or bool(np.all(volume.loaded))
    return volume.has_geometry and volume.shape[0] >= 3 and loaded and not volume.gaps


def _axis_normals(volume: ImageVolume) -> list[np.ndarray]:
    """Per volume axis (z, y, x), the normal of the plane that axis scrolls through."""
    return [volume.normal, np.asarray(volume.col_cosines), np.asarray(volume.row_cosines)]


def plane_name(volume: ImageVolume, axis: int) -> str:
    """The patient plane (axial, coronal, sagittal) closest to the plane volume axis ``axis`` scrolls."""
    if not volume.has_geometry:
        return ACQUIRED
    normal = np.abs(_axis_normals(volume)[axis])
    return {0: SAGITTAL, 1: CORONAL, 2: AXIAL}[int(np.argmax(normal))]


@dataclass(frozen=True)
class Plane:
    """A plane of ``volume`` to scroll through: ``axis`` 0 is the acquired plane."""

    volume: ImageVolume
    axis: int = 0

    @staticmethod
    def named(volume: ImageVolume, name: str) -> Plane | None:
        """The plane ``name`` of ``volume``, or None when the volume cannot show it."""
        if name == ACQUIRED or plane_name(volume, 0) == name:
            return Plane(volume, 0)
        if name not in _PATIENT_AXIS or not can_reformat(volume):
            return None
        weights = [abs(n[_PATIENT_AXIS[name]]) for n in _axis_normals(volume)]
        return Plane(volume, int(np.argmax(weights)))

    @property
    def reformatted(self) -> bool:
        return self.axis != 0

    @property
    def name(self) -> str:
        return plane_name(self.volume, self.axis)

    @property
    def count(self) -> int:
        """How many images there are to scroll through."""
        return self.volume.shape[self.axis]

    @property
    def flip_rows(self) -> bool:
        """Image row 0 is the last slice (so that the head is up)."""
        return self.reformatted and float(self.volume.normal[2]) > 0.0

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as (rows, columns[, 3]), C-contiguous (a view of the acquired slice)."""
        pixels = self.volume.pixels
        if self.axis == 0:
            return pixels[index]
        cut = pixels[:, index] if self.axis == 1 else pixels[:, :, index]
        return np.ascontiguousarray(cut[::-1] if self.flip_rows else cut)

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows) of each image."""
        z, rows, cols = self.volume.shape
        return {0: (cols, rows), 1: (cols, z), 2: (rows, z)}[self.axis]

    @property
    def spacing(self) -> tuple[float, float]:
        """(column, row) pixel spacing, mm."""
        dz, dy, dx = self.volume.spacing
        return {0: (dx, dy), 1: (dx, dz), 2: (dy, dz)}[self.axis]

    def directions(self) -> tuple[np.ndarray, np.ndarray]:
        """Patient directions of increasing image column (screen right) and row (down)."""
        vol = self.volume
        row, col = np.asarray(vol.row_cosines), np.asarray(vol.col_cosines)
        if self.axis == 0:
            return row, col
        down = -vol.normal if self.flip_rows else vol.normal
        return (row if self.axis == 1 else col), down

    def position(self, index: int) -> float:
        """Where image ``index`` lies along the plane's normal, mm (the corner text)."""
        vol = self.volume
        if self.axis == 0:
            return vol.slice_distance(index)
        _, dy, dx = vol.spacing
        normal = _axis_normals(vol)[self.axis]
        step = dy if self.axis == 1 else dx
        return float(np.dot(vol.positions[0], normal)) + index * step

    def voxel(self, index: int, column: int, row: int) -> tuple[int, int, int] | None:
        """The volume voxel (z, y, x) at image (``column``, ``row``) of image ``index``."""
        cols, rows = self.size
        if not (0 <= column < cols and 0 <= row < rows and 0 <= index < self.count):
            return None
        if self.axis == 0:
            return index, row, column
        z = self.volume.shape[0] - 1 - row if self.flip_rows else row
        return (z, index, column) if self.axis == 1 else (z, column, index)
