"""Load an image series into one display volume (Qt-free).

A series arrives from ``ImageArchive.iter_series`` in whatever order the
archive likes. Each decoded frame is rescaled (Rescale Slope/Intercept, once)
and written straight into one preallocated float32 array; when all frames are
in, the slices are put in order along the slice normal (the cross product of
Image Orientation (Patient)) — never by Instance Number, which scanners do not
promise to keep in step with position. The reordering is done in place, so a
series costs one array, not two.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from app.archive.protocol import ImageArchive
from app.domain import NON_IMAGING_MODALITIES, Region, SeriesRef
from app.errors import CompanionError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

_DEFAULT_ROW = (1.0, 0.0, 0.0)
_DEFAULT_COL = (0.0, 1.0, 0.0)


class VolumeLoadError(CompanionError):
    """A series could not be turned into an image volume."""


class LoadCancelled(CompanionError):
    """Loading was cancelled by the caller (not an error the user needs to see)."""


@dataclass
class ImageVolume:
    """One series as a (z, y, x) stack of display values, ordered along the slice normal."""

    pixels: np.ndarray  # (z, y, x) float32, rescaled; MONOCHROME1 already inverted
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

    @property
    def shape(self) -> tuple[int, int, int]:
        z, y, x = self.pixels.shape
        return int(z), int(y), int(x)

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


# -- loading ------------------------------------------------------------------------
@dataclass
class _Slot:
    sop_uid: str
    frame: int | None
    position: tuple[float, float, float] | None
    instance_number: int
    sop_class_uid: str = ""


def load_volume(
    archive: ImageArchive,
    study_uid: str,
    series_uid: str,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ImageVolume:
    """Retrieve a series and build its volume. Blocking: run it in an executor.

    Raises ``LoadCancelled`` when ``cancel`` is set, ``VolumeLoadError`` when no
    frame could be decoded, and the archive's ``ArchiveError`` when retrieval fails.
    """
    try:
        total = len(archive.search_instances(study_uid, series_uid))
    except CompanionError:
        total = 0
    if progress:
        progress(0, total)
    builder = _Builder(total)
    for n, ds in enumerate(archive.iter_series(study_uid, series_uid), start=1):
        if cancel is not None and cancel.is_set():
            raise LoadCancelled("loading the series was cancelled")
        builder.add(ds)
        if progress:
            progress(n, max(total, n))
    if cancel is not None and cancel.is_set():
        raise LoadCancelled("loading the series was cancelled")
    return builder.finish(study_uid, series_uid)


class _Builder:
    """Collects decoded frames into one growing-only-if-needed array."""

    def __init__(self, expected: int) -> None:
        self.expected = max(expected, 1)
        self.pixels: np.ndarray | None = None
        self.slots: list[_Slot] = []
        self.problems: list[str] = []
        self.first: Dataset | None = None
        self.row: tuple[float, ...] = _DEFAULT_ROW
        self.col: tuple[float, ...] = _DEFAULT_COL
        self.pixel_spacing = (1.0, 1.0)
        self.has_orientation = False

    def add(self, ds: Dataset) -> None:
        sop_uid = str(ds.get("SOPInstanceUID", ""))
        if "PixelData" not in ds and "FloatPixelData" not in ds:
            self.problems.append(f"instance {sop_uid} has no pixel data; skipped")
            return
        try:
            frames = ds.pixel_array
        except Exception as exc:  # noqa: BLE001  (decoders raise anything; skip, keep going)
            self.problems.append(f"instance {sop_uid} could not be decoded: {_short(exc)}")
            return
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        if n_frames == 1:
            frames = frames[np.newaxis]
        if self.first is None:
            self._start(ds, frames.shape[1:3])
        assert self.pixels is not None
        if frames.shape[1:3] != self.pixels.shape[1:]:
            self.problems.append(
                f"instance {sop_uid} is {frames.shape[2]}x{frames.shape[1]}, the series is "
                f"{self.pixels.shape[2]}x{self.pixels.shape[1]}; skipped"
            )
            return
        number = int(ds.get("InstanceNumber", 0) or 0)
        for index in range(frames.shape[0]):
            slope, intercept = _rescale(ds, index)
            frame = frames[index]
            if frame.ndim == 3:  # colour: show the luminance
                frame = frame[..., :3] @ np.array([0.299, 0.587, 0.114])
            z = len(self.slots)
            self._ensure_capacity(z + 1)
            target = self.pixels[z]
            np.multiply(frame, slope, out=target, casting="unsafe")
            if intercept:
                target += intercept
            if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
                np.subtract(_invert_constant(ds, slope, intercept), target, out=target)
            self.slots.append(
                _Slot(
                    sop_uid,
                    index + 1 if n_frames > 1 else None,
                    _position(ds, index),
                    number,
                    str(ds.get("SOPClassUID", "")),
                )
            )

    def _start(self, ds: Dataset, shape: tuple[int, int]) -> None:
        self.first = ds
        self.pixels = np.empty((self.expected, shape[0], shape[1]), dtype=np.float32)
        orientation = _orientation(ds)
        self.has_orientation = orientation is not None
        if orientation is not None:
            self.row, self.col = orientation
        self.pixel_spacing = _pixel_spacing(ds)

    def _ensure_capacity(self, n: int) -> None:
        assert self.pixels is not None
        if n <= self.pixels.shape[0]:
            return
        grown = np.empty((max(n, 2 * self.pixels.shape[0]),) + self.pixels.shape[1:], np.float32)
        grown[: self.pixels.shape[0]] = self.pixels
        self.pixels = grown

    def finish(self, study_uid: str, series_uid: str) -> ImageVolume:
        if self.first is None or self.pixels is None or not self.slots:
            why = "; ".join(self.problems[:3]) or "the series holds no images"
            raise VolumeLoadError(f"series {series_uid} has no displayable image: {why}")
        ds = self.first
        n = len(self.slots)
        pixels = self.pixels[:n]
        normal = np.cross(self.row, self.col)
        have_positions = all(s.position is not None for s in self.slots)
        if have_positions:
            keys = [float(np.dot(s.position, normal)) for s in self.slots]  # type: ignore[arg-type]
        else:
            keys = [float(s.instance_number * 1000 + (s.frame or 0)) for s in self.slots]
        order = sorted(range(n), key=lambda i: (keys[i], self.slots[i].instance_number))
        _permute_in_place(pixels, order)
        slots = [self.slots[i] for i in order]
        if have_positions:
            positions = np.array([s.position for s in slots], dtype=np.float64)
        else:
            positions = np.zeros((n, 3)) + np.arange(n)[:, None] * normal
        dz = _slice_spacing(positions, normal, ds)
        sy, sx = self.pixel_spacing
        center, width = _default_window(ds, pixels)
        return ImageVolume(
            pixels=pixels,
            sop_uids=tuple(s.sop_uid for s in slots),
            frames=tuple(s.frame for s in slots),
            positions=positions,
            spacing=(dz, sy, sx),
            origin=tuple(float(v) for v in positions[0]),  # type: ignore[arg-type]
            row_cosines=tuple(float(v) for v in self.row),  # type: ignore[arg-type]
            col_cosines=tuple(float(v) for v in self.col),  # type: ignore[arg-type]
            frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
            modality=str(ds.get("Modality", "")),
            window_center=center,
            window_width=width,
            description=str(ds.get("SeriesDescription", "") or ds.get("StudyDescription", "")),
            study_uid=study_uid,
            series_uid=series_uid,
            sop_class_uids=tuple(s.sop_class_uid for s in slots),
            photometric=str(ds.get("PhotometricInterpretation", "")),
            problems=self.problems,
            has_geometry=have_positions and self.has_orientation,
            patient_orientation=_patient_orientation(ds),
        )


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


# -- helpers ---------------------------------------------------------------------------
def _frame_item(ds: Dataset, index: int, inner: str) -> Dataset | None:
    """Per-frame, else shared, functional group item (enhanced multi-frame objects)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame) and inner in per_frame[index]:
        items = per_frame[index].get(inner)
        if items:
            return items[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and inner in shared[0]:
        items = shared[0].get(inner)
        if items:
            return items[0]
    return None


def _position(ds: Dataset, index: int) -> tuple[float, float, float] | None:
    item = _frame_item(ds, index, "PlanePositionSequence")
    value = (item or ds).get("ImagePositionPatient")
    if value is None or len(value) != 3:
        return None
    return float(value[0]), float(value[1]), float(value[2])


def _orientation(ds: Dataset) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    item = _frame_item(ds, 0, "PlaneOrientationSequence")
    value = (item or ds).get("ImageOrientationPatient")
    if value is None or len(value) != 6:
        return None
    row = np.asarray([float(v) for v in value[:3]])
    col = np.asarray([float(v) for v in value[3:]])
    if np.linalg.norm(row) == 0 or np.linalg.norm(col) == 0:
        return None
    return tuple(row / np.linalg.norm(row)), tuple(col / np.linalg.norm(col))


def _patient_orientation(ds: Dataset) -> tuple[str, str] | None:
    """Patient Orientation (0020,0020): the directions of the rows and of the columns."""
    value = ds.get("PatientOrientation")
    if value is None or isinstance(value, str) or len(value) != 2:
        return None
    return str(value[0]), str(value[1])


def _pixel_spacing(ds: Dataset) -> tuple[float, float]:
    item = _frame_item(ds, 0, "PixelMeasuresSequence")
    for source in (item, ds):
        if source is None:
            continue
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            value = source.get(keyword)
            if value is not None and len(value) == 2 and float(value[0]) > 0:
                return float(value[0]), float(value[1])
    return 1.0, 1.0


def _rescale(ds: Dataset, index: int) -> tuple[float, float]:
    item = _frame_item(ds, index, "PixelValueTransformationSequence") or ds
    slope = float(item.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(item.get("RescaleIntercept", 0.0) or 0.0)
    return slope, intercept


def _invert_constant(ds: Dataset, slope: float, intercept: float) -> float:
    """K with display = K - value: the stored range mirrored, through the rescale."""
    bits = int(ds.get("BitsStored", 16) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0):
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        low, high = 0, (1 << bits) - 1
    return slope * (low + high) + 2 * intercept


def _slice_spacing(positions: np.ndarray, normal: np.ndarray, ds: Dataset) -> float:
    if len(positions) > 1:
        steps = np.diff(positions @ normal)
        steps = steps[np.abs(steps) > 1e-6]
        if steps.size:
            return float(np.median(np.abs(steps)))
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(keyword)
        if value:
            return float(value)
    return 1.0


def _first_number(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = list(value)
        return float(items[0]) if items else None
    return float(value)  # type: ignore[arg-type]


def _default_window(ds: Dataset, pixels: np.ndarray) -> tuple[float, float]:
    """The first slice's VOI window, else the data's 1st–99th percentile range."""
    item = _frame_item(ds, 0, "FrameVOILUTSequence") or ds
    try:
        center = _first_number(item.get("WindowCenter"))
        width = _first_number(item.get("WindowWidth"))
    except (TypeError, ValueError):
        center = width = None
    if center is not None and width is not None and width > 0:
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            slope, intercept = _rescale(ds, 0)
            center = _invert_constant(ds, slope, intercept) - center
        return float(center), float(width)
    sample = pixels[:: max(1, pixels.shape[0] // 16), ::4, ::4]
    low, high = np.percentile(sample, [1.0, 99.0]) if sample.size else (0.0, 1.0)
    if high <= low:
        low, high = float(sample.min(initial=0.0)), float(sample.max(initial=1.0))
    width = max(float(high - low), 1.0)
    return float(low + width / 2), width


def _permute_in_place(array: np.ndarray, order: Sequence[int]) -> None:
    """array[:] = array[order] slice by slice, with one slice of scratch memory."""
    n = len(order)
    done = [False] * n
    scratch = np.empty(array.shape[1:], dtype=array.dtype)
    for start in range(n):
        if done[start] or order[start] == start:
            done[start] = True
            continue
        scratch[...] = array[start]
        current = start
        while True:
            source = order[current]
            done[current] = True
            if source == start:
                array[current] = scratch
                break
            array[current] = array[source]
            current = source


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
