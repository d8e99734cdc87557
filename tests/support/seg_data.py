"""A small real CT series and SEGs on it, written by highdicom (tests of SEG display).

The series is axial, ``size`` x ``size`` pixels of 1 mm, slices 2 mm apart starting at
z = 0, image origin (0, 0): pixel (column i, row j) of slice k is at (i, j, 2k) mm.
"""

from __future__ import annotations

from datetime import date, datetime

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as sr_codes

from app.demo import images
from app.demo.phantoms import Volume
from app.results.sr_writer import name_based_uid

SPACING = 1.0
THICKNESS = 2.0


def uid(*parts: str) -> str:
    return name_based_uid("seg-test-" + "-".join(parts))


def ct_series(tag: str, *, slices: int = 6, size: int = 32) -> list[Dataset]:
    """A CT series whose pixels are all 40 HU (stored 1064)."""
    pixels = np.full((slices, size, size), 1064, dtype=np.int16)
    volume = Volume(
        pixels, (0.0, 0.0), tuple(THICKNESS * k for k in range(slices)), SPACING, THICKNESS, None
    )
    header = images.StudyHeader(
        patient_name="SEG^TEST",
        patient_id=f"SEG{tag}",
        birth_date=date(1970, 1, 1),
        sex="O",
        study_uid=uid(tag, "study"),
        accession=f"S{tag}"[:16],
        study_id="1",
        description="SEG test",
        study_datetime=datetime(2024, 1, 2, 3, 4),
        priority="ROUTINE",
        referring="",
        body_part="HEAD",
    )
    series = images.SeriesInfo(
        series_uid=uid(tag, "series"),
        number=1,
        description="CT for SEG",
        sop_uids=tuple(uid(tag, "image", str(k)) for k in range(slices)),
        frame_of_reference_uid=uid(tag, "for"),
    )
    return list(images.ct_images(volume, header, series))


def segment(number: int, label: str, colour: str) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=sr_codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=sr_codes.SCT.Hemorrhage if number == 1 else sr_codes.SCT.Edema,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="SegTest", family=sr_codes.DCM.ArtificialIntelligence, version="1.0"
        ),
        display_color=hd.color.CIELabColor.from_string(colour),
    )


def highdicom_seg(
    source: list[Dataset],
    masks: np.ndarray,
    tag: str,
    *,
    fractional: bool = False,
    colours: tuple[str, ...] = ("red", "lime"),
) -> hd.seg.Segmentation:
    """A SEG of ``source`` with masks (slices, rows, cols, segments): bool, or 0..1 floats."""
    n = masks.shape[-1]
    return hd.seg.Segmentation(
        source_images=source,
        pixel_array=masks.astype(np.float32 if fractional else np.uint8),
        segmentation_type="FRACTIONAL" if fractional else "BINARY",
        segment_descriptions=[
            segment(k + 1, ("Bleed", "Edema", "Other")[k], colours[k]) for k in range(n)
        ],
        series_instance_uid=uid(tag, "seg-series"),
        series_number=50,
        sop_instance_uid=uid(tag, "seg"),
        instance_number=1,
        manufacturer="Test",
        manufacturer_model_name="SegTest",
        software_versions="1.0",
        device_serial_number="1",
    )
