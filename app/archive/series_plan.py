"""From a series' headers (WADO-RS metadata) to the plan of its volume (Qt-free).

Before any pixel arrives, the headers say everything the volume needs: its size,
greyscale or colour, each frame's position along the slice normal (per-frame
functional groups for enhanced multi-frame objects) and its rescale. So the
slices are ordered, and the volume allocated, once — the pixels are then written
straight into their slice as they are decoded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from app.archive.dicomjson import JsonHeader
from app.archive.volume import ImageVolume, VolumeLoadError

_DEFAULT_ROW = (1.0, 0.0, 0.0)
_DEFAULT_COL = (0.0, 1.0, 0.0)
COLOR_PHOTOMETRICS = ("RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")

# A header: the instance's dataset (files opened from disk, retrieved instances) or its
# WADO-RS metadata read in place (``JsonHeader``); the plan only calls ``get`` and ``in``.
Header = Dataset | JsonHeader


@dataclass
class Slot:
    """One slice of the volume: which frame of which instance goes there."""

    sop_uid: str
    frame_index: int  # 0-based frame in the instance
    multi_frame: bool
    position: tuple[float, float, float] | None
    instance_number: int
    sop_class_uid: str
    slope: float
    intercept: float


@dataclass
class SeriesPlan:
    """The preallocated volume and, per slice, where its pixels come from."""

    volume: ImageVolume
    slots: list[Slot]  # slots[z] fills volume.pixels[z]
    headers: dict[str, Header]  # by SOP Instance UID
    window_known: bool  # False: set the window from the first decoded slice
    problems: list[str] = field(default_factory=list)

    def slices_of(self) -> dict[str, list[int]]:
        """Per instance, the slices its frames fill."""
        out: dict[str, list[int]] = {}
        for z, slot in enumerate(self.slots):
            out.setdefault(slot.sop_uid, []).append(z)
        return out


def header_from_json(item: dict[str, Any]) -> JsonHeader:
    """One instance's DICOM JSON metadata as a header the plan reads (nothing is parsed
    until asked for)."""
    return JsonHeader(item)


def plan_series(headers: Sequence[Header], study_uid: str, series_uid: str) -> SeriesPlan:
    """Order the series' frames along the slice normal and allocate its volume.

    Raises ``VolumeLoadError`` when no header describes an image.
    """
    problems: list[str] = []
    images: list[Header] = []
    for ds in headers:
        uid = ds.get("SOPInstanceUID", "?")
        try:
            rows, cols, _ = _shape_key(ds)
            int(ds.get("NumberOfFrames", 1) or 1)
        except (TypeError, ValueError, AttributeError) as exc:
            problems.append(f"instance {uid} has an unreadable image header ({exc}); skipped")
            continue
        if rows > 0 and cols > 0:
            images.append(ds)
        else:
            problems.append(f"instance {uid} is not an image (no Rows/Columns); skipped")
    if not images:
        why = "; ".join(problems[:3]) or "the series holds no images"
        raise VolumeLoadError(f"series {series_uid} has no displayable image: {why}")
    shapes = Counter(_shape_key(ds) for ds in images)
    rows, cols, color = shapes.most_common(1)[0][0]
    kept = []
    for ds in images:
        if _shape_key(ds) == (rows, cols, color):
            kept.append(ds)
        else:
            r, c, is_color = _shape_key(ds)
            kind = "colour" if is_color else "greyscale"
            problems.append(
                f"instance {ds.get('SOPInstanceUID', '?')} is a {c}x{r} {kind} image, the "
                f"series is {cols}x{rows}; skipped"
            )
    first = kept[0]
    orientation = next((o for o in map(_orientation, kept) if o is not None), None)
    row: tuple[float, ...] = _DEFAULT_ROW
    col: tuple[float, ...] = _DEFAULT_COL
    if orientation is not None:
        row, col = orientation
    normal = np.cross(row, col)
    slots: list[Slot] = []
    for ds in kept:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        for index in range(n_frames):
            slope, intercept = rescale(ds, index)
            slots.append(
                Slot(
                    str(ds.get("SOPInstanceUID", "")),
                    index,
                    n_frames > 1,
                    _position(ds, index),
                    int(ds.get("InstanceNumber", 0) or 0),
                    str(ds.get("SOPClassUID", "")),
                    slope,
                    intercept,
                )
            )
    have_positions = all(s.position is not None for s in slots)
    if have_positions:
        keys = [float(np.dot(s.position, normal)) for s in slots]  # type: ignore[arg-type]
    else:
        keys = [float(s.instance_number * 100000 + s.frame_index) for s in slots]
    order = sorted(range(len(slots)), key=lambda i: (keys[i], slots[i].instance_number))
    slots = [slots[i] for i in order]
    n = len(slots)
    if have_positions:
        positions = np.array([s.position for s in slots], dtype=np.float64)
    else:
        positions = np.zeros((n, 3)) + np.arange(n)[:, None] * normal
    # np.zeros maps untouched pages lazily: memory is committed slice by slice as pixels land
    if color:
        pixels = np.zeros((n, rows, cols, 3), dtype=np.uint8)
    else:
        pixels = np.zeros((n, rows, cols), dtype=grey_dtype(kept, slots))
    window = (127.5, 255.0) if color else header_window(first)
    sy, sx = _pixel_spacing(first)
    volume = ImageVolume(
        pixels=pixels,
        sop_uids=tuple(s.sop_uid for s in slots),
        frames=tuple(s.frame_index + 1 if s.multi_frame else None for s in slots),
        positions=positions,
        spacing=(_slice_spacing(positions, normal, first), sy, sx),
        origin=tuple(float(v) for v in positions[0]),  # type: ignore[arg-type]
        row_cosines=tuple(float(v) for v in row),  # type: ignore[arg-type]
        col_cosines=tuple(float(v) for v in col),  # type: ignore[arg-type]
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
        modality=str(first.get("Modality", "")),
        window_center=window[0] if window else 0.0,
        window_width=window[1] if window else 1.0,
        description=str(first.get("SeriesDescription", "") or first.get("StudyDescription", "")),
        study_uid=study_uid,
        series_uid=series_uid,
        sop_class_uids=tuple(s.sop_class_uid for s in slots),
        photometric="RGB" if color else str(first.get("PhotometricInterpretation", "")),
        problems=problems,
        has_geometry=have_positions and orientation is not None,
        patient_orientation=_patient_orientation(first),
        loaded=np.zeros(n, dtype=bool),
    )
    headers_by_uid = {str(ds.get("SOPInstanceUID", "")): ds for ds in kept}
    return SeriesPlan(volume, slots, headers_by_uid, window is not None, problems)


def grey_dtype(headers: Sequence[Header], slots: Sequence[Slot]) -> np.dtype[Any]:
    """The smallest type that holds every rescaled value the headers allow, exactly.

    Integer slopes and intercepts on integer pixels give integers: int16 for most CT
    (12-bit stored, intercept -1024) and uint16/uint8 for MR and projection images
    without a rescale — half (or a quarter) of float32's bytes. Anything else (a
    fractional rescale, float pixel data, a range over 16 bits) is float32.
    """
    low = high = 0
    for ds in headers:
        bits = int(ds.get("BitsStored", 0) or ds.get("BitsAllocated", 0) or 0)
        if not 0 < bits <= 16 or int(ds.get("BitsAllocated", 16) or 16) > 16:
            return np.dtype(np.float32)
        if int(ds.get("PixelRepresentation", 0) or 0):
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        else:
            lo, hi = 0, (1 << bits) - 1
        low, high = min(low, lo), max(high, hi)
    scaled_low = scaled_high = 0.0
    for n, slot in enumerate(slots):
        if slot.slope != int(slot.slope) or slot.intercept != int(slot.intercept):
            return np.dtype(np.float32)
        ends = (slot.slope * low + slot.intercept, slot.slope * high + slot.intercept)
        if n == 0:
            scaled_low, scaled_high = min(ends), max(ends)
        scaled_low, scaled_high = min(scaled_low, *ends), max(scaled_high, *ends)
    for dtype in (np.uint8, np.int16, np.uint16):
        info = np.iinfo(dtype)
        if info.min <= scaled_low and scaled_high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float32)


def fetch_order(n_slices: int, first: int) -> list[int]:
    """Slices nearest ``first`` first, alternating outwards (what the reader sees next)."""
    first = max(0, min(first, n_slices - 1))
    out = [first]
    for step in range(1, n_slices):
        for z in (first + step, first - step):
            if 0 <= z < n_slices:
                out.append(z)
    return out


# -- header reading ------------------------------------------------------------------
def _shape_key(ds: Header) -> tuple[int, int, bool]:
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    color = int(ds.get("SamplesPerPixel", 1) or 1) > 1 or photometric in COLOR_PHOTOMETRICS
    return int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0), color


def frame_item(ds: Header, index: int, inner: str) -> Header | None:
    """Per-frame, else shared, functional group item (enhanced multi-frame objects)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame) and inner in per_frame[index]:
        items = per_frame[index].get(inner)
        if items:
            return items[0]  # type: ignore[no-any-return]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and inner in shared[0]:
        items = shared[0].get(inner)
        if items:
            return items[0]  # type: ignore[no-any-return]
    return None


def _position(ds: Header, index: int) -> tuple[float, float, float] | None:
    item = frame_item(ds, index, "PlanePositionSequence")
    value = (item or ds).get("ImagePositionPatient")
    try:
        if value is None or len(value) != 3:
            return None
        return float(value[0]), float(value[1]), float(value[2])
    except (TypeError, ValueError):
        return None


def _orientation(ds: Header) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    item = frame_item(ds, 0, "PlaneOrientationSequence")
    value = (item or ds).get("ImageOrientationPatient")
    try:
        if value is None or len(value) != 6:
            return None
        row = np.asarray([float(v) for v in value[:3]])
        col = np.asarray([float(v) for v in value[3:]])
    except (TypeError, ValueError):
        return None
    if np.linalg.norm(row) == 0 or np.linalg.norm(col) == 0:
        return None
    return tuple(row / np.linalg.norm(row)), tuple(col / np.linalg.norm(col))


def _patient_orientation(ds: Header) -> tuple[str, str] | None:
    """Patient Orientation (0020,0020): the directions of the rows and of the columns."""
    value = ds.get("PatientOrientation")
    if value is None or isinstance(value, str) or len(value) != 2:
        return None
    return str(value[0]), str(value[1])


def _pixel_spacing(ds: Header) -> tuple[float, float]:
    item = frame_item(ds, 0, "PixelMeasuresSequence")
    for source in (item, ds):
        if source is None:
            continue
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            value = source.get(keyword)
            try:
                if value is not None and len(value) == 2 and float(value[0]) > 0:
                    return float(value[0]), float(value[1])
            except (TypeError, ValueError):
                continue
    return 1.0, 1.0


def rescale(ds: Header, index: int) -> tuple[float, float]:
    """Rescale Slope and Intercept of frame ``index`` (functional groups, else the header)."""
    item = frame_item(ds, index, "PixelValueTransformationSequence") or ds
    try:
        slope = float(item.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(item.get("RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 1.0, 0.0
    return slope, intercept


def invert_constant(ds: Header, slope: float, intercept: float) -> float:
    """K with display = K - value: the stored range mirrored, through the rescale."""
    bits = int(ds.get("BitsStored", 16) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0):
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        low, high = 0, (1 << bits) - 1
    return slope * (low + high) + 2 * intercept


def _slice_spacing(positions: np.ndarray, normal: np.ndarray, ds: Header) -> float:
    if len(positions) > 1:
        steps = np.diff(positions @ normal)
        steps = steps[np.abs(steps) > 1e-6]
        if steps.size:
            return float(np.median(np.abs(steps)))
    item = frame_item(ds, 0, "PixelMeasuresSequence")
    for source in (item, ds):
        for keyword in ("SpacingBetweenSlices", "SliceThickness"):
            value = source.get(keyword) if source is not None else None
            try:
                if value and float(value) > 0:
                    return float(value)
            except (TypeError, ValueError):
                continue
    return 1.0


def _first_number(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = list(value)
        return float(items[0]) if items else None
    return float(value)  # type: ignore[arg-type]


def header_window(ds: Header) -> tuple[float, float] | None:
    """The first frame's VOI window (display values), or None when the header has none."""
    item = frame_item(ds, 0, "FrameVOILUTSequence") or ds
    try:
        center = _first_number(item.get("WindowCenter"))
        width = _first_number(item.get("WindowWidth"))
    except (TypeError, ValueError):
        return None
    if center is None or width is None or width <= 0:
        return None
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        slope, intercept = rescale(ds, 0)
        center = invert_constant(ds, slope, intercept) - center
    return float(center), float(width)


def data_window(pixels: np.ndarray) -> tuple[float, float]:
    """A window over the 1st–99th percentile of ``pixels`` (one slice is enough)."""
    sample = pixels[::4, ::4] if pixels.ndim >= 2 else pixels
    finite = sample[np.isfinite(sample)] if sample.size else sample
    if not finite.size:
        return 0.5, 1.0
    low, high = (float(v) for v in np.percentile(finite, [1.0, 99.0]))
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    width = max(high - low, 1.0)
    return low + width / 2, width
