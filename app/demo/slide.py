"""A demo whole-slide image: a VL Whole Slide Microscopy Image pyramid (Qt-free, seeded).

highdicom 0.28 has no builder for VL Whole Slide Microscopy images, so each level
is a pydicom ``FileDataset`` (preamble and file meta included) carrying the IOD's
modules: Patient, General Study, General Series, Whole Slide Microscopy Series,
Frame of Reference, General and Enhanced General Equipment, Image Pixel,
Acquisition Context, Multi-frame Functional Groups (shared only: TILED_FULL),
Multi-frame Dimension, Specimen (highdicom's ``SpecimenDescription``), Whole
Slide Microscopy Image, Optical Path (sRGB ICC profile) and SOP Common. Tiles are
256² JPEG baseline (YBR_FULL_422), stored TILED_FULL: row by row, left to right.
Every level is an instance of one series; level ``k`` is ``2**k`` times coarser.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import highdicom as hd
import numpy as np
from PIL import Image, ImageCms
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, JPEGBaseline8Bit

from app.demo.slide_texture import SlideContent, make_content, render_tile
from app.errors import DemoDataError
from app.results.sr_writer import name_based_uid

VL_WSI = UID("1.2.840.10008.5.1.4.1.1.77.1.6")
TILE = 256
MANUFACTURER = "AI Review Companion"
_SRGB: bytes | None = None
PARALLEL_MIN_TILES = 400  # below this, worker processes cost more than they save
MAX_WORKERS = 8


@dataclass(frozen=True)
class SlideSpec:
    """Size and identity of a demo slide (base level ``width`` x ``height`` pixels)."""

    width: int = 20_480
    height: int = 15_360
    levels: int = 4
    pixel_spacing_mm: float = 0.00025  # 0.25 µm per base pixel (a 40x scan)
    seed: int = 0
    quality: int = 85
    patient_name: str = "Demo^Pathology"
    patient_id: str = "DEMO-PATH-1"
    accession: str = "DPATH0001"
    description: str = "Breast core biopsy, Ki-67"
    study_datetime: datetime = datetime(2026, 1, 5, 9, 30)

    def __post_init__(self) -> None:
        if self.width < TILE or self.height < TILE:
            raise DemoDataError(
                f"slide size must be at least {TILE} px, got {self.width}x{self.height}"
            )
        if self.levels < 1:
            raise DemoDataError(f"levels must be >= 1, got {self.levels!r}")


@dataclass
class DemoSlide:
    spec: SlideSpec
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    content: SlideContent
    levels: list[FileDataset] = field(default_factory=list)

    def uid(self, *parts: str) -> str:
        return name_based_uid(f"demo-slide-{self.spec.seed}-" + "-".join(parts))


def level_size(spec: SlideSpec, level: int) -> tuple[int, int]:
    """(columns, rows) of the total pixel matrix at ``level``."""
    d = 2**level
    return math.ceil(spec.width / d), math.ceil(spec.height / d)


def generate_slide(
    spec: SlideSpec | None = None, progress: Callable[[int, int], None] | None = None
) -> DemoSlide:
    """The slide's content and its pyramid, one instance per level.

    ``progress(done, total)`` counts tiles rendered and encoded. A slide of more than
    ``PARALLEL_MIN_TILES`` tiles is rendered and JPEG-encoded a tile row at a time in
    worker processes (one per core): the same pixels, in a fraction of the time.
    """
    spec = spec or SlideSpec()

    def uid(*parts: str) -> str:
        return name_based_uid(f"demo-slide-{spec.seed}-" + "-".join(parts))

    slide = DemoSlide(
        spec=spec,
        study_uid=uid("study"),
        series_uid=uid("series"),
        frame_of_reference_uid=uid("for"),
        content=make_content(spec.width, spec.height, spec.seed),
    )
    total = sum(
        _tile_grid(spec, level)[0] * _tile_grid(spec, level)[1] for level in range(spec.levels)
    )
    done = 0
    if progress is not None:
        progress(0, total)
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    pool: ProcessPoolExecutor | None = None
    if total >= PARALLEL_MIN_TILES and workers > 1:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(slide.content, spec.quality),
        )
    try:
        for level in range(spec.levels):
            across, down = _tile_grid(spec, level)
            rows: Iterator[list[bytes]]
            if pool is not None:
                rows = pool.map(_encode_row, [(2**level, ty, across) for ty in range(down)])
            else:
                rows = (
                    _row_frames(slide.content, spec.quality, 2**level, ty, across)
                    for ty in range(down)
                )
            frames: list[bytes] = []
            for row in rows:
                frames.extend(row)
                done += len(row)
                if progress is not None:
                    progress(done, total)
            slide.levels.append(_level_instance(slide, level, frames))
    finally:
        if pool is not None:
            pool.shutdown()
    return slide


def _tile_grid(spec: SlideSpec, level: int) -> tuple[int, int]:
    cols, rows = level_size(spec, level)
    return math.ceil(cols / TILE), math.ceil(rows / TILE)


def _row_frames(
    content: SlideContent, quality: int, scale: int, ty: int, across: int
) -> list[bytes]:
    return [
        _jpeg(render_tile(content, scale, tx * TILE, ty * TILE, TILE), quality)
        for tx in range(across)
    ]


_WORKER: tuple[SlideContent, int] | None = None


def _init_worker(content: SlideContent, quality: int) -> None:
    global _WORKER
    _WORKER = (content, quality)


def _encode_row(job: tuple[int, int, int]) -> list[bytes]:
    """In a worker process: one tile row of a level, JPEG-encoded."""
    assert _WORKER is not None
    content, quality = _WORKER
    scale, ty, across = job
    return _row_frames(content, quality, scale, ty, across)


def iter_tiles(slide: DemoSlide, level: int) -> Iterator[np.ndarray]:
    """The level's tiles as RGB arrays, in TILED_FULL order (what the JPEG frames hold)."""
    cols, rows = level_size(slide.spec, level)
    for ty in range(math.ceil(rows / TILE)):
        for tx in range(math.ceil(cols / TILE)):
            yield render_tile(slide.content, 2**level, tx * TILE, ty * TILE, TILE)


def _level_instance(slide: DemoSlide, level: int, frames: list[bytes]) -> FileDataset:
    spec = slide.spec
    cols, rows = level_size(spec, level)
    spacing = spec.pixel_spacing_mm * 2**level
    sop_uid = slide.uid("level", str(level))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = VL_WSI
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    when = spec.study_datetime
    _patient_study(ds, slide, when)

    ds.SOPClassUID = VL_WSI
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "SM"
    ds.SeriesInstanceUID = slide.series_uid
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Whole slide image"
    ds.InstanceNumber = level + 1
    ds.FrameOfReferenceUID = slide.frame_of_reference_uid
    ds.PositionReferenceIndicator = "SLIDE_CORNER"
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "Synthetic slide generator"
    ds.DeviceSerialNumber = "DEMO-0001"
    ds.SoftwareVersions = "1.0"
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S")

    original = level == 0
    ds.ImageType = (
        ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
        if original
        else ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"]
    )
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    ds.Rows = TILE
    ds.Columns = TILE
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = len(frames)
    ds.TotalPixelMatrixColumns = cols
    ds.TotalPixelMatrixRows = rows
    ds.TotalPixelMatrixFocalPlanes = 1
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.ImagedVolumeWidth = spec.width * spec.pixel_spacing_mm
    ds.ImagedVolumeHeight = spec.height * spec.pixel_spacing_mm
    ds.ImagedVolumeDepth = 0.004
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem = 20.0
    origin.YOffsetInSlideCoordinateSystem = 40.0
    ds.TotalPixelMatrixOriginSequence = [origin]
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    ds.VolumetricProperties = "VOLUME"
    ds.SpecimenLabelInImage = "NO"
    ds.BurnedInAnnotation = "NO"
    ds.FocusMethod = "AUTO"
    ds.ExtendedDepthOfField = "NO"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    raw = cols * rows * 3
    ds.LossyImageCompressionRatio = f"{raw / max(sum(len(f) for f in frames), 1):.2f}"[:16]
    ds.AcquisitionContextSequence = []

    _functional_groups(ds, spacing, original)
    _dimensions(ds, slide)
    _specimen(ds, slide)
    _optical_path(ds)
    ds.PixelData = encapsulate(frames, has_bot=False)
    ds["PixelData"].VR = "OB"
    return ds


def _patient_study(ds: Dataset, slide: DemoSlide, when: datetime) -> None:
    spec = slide.spec
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate = "19640312"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = slide.study_uid
    ds.StudyDate = when.strftime("%Y%m%d")
    ds.StudyTime = when.strftime("%H%M%S")
    ds.StudyID = "P1"
    ds.AccessionNumber = spec.accession
    ds.StudyDescription = spec.description
    ds.ReferringPhysicianName = "Referrer^Demo"


def _functional_groups(ds: Dataset, spacing: float, original: bool) -> None:
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [spacing, spacing]
    measures.SliceThickness = 0.004
    shared.PixelMeasuresSequence = [measures]
    frame_type = Dataset()
    frame_type.FrameType = list(ds.ImageType)
    shared.WholeSlideMicroscopyImageFrameTypeSequence = [frame_type]
    path = Dataset()
    path.OpticalPathIdentifier = "1"
    shared.OpticalPathIdentificationSequence = [path]
    ds.SharedFunctionalGroupsSequence = [shared]


def _dimensions(ds: Dataset, slide: DemoSlide) -> None:
    org_uid = slide.uid("dimension-organization")
    org = Dataset()
    org.DimensionOrganizationUID = org_uid
    ds.DimensionOrganizationSequence = [org]
    index = []
    for pointer in ("ColumnPositionInTotalImagePixelMatrix", "RowPositionInTotalImagePixelMatrix"):
        item = Dataset()
        item.DimensionOrganizationUID = org_uid
        item.DimensionIndexPointer = pointer
        item.FunctionalGroupPointer = "PlanePositionSlideSequence"
        index.append(item)
    ds.DimensionIndexSequence = index


def _specimen(ds: Dataset, slide: DemoSlide) -> None:
    ds.ContainerIdentifier = "DEMO-SLIDE-1"
    ds.IssuerOfTheContainerIdentifierSequence = []
    ds.ContainerTypeCodeSequence = [hd.sr.CodedConcept("433466003", "SCT", "Microscope slide")]
    ds.SpecimenDescriptionSequence = [
        hd.SpecimenDescription(specimen_id="DEMO-SPECIMEN-1", specimen_uid=slide.uid("specimen"))
    ]


def _optical_path(ds: Dataset) -> None:
    path = Dataset()
    path.OpticalPathIdentifier = "1"
    path.OpticalPathDescription = "Brightfield"
    path.IlluminationTypeCodeSequence = [
        hd.sr.CodedConcept("111744", "DCM", "Brightfield illumination")
    ]
    path.IlluminationColorCodeSequence = [hd.sr.CodedConcept("414298005", "SCT", "Full Spectrum")]
    path.ICCProfile = srgb_profile()
    path.ColorSpace = "SRGB"
    ds.OpticalPathSequence = [path]
    ds.NumberOfOpticalPaths = 1


def srgb_profile() -> bytes:
    """An sRGB ICC profile (Little CMS through Pillow), made once."""
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _SRGB


def _jpeg(tile: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    # subsampling=1 is 4:2:2, what YBR_FULL_422 says; Pillow writes JFIF YCbCr
    Image.fromarray(tile, "RGB").save(buf, "JPEG", quality=quality, subsampling=1)
    return buf.getvalue()
