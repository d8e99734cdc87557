"""Write an AI result's masks as a DICOM Segmentation (highdicom), one segment per finding.

Each segment carries the finding's Tracking UID and ID (so a viewer can pair it with
the SR's measurement group), the finding type as Segmented Property Type, the site as
anatomic region, and the algorithm identification (name, version, family "Artificial
Intelligence"). BINARY, empty frames omitted. Used by local inference
(``inference.outputs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dcm_codes
from pydicom.valuerep import DA, TM

from app.domain import Algorithm, Finding
from app.results.sr_writer import concept

# CID 7150 Segmentation Property Categories.
MORPHOLOGICALLY_ABNORMAL = hd.sr.CodedConcept(
    "49755003", "SCT", "Morphologically abnormal structure"
)


def build_ai_result_seg(
    source_images: Sequence[Dataset],
    masks: Sequence[np.ndarray],
    findings: Sequence[Finding],
    algorithm: Algorithm,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 901,
    instance_number: int = 1,
    content_datetime: datetime | None = None,
) -> hd.seg.Segmentation:
    """A SEG of ``masks`` (each (slices, rows, columns) bool, one per finding, slices in
    the order of ``source_images``). Raises ``ValueError`` naming the argument."""
    if not source_images:
        raise ValueError("source_images must hold at least one image, got none")
    if len(masks) != len(findings) or not masks:
        raise ValueError(
            f"masks and findings must pair up one to one, got {len(masks)} and {len(findings)}"
        )
    shape = (len(source_images), int(source_images[0].Rows), int(source_images[0].Columns))
    for n, m in enumerate(masks):
        if m.shape != shape:
            raise ValueError(f"masks[{n}] has shape {m.shape}, the images are {shape}")
    family = dcm_codes.cid7162.ArtificialIntelligence
    algorithm_id = hd.AlgorithmIdentificationSequence(
        name=algorithm.name, family=family, version=algorithm.version or "unknown"
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=(f.tracking_id or f.finding.meaning)[:64],
            segmented_property_category=MORPHOLOGICALLY_ABNORMAL,
            segmented_property_type=concept(f.finding),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm_id,
            tracking_uid=f.tracking_uid,
            tracking_id=(f.tracking_id or f.finding.meaning)[:64],
            anatomic_regions=[concept(f.site)] if f.site else None,
        )
        for n, f in enumerate(findings, start=1)
    ]
    labels = np.zeros(shape, dtype=np.uint8)
    for n, m in enumerate(masks, start=1):
        labels[m & (labels == 0)] = n
    when = content_datetime or datetime.now().replace(microsecond=0)
    seg = hd.seg.Segmentation(
        source_images=list(source_images),
        pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=algorithm.manufacturer or "unknown",
        manufacturer_model_name=algorithm.name,
        software_versions=algorithm.version or "unknown",
        device_serial_number="none",
        series_description=f"AI segmentation: {algorithm.name} {algorithm.version}"[:64],
        content_label="AI_RESULT",
        content_description=f"{algorithm.name} {algorithm.version}"[:64],
    )
    seg.ContentDate = DA(when.date())
    seg.ContentTime = TM(when.time())
    return seg
