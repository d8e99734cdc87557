"""The demo head CT's AI segmentation: a DICOM SEG of the bleed, written by highdicom.

The mask is the phantom's hyperdense blood (>= 60 HU) inside the lesion's ellipsoid
(a little enlarged), so it hugs what the reader sees; it depends only on the seeded
pixels, so the SEG is the same on every run with the same seed.
"""

from __future__ import annotations

from datetime import datetime

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as sr_codes
from pydicom.valuerep import DA, TM

from app.demo.phantoms import Lesion, Volume
from app.domain import Algorithm

SEG_SERIES_NUMBER = 901
BLEED_COLOUR = "red"


def lesion_mask(volume: Volume, lesion: Lesion) -> np.ndarray:
    """(slices, rows, columns) bool: blood-density pixels inside the enlarged lesion."""
    rows, cols = volume.pixels.shape[1:]
    x = volume.origin_xy[0] + np.arange(cols) * volume.pixel_spacing
    y = volume.origin_xy[1] + np.arange(rows) * volume.pixel_spacing
    xx, yy = np.meshgrid(x, y)
    cx, cy, cz = lesion.center
    a, b, c = (1.25 * s for s in lesion.semi_axes)
    out = np.zeros(volume.pixels.shape, dtype=bool)
    for k, z in enumerate(volume.z_positions):
        inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 + ((z - cz) / c) ** 2 < 1.0
        out[k] = inside & (volume.pixels[k].astype(np.float32) - 1024.0 >= 60.0)
    return out


def bleed_seg(
    images: list[Dataset],
    volume: Volume,
    lesion: Lesion,
    algorithm: Algorithm,
    *,
    series_uid: str,
    sop_uid: str,
    tracking_uid: str,
    content_datetime: datetime,
) -> hd.seg.Segmentation:
    """A binary SEG with one segment, 'Hemorrhage', on ``images`` (the CT series)."""
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="Hemorrhage",
        segmented_property_category=sr_codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=sr_codes.SCT.Hemorrhage,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=algorithm.name,
            family=sr_codes.DCM.ArtificialIntelligence,
            version=algorithm.version,
        ),
        tracking_uid=tracking_uid,
        tracking_id="ICH 1 mask",
        display_color=hd.color.CIELabColor.from_string(BLEED_COLOUR),
    )
    seg = hd.seg.Segmentation(
        source_images=images,
        pixel_array=lesion_mask(volume, lesion).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=series_uid,
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=algorithm.manufacturer or "Demo",
        manufacturer_model_name=algorithm.name,
        software_versions=algorithm.version,
        device_serial_number="DEMO-1",
        content_label="ICH_MASK",
        content_description="AI hemorrhage segmentation",
    )
    seg.SeriesDescription = f"{algorithm.name} segmentation"
    # the same instance on every run (highdicom stamps the time of writing)
    seg.ContentDate = seg.SeriesDate = DA(content_datetime.date())
    seg.ContentTime = seg.SeriesTime = TM(content_datetime.time().replace(microsecond=0))
    return seg
