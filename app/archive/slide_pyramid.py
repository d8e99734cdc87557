"""The pyramid of a whole-slide series, read from its WADO-RS metadata (Qt-free).

Each VL Whole Slide Microscopy instance of ImageType VOLUME is one level; levels are
ordered base (finest) first. A level maps a tile (column, row) to its frame number:
TILED_FULL frames go row by row, left to right (one focal plane, one optical
path); TILED_SPARSE frames say where they are in the per-frame Plane Position
(Slide) Sequence, and a tile no frame covers is missing.

Other converters differ (tests/pathology/test_third_party_slide.py): OrthancWSIDicomizer
writes no ImageType and no Dimension Organization Type, but per-frame positions,
and splits a large level into several instances (a concatenation). Per-frame
positions are used whenever they are present; instances of the same matrix size
and tile size are one level, each tile remembering which instance holds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from app.archive.protocol import ImageArchive
from app.errors import ArchiveError

VL_WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"
PER_FRAME = "52009230"  # Per-frame Functional Groups Sequence
PLANE_POSITION_SLIDE = "0048021A"  # Plane Position (Slide) Sequence
PIXEL_MEASURES = "00289110"  # Pixel Measures Sequence
PIXEL_SPACING = "00280030"
COLUMN_POSITION = "0048021E"  # Column Position In Total Image Pixel Matrix
ROW_POSITION = "0048021F"  # Row Position In Total Image Pixel Matrix


@dataclass(frozen=True)
class SlideLevel:
    """One pyramid level: an instance whose frames are tiles of its total pixel matrix."""

    sop_uid: str
    width: int  # Total Pixel Matrix Columns
    height: int  # Total Pixel Matrix Rows
    tile_width: int  # Columns
    tile_height: int  # Rows
    frames: int
    spacing_mm: tuple[float, float]  # (row spacing, column spacing)
    transfer_syntax: str = ""
    sparse: dict[tuple[int, int], int] | None = field(default=None, compare=False)
    # the instance holding each tile, when the level spans several instances
    tile_sops: dict[tuple[int, int], str] | None = field(default=None, compare=False)
    frame_offset: int = field(default=0, compare=False)  # Concatenation Frame Offset Number
    # where the total pixel matrix lies in the slide coordinate system (mm), for
    # annotations given in 3D slide coordinates; None when the image does not say
    origin_mm: tuple[float, float, float] | None = field(default=None, compare=False)
    orientation: tuple[float, ...] | None = field(
        default=None, compare=False
    )  # Image Orientation (Slide)
    frame_of_reference_uid: str = field(default="", compare=False)

    @property
    def tiles_across(self) -> int:
        return math.ceil(self.width / self.tile_width)

    @property
    def tiles_down(self) -> int:
        return math.ceil(self.height / self.tile_height)

    def frame_number(self, col: int, row: int) -> int | None:
        """The 1-based frame holding tile (col, row), or None when there is none."""
        if not (0 <= col < self.tiles_across and 0 <= row < self.tiles_down):
            return None
        if self.sparse is not None:
            return self.sparse.get((col, row))
        number = row * self.tiles_across + col + 1
        return number if number <= self.frames else None

    def sop_for(self, col: int, row: int) -> str:
        """The SOP Instance UID of the instance holding tile (col, row)."""
        if self.tile_sops is not None:
            return self.tile_sops.get((col, row), self.sop_uid)
        return self.sop_uid


@dataclass(frozen=True)
class SlidePyramid:
    study_uid: str
    series_uid: str
    levels: tuple[SlideLevel, ...]  # base first

    @property
    def base(self) -> SlideLevel:
        return self.levels[0]

    def downsample(self, index: int) -> float:
        """How many base pixels one pixel of level ``index`` spans (along columns)."""
        return self.base.width / self.levels[index].width

    @property
    def has_slide_geometry(self) -> bool:
        """Whether slide coordinates (mm) can be mapped onto the base level's pixels."""
        base = self.base
        return (
            base.origin_mm is not None
            and base.orientation is not None
            and all(s > 0 for s in base.spacing_mm)
        )

    def slide_to_base(self, xyz: np.ndarray) -> np.ndarray:
        """(n, 3) slide coordinates in mm -> (n, 2) base-level image coordinates (column,
        row; (0, 0) the top left corner of the top left pixel, as SCOORD). Raises
        ``ValueError`` when the slide does not give its geometry."""
        if not self.has_slide_geometry:
            raise ValueError("the slide gives no Total Pixel Matrix Origin / orientation")
        return np.asarray(self._to_image(np.asarray(xyz, dtype=np.float64).reshape(-1, 3)))

    @cached_property
    def _to_image(self) -> hd.spatial.ReferenceToImageTransformer:
        """Made once per pyramid: every fly-to, and the SR groups after each decision, reuse it."""
        base = self.base
        return hd.spatial.ReferenceToImageTransformer(
            image_position=base.origin_mm,  # type: ignore[arg-type]
            image_orientation=base.orientation,  # type: ignore[arg-type]
            pixel_spacing=base.spacing_mm,
            drop_slice_coord=True,
        )

    def level_for(self, base_px_per_screen_px: float) -> int:
        """The coarsest level still at least as fine as the screen needs."""
        best = 0
        for i in range(len(self.levels)):
            if self.downsample(i) <= base_px_per_screen_px * 1.0001:
                best = i
        return best


def read_pyramid(archive: ImageArchive, study_uid: str, series_uid: str) -> SlidePyramid:
    """The series' pyramid; raises ``ArchiveError`` when it holds no whole-slide levels."""
    metadata = archive.retrieve_series_metadata(study_uid, series_uid)
    parts = [lvl for item in metadata if (lvl := level_from_json(item)) is not None]
    if not parts:
        raise ArchiveError(f"series {series_uid} has no whole-slide image levels")
    levels = merge_instances(parts)
    levels.sort(key=lambda lvl: -lvl.width * lvl.height)
    return SlidePyramid(study_uid, series_uid, tuple(levels))


def merge_instances(parts: list[SlideLevel]) -> list[SlideLevel]:
    """One level per matrix and tile size: instances that split a level are joined,
    each tile mapped to its instance and frame there."""
    groups: dict[tuple[int, int, int, int], list[SlideLevel]] = {}
    for part in parts:
        groups.setdefault((part.width, part.height, part.tile_width, part.tile_height), []).append(
            part
        )
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        frames: dict[tuple[int, int], int] = {}
        sops: dict[tuple[int, int], str] = {}
        for part in group:
            for key, number in _tile_frames(part).items():
                if key not in frames:
                    frames[key] = number
                    sops[key] = part.sop_uid
        first = group[0]
        out.append(
            SlideLevel(
                sop_uid=first.sop_uid,
                width=first.width,
                height=first.height,
                tile_width=first.tile_width,
                tile_height=first.tile_height,
                frames=sum(p.frames for p in group),
                spacing_mm=first.spacing_mm,
                transfer_syntax=first.transfer_syntax,
                sparse=frames,
                tile_sops=sops,
                origin_mm=first.origin_mm,
                orientation=first.orientation,
                frame_of_reference_uid=first.frame_of_reference_uid,
            )
        )
    return out


def _tile_frames(level: SlideLevel) -> dict[tuple[int, int], int]:
    if level.sparse is not None:
        return dict(level.sparse)
    # TILED_FULL split across a concatenation: this part starts at its frame offset
    out = {}
    for k in range(level.frames):
        index = level.frame_offset + k
        out[(index % level.tiles_across, index // level.tiles_across)] = k + 1
    return out


def level_from_json(item: dict[str, Any]) -> SlideLevel | None:
    """A level from one instance's DICOM JSON metadata; None for labels, overviews,
    thumbnails and anything that is not a tiled whole-slide image."""
    sop_class = (item.get("00080016") or {}).get("Value") or [""]
    if sop_class[0] != VL_WSI:
        return None
    # the per-frame groups (one item per tile) are read straight from the JSON:
    # Dataset.from_json takes seconds for tens of thousands of frames
    per_frame = (item.get(PER_FRAME) or {}).get("Value") or []
    head = {tag: value for tag, value in item.items() if tag != PER_FRAME}
    ds = Dataset.from_json(head, bulk_data_uri_handler=lambda *_: b"")
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if len(image_type) > 2 and image_type[2] != "VOLUME":
        return None
    try:
        width, height = int(ds.TotalPixelMatrixColumns), int(ds.TotalPixelMatrixRows)
        tile_w, tile_h = int(ds.Columns), int(ds.Rows)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    spacing = _spacing(ds, per_frame)
    # per-frame positions, where given, say where each frame is (TILED_SPARSE must give
    # them; some converters give them for a full tiling and omit the organization type)
    sparse = _sparse_map(per_frame, tile_w, tile_h) or None
    if sparse is None and str(ds.get("DimensionOrganizationType", "")).upper() == "TILED_SPARSE":
        sparse = {}
    return SlideLevel(
        sop_uid=str(ds.SOPInstanceUID),
        width=width,
        height=height,
        tile_width=tile_w,
        tile_height=tile_h,
        frames=frames,
        spacing_mm=spacing,
        transfer_syntax=str(item.get("00020010", {}).get("Value", [""])[0]),
        sparse=sparse,
        frame_offset=int(ds.get("ConcatenationFrameOffsetNumber", 0) or 0),
        origin_mm=_origin(ds),
        orientation=_orientation(ds),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
    )


def _origin(ds: Dataset) -> tuple[float, float, float] | None:
    """Total Pixel Matrix Origin (x, y, z) in the slide coordinate system, mm."""
    for item in ds.get("TotalPixelMatrixOriginSequence") or []:
        try:
            x = float(item.XOffsetInSlideCoordinateSystem)
            y = float(item.YOffsetInSlideCoordinateSystem)
        except (AttributeError, TypeError, ValueError):
            return None
        z = item.get("ZOffsetInSlideCoordinateSystem")
        return x, y, float(z) if z not in (None, "") else 0.0
    return None


def _orientation(ds: Dataset) -> tuple[float, ...] | None:
    values = ds.get("ImageOrientationSlide")
    try:
        out = tuple(float(v) for v in values or ())
    except (TypeError, ValueError):
        return None
    return out if len(out) == 6 else None


def _spacing(ds: Dataset, per_frame: list[dict[str, Any]]) -> tuple[float, float]:
    """Pixel Spacing (row, column) in mm: shared, else the first frame's, else estimated
    from the Imaged Volume Width; (0, 0) when nothing says."""
    for group in ds.get("SharedFunctionalGroupsSequence") or []:
        for measures in group.get("PixelMeasuresSequence") or []:
            ps = measures.get("PixelSpacing")
            if ps and len(ps) == 2:
                return float(ps[0]), float(ps[1])
    given = _frame_spacing(per_frame)
    if given != (0.0, 0.0):
        return given
    width = float(ds.get("ImagedVolumeWidth", 0) or 0)
    if width > 0:
        s = width / int(ds.TotalPixelMatrixColumns)
        return s, s
    return 0.0, 0.0


def _frame_spacing(per_frame: list[dict[str, Any]]) -> tuple[float, float]:
    """Pixel Spacing given per frame (the first frame's), from the DICOM JSON."""
    for frame in per_frame[:1]:
        for measures in (frame.get(PIXEL_MEASURES) or {}).get("Value") or []:
            values = (measures.get(PIXEL_SPACING) or {}).get("Value") or []
            try:
                if len(values) == 2 and float(values[0]) > 0 and float(values[1]) > 0:
                    return float(values[0]), float(values[1])
            except (TypeError, ValueError):
                pass
    return 0.0, 0.0


def _sparse_map(
    per_frame: list[dict[str, Any]], tile_w: int, tile_h: int
) -> dict[tuple[int, int], int]:
    """Tile (col, row) -> 1-based frame, from the per-frame groups' DICOM JSON."""
    out: dict[tuple[int, int], int] = {}
    for number, frame in enumerate(per_frame, start=1):
        for pos in (frame.get(PLANE_POSITION_SLIDE) or {}).get("Value") or []:
            try:
                col = int(pos[COLUMN_POSITION]["Value"][0]) - 1
                row = int(pos[ROW_POSITION]["Value"][0]) - 1
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            out.setdefault((col // tile_w, row // tile_h), number)
    return out
