"""An image series as one display volume, and lookups in it (Qt-free).

``ImageVolume`` is what the loader (``app.archive.series_loader``) fills and the
viewers show. Slices are ordered along the slice normal (the cross product of
Image Orientation (Patient)), never by Instance Number. While a series streams
in, ``loaded`` says which slices hold pixels yet; a slice that could not be
decoded stays a marked gap, with the reason in ``gaps``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.archive.protocol import ImageArchive
from app.domain import NON_IMAGING_MODALITIES, Region, SeriesRef
from app.errors import CompanionError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class VolumeLoadError(CompanionError):
    """A series could not be turned into an image volume."""


class LoadCancelled(CompanionError):
    """Loading was cancelled by the caller (not an error the user needs to see)."""


@dataclass
class ImageVolume:
    """One series as a stack of display values, ordered along the slice normal.

    Greyscale: ``pixels`` is (z, y, x) float32, rescaled, MONOCHROME1 already inverted.
    Colour (RGB, YBR_*, PALETTE COLOR): (z, y, x, 3) uint8 RGB — shown as is, with
    the window at 0..255.
    """

    pixels: np.ndarray
    sop_uids: tuple[str, ...]  # per slice
    frames: tuple[int | None, ...]  # per slice: 1-based frame of a multi-frame instance
    positions: np.ndarray  # (z, 3) Image Position (Patient) of each slice, mm
    spacing: tuple[float, float, float]  # (z, y, x) mm
    origin: tuple[float, float, float]  # position of slice 0's first pixel centre, mm
    row_cosines: tuple[float, float, float]  # direction of increasing column index
    col_cosines: tuple[float, float, float]  # direction of increasing row index
    frame_of_reference_uid: str
    modality: str
    window_center: float
    window_width: float
    description: str
    study_uid: str = ""
    series_uid: str = ""
    sop_class_uids: tuple[str, ...] = ()  # per slice (a region drawn on one names it)
    photometric: str = "MONOCHROME2"
    problems: list[str] = field(default_factory=list)
    # False for projection images without Image Orientation/Position (CR, DX): their
    # cosines are placeholders and ``patient_orientation`` (e.g. ("L", "F")) says which
    # way the rows and columns run, when the image has Patient Orientation.
    has_geometry: bool = True
    patient_orientation: tuple[str, str] | None = None
    # Streaming state: per slice, True once its pixels are in (None: all are). A gap is
    # a slice that failed to load, with the reason shown in its place.
    loaded: np.ndarray | None = None
    gaps: dict[int, str] = field(default_factory=dict)
    transfer_syntaxes: set[str] = field(default_factory=set)  # as the archive sent them

    @property
    def shape(self) -> tuple[int, int, int]:
        z, y, x = self.pixels.shape[:3]
        return int(z), int(y), int(x)

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim == 4

    def is_loaded(self, index: int) -> bool:
        """True when slice ``index`` holds its pixels (not still loading, not a gap)."""
        return index not in self.gaps and (self.loaded is None or bool(self.loaded[index]))

    @property
    def complete(self) -> bool:
        """Every slice is in or is a gap: nothing is still loading."""
        if self.loaded is None:
            return True
        return all(bool(ok) or z in self.gaps for z, ok in enumerate(self.loaded))

    @property
    def normal(self) -> np.ndarray:
        return np.cross(np.asarray(self.row_cosines), np.asarray(self.col_cosines))

    def slice_distance(self, index: int) -> float:
        """Position of slice ``index`` along the normal, mm (what the viewer shows)."""
        return float(np.dot(self.positions[index], self.normal))


# -- series choice ------------------------------------------------------------------
def display_series(archive: ImageArchive, study_uid: str) -> list[SeriesRef]:
    """The study's image series (no SR/SEG/KO/PR/...), biggest first."""
    series = [
        s
        for s in archive.search_series(study_uid)
        if (s.modality or "").upper() not in NON_IMAGING_MODALITIES
    ]
    return sorted(
        series,
        key=lambda s: (-(s.num_instances or 0), s.number if s.number is not None else 1 << 30),
    )


def load_volume(
    archive: ImageArchive,
    study_uid: str,
    series_uid: str,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ImageVolume:
    """Load a whole series (blocking). Kept for callers of the first loader; new code
    uses ``SeriesLoader``, which can show a slice before the series is complete."""
    from app.archive.series_loader import SeriesLoader

    return SeriesLoader(archive).load(study_uid, series_uid, progress=progress, cancel=cancel)


# -- lookups -------------------------------------------------------------------------
def slice_index_for_sop(volume: ImageVolume, sop_uid: str, frame: int | None = None) -> int | None:
    """The slice showing instance ``sop_uid`` (and 1-based ``frame``), or None."""
    for index, (uid, f) in enumerate(zip(volume.sop_uids, volume.frames, strict=True)):
        if uid == sop_uid and (frame is None or f is None or f == frame):
            return index
    return None


def slice_index_for_point(
    volume: ImageVolume, xyz_mm: Sequence[float], tolerance_mm: float | None = None
) -> int | None:
    """The slice nearest to a patient point along the normal.

    None when ``tolerance_mm`` is given and the nearest slice is farther away than that.
    """
    normal = volume.normal
    distances = volume.positions @ normal
    target = float(np.dot(np.asarray(xyz_mm, dtype=np.float64), normal))
    index = int(np.argmin(np.abs(distances - target)))
    if tolerance_mm is not None and abs(distances[index] - target) > tolerance_mm:
        return None
    return index


def pixel_for_point(volume: ImageVolume, xyz_mm: Sequence[float]) -> tuple[float, float]:
    """A patient point projected onto the slice plane, as SCOORD (column, row) pixels.

    SCOORD puts (0, 0) at the top-left corner of the first pixel, so its centre is (0.5, 0.5).
    """
    offset = np.asarray(xyz_mm, dtype=np.float64) - np.asarray(volume.origin)
    _, sy, sx = volume.spacing
    col = float(np.dot(offset, volume.row_cosines)) / sx + 0.5
    row = float(np.dot(offset, volume.col_cosines)) / sy + 0.5
    return col, row


def slice_index_for_region(volume: ImageVolume, region: Region) -> int | None:
    """The slice where a finding's region is drawn, or None if it is not in this volume."""
    if region.referenced_sop_uid:
        return slice_index_for_sop(volume, region.referenced_sop_uid, region.referenced_frame)
    if region.is_3d and region.coordinates:
        if (
            volume.frame_of_reference_uid
            and region.frame_of_reference_uid != volume.frame_of_reference_uid
        ):
            return None
        centre = np.mean(np.asarray(region.coordinates, dtype=np.float64)[:, :3], axis=0)
        extent = volume.spacing[0] * max(volume.shape[0], 1)
        return slice_index_for_point(volume, centre, tolerance_mm=extent)
    return None
