"""Read DICOM Segmentations (binary, fractional, label map) and align them to a volume.

``read_segmentation`` turns a SEG dataset (via highdicom) into a ``SegmentationSource``:
the domain's ``SegmentationResult`` (segment labels, colours, codes) plus each frame's
segment, source image references and plane position. ``masks_for_volume`` then puts
each frame on the displayed series' slices: by the source image it references (same
pixel grid), else by frame of reference and plane position (nearest-neighbour in the
plane, within half a slice spacing along the normal).

Masks are uint8, 0..255 (a binary segment is 255; a fractional one is scaled from its
Maximum Fractional Value), one 2D array per (segment, slice) that holds any of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from app.archive.volume import ImageVolume, slice_index_for_sop
from app.domain import Algorithm, Code, Segment, SegmentationResult
from app.errors import CompanionError

log = logging.getLogger(__name__)

SEG_SOP_CLASS_UIDS = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
        "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
    }
)
# Colours for segments without a Recommended Display CIELab Value (sRGB).
DEFAULT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 60, 60),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
)

# (segment number -> (slice index -> (rows, columns) uint8 mask))
SliceMasks = dict[int, dict[int, np.ndarray]]


class SegmentationError(CompanionError):
    """A SEG instance could not be read."""


@dataclass(frozen=True)
class SegFrame:
    """Where one stored frame belongs."""

    number: int  # 1-based frame number in the SEG
    segment: int | None  # None for a label map (its pixels are segment numbers)
    sources: tuple[tuple[str, int | None], ...]  # (SOP Instance UID, 1-based frame)
    position: tuple[float, float, float] | None


@dataclass
class SegmentationSource:
    """A read SEG: what it shows (``result``) and how to get its pixels."""

    result: SegmentationResult
    dataset: hd.seg.Segmentation
    frames: tuple[SegFrame, ...]
    rows: int
    columns: int
    row_cosines: np.ndarray  # direction of increasing column index
    col_cosines: np.ndarray  # direction of increasing row index
    pixel_spacing: tuple[float, float]  # (between rows, between columns) mm
    max_fractional: int = 1

    def stored_frame(self, number: int) -> np.ndarray:
        return np.asarray(self.dataset.get_stored_frame(number))


def read_segmentation(ds: Dataset) -> SegmentationSource:
    """Parse a SEG dataset; raises ``SegmentationError`` naming what is wrong."""
    sop_uid = str(ds.get("SOPInstanceUID", ""))
    if str(ds.get("SOPClassUID", "")) not in SEG_SOP_CLASS_UIDS:
        raise SegmentationError(
            f"instance {sop_uid} is not a Segmentation (SOP Class "
            f"{ds.get('SOPClassUID', 'missing')})"
        )
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise SegmentationError(f"SEG {sop_uid} could not be read: {exc}") from exc
    seg_type = str(seg.get("SegmentationType", "BINARY"))
    segments = tuple(_segment(item, n) for n, item in enumerate(seg.SegmentSequence))
    shared = _first(seg, "SharedFunctionalGroupsSequence")
    per_frame = seg.get("PerFrameFunctionalGroupsSequence") or []
    orientation = _item_value(shared, "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = _item_value(shared, "PixelMeasuresSequence", "PixelSpacing")
    frames = []
    for index in range(int(seg.get("NumberOfFrames", 1) or 1)):
        item = per_frame[index] if index < len(per_frame) else None
        frames.append(_frame(index + 1, item, seg_type))
        if orientation is None and item is not None:
            orientation = _item_value(item, "PlaneOrientationSequence", "ImageOrientationPatient")
        if spacing is None and item is not None:
            spacing = _item_value(item, "PixelMeasuresSequence", "PixelSpacing")
    row, col = (
        (np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
        if (orientation is not None and len(orientation) == 6)
        else (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    )
    result = SegmentationResult(
        sop_instance_uid=sop_uid,
        series_instance_uid=str(seg.get("SeriesInstanceUID", "")),
        study_instance_uid=str(seg.get("StudyInstanceUID", "")),
        segmentation_type=seg_type,
        segments=segments,
        frame_of_reference_uid=str(seg.get("FrameOfReferenceUID", "")),
        series_description=str(seg.get("SeriesDescription", "")),
    )
    return SegmentationSource(
        result=result,
        dataset=seg,
        frames=tuple(frames),
        rows=int(seg.Rows),
        columns=int(seg.Columns),
        row_cosines=row,
        col_cosines=col,
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing else (1.0, 1.0),
        max_fractional=int(seg.get("MaximumFractionalValue", 1) or 1),
    )


def masks_for_volume(source: SegmentationSource, volume: ImageVolume) -> SliceMasks:
    """Each segment's masks on the slices of ``volume`` (segments not on it are left out)."""
    out: SliceMasks = {}
    same_frame = (
        not volume.frame_of_reference_uid
        or not source.result.frame_of_reference_uid
        or volume.frame_of_reference_uid == source.result.frame_of_reference_uid
    )
    _, rows, cols = volume.shape
    unplaced = 0
    for frame in source.frames:
        targets = (
            _slices_by_source(frame, volume)
            if (rows, cols) == (source.rows, source.columns)
            else []
        )
        resample = False
        if not targets and same_frame and frame.position is not None and volume.has_geometry:
            index = _slice_by_position(volume, frame.position)
            targets, resample = ([index], True) if index is not None else ([], False)
        if not targets:
            unplaced += 1
            continue
        stored = source.stored_frame(frame.number)
        if resample:
            stored = _resample(source, frame, stored, volume, targets[0])
        for segment, values in _segment_values(source, frame, stored):
            if not values.any():
                continue
            for index in targets:
                masks = out.setdefault(segment, {})
                if index in masks:
                    np.maximum(masks[index], values, out=masks[index])
                else:
                    masks[index] = values.copy()
    if unplaced:
        log.info("%d of %d SEG frames are not on the shown series", unplaced, len(source.frames))
    return out


# -- internals ------------------------------------------------------------------------
def _segment(item: Dataset, index: int) -> Segment:
    number = int(item.get("SegmentNumber", index + 1))
    lab = item.get("RecommendedDisplayCIELabValue")
    colour = DEFAULT_COLOURS[(number - 1) % len(DEFAULT_COLOURS)]
    if lab is not None and len(lab) == 3:
        try:
            rgb = hd.color.CIELabColor.from_dicom_value(tuple(int(v) for v in lab)).to_rgb()
            colour = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
        except (ValueError, TypeError):
            pass
    algorithm = None
    algo_items = item.get("SegmentationAlgorithmIdentificationSequence") or []
    if algo_items:
        a = algo_items[0]
        algorithm = Algorithm(str(a.get("AlgorithmName", "")), str(a.get("AlgorithmVersion", "")))
    elif item.get("SegmentAlgorithmName"):
        algorithm = Algorithm(str(item.SegmentAlgorithmName), "")
    return Segment(
        number=number,
        label=str(item.get("SegmentLabel", "") or f"Segment {number}"),
        colour=colour,
        property_category=_code(item, "SegmentedPropertyCategoryCodeSequence"),
        property_type=_code(item, "SegmentedPropertyTypeCodeSequence"),
        algorithm=algorithm,
        tracking_uid=str(item.get("TrackingUID", "")),
    )


def _code(item: Dataset, keyword: str) -> Code | None:
    seq = item.get(keyword) or []
    if not seq:
        return None
    c = seq[0]
    return Code(
        str(c.get("CodeValue", "")),
        str(c.get("CodingSchemeDesignator", "")),
        str(c.get("CodeMeaning", "")),
    )


def _first(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword) or []
    return seq[0] if seq else None


def _item_value(item: Dataset | None, sequence: str, keyword: str) -> list[float] | None:
    inner = _first(item, sequence) if item is not None else None
    value = inner.get(keyword) if inner is not None else None
    return [float(v) for v in value] if value is not None else None


def _frame(number: int, item: Dataset | None, seg_type: str) -> SegFrame:
    segment: int | None = None
    sources: list[tuple[str, int | None]] = []
    position = None
    if item is not None:
        ident = _first(item, "SegmentIdentificationSequence")
        if ident is not None and seg_type != "LABELMAP":
            segment = int(ident.ReferencedSegmentNumber)
        for derivation in item.get("DerivationImageSequence") or []:
            for src in derivation.get("SourceImageSequence") or []:
                frames = src.get("ReferencedFrameNumber")
                frame = (
                    int(frames[0] if isinstance(frames, list | tuple) else frames)
                    if (frames not in (None, ""))
                    else None
                )
                sources.append((str(src.ReferencedSOPInstanceUID), frame))
        value = _item_value(item, "PlanePositionSequence", "ImagePositionPatient")
        if value is not None and len(value) == 3:
            position = (value[0], value[1], value[2])
    if segment is None and seg_type != "LABELMAP":
        segment = 1
    return SegFrame(number, segment, tuple(sources), position)


def _slices_by_source(frame: SegFrame, volume: ImageVolume) -> list[int]:
    out = []
    for sop, number in frame.sources:
        index = slice_index_for_sop(volume, sop, number)
        if index is not None and index not in out:
            out.append(index)
    return out


def _slice_by_position(volume: ImageVolume, position: tuple[float, float, float]) -> int | None:
    normal = volume.normal
    distances = volume.positions @ normal - float(np.dot(position, normal))
    index = int(np.argmin(np.abs(distances)))
    half = max(abs(float(volume.spacing[0])) / 2.0, 0.01)
    return index if abs(distances[index]) <= half else None


def _resample(
    source: SegmentationSource,
    frame: SegFrame,
    stored: np.ndarray,
    volume: ImageVolume,
    index: int,
) -> np.ndarray:
    """The SEG frame on the volume slice's pixel grid, nearest neighbour."""
    assert frame.position is not None
    _, rows, cols = volume.shape
    _, sy, sx = volume.spacing
    row_dir, col_dir = np.asarray(volume.row_cosines), np.asarray(volume.col_cosines)
    start = np.asarray(volume.positions[index]) - np.asarray(frame.position)
    # a volume pixel (i, j) sits at start + i*sx*row_dir + j*sy*col_dir from the SEG origin
    seg_sy, seg_sx = source.pixel_spacing
    u0 = float(np.dot(start, source.row_cosines)) / seg_sx
    v0 = float(np.dot(start, source.col_cosines)) / seg_sy
    du_i = sx * float(np.dot(row_dir, source.row_cosines)) / seg_sx
    du_j = sy * float(np.dot(col_dir, source.row_cosines)) / seg_sx
    dv_i = sx * float(np.dot(row_dir, source.col_cosines)) / seg_sy
    dv_j = sy * float(np.dot(col_dir, source.col_cosines)) / seg_sy
    j, i = np.mgrid[0:rows, 0:cols]
    u = np.rint(u0 + du_i * i + du_j * j).astype(np.int64)
    v = np.rint(v0 + dv_i * i + dv_j * j).astype(np.int64)
    inside = (u >= 0) & (u < source.columns) & (v >= 0) & (v < source.rows)
    out = np.zeros((rows, cols), dtype=stored.dtype)
    out[inside] = stored[v[inside], u[inside]]
    return out


def _segment_values(
    source: SegmentationSource, frame: SegFrame, stored: np.ndarray
) -> list[tuple[int, np.ndarray]]:
    """(segment number, uint8 0..255 mask) pairs held by one frame."""
    kind = source.result.segmentation_type
    if kind == "LABELMAP":
        numbers = {s.number for s in source.result.segments}  # 0 is the background
        present = [int(v) for v in np.unique(stored) if int(v) in numbers and int(v) != 0]
        return [(n, np.where(stored == n, 255, 0).astype(np.uint8)) for n in present]
    assert frame.segment is not None
    if kind == "FRACTIONAL":
        scaled = np.rint(stored.astype(np.float32) * (255.0 / max(source.max_fractional, 1)))
        return [(frame.segment, np.clip(scaled, 0, 255).astype(np.uint8))]
    return [(frame.segment, np.where(stored > 0, 255, 0).astype(np.uint8))]
