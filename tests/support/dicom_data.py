"""Small real DICOM objects for tests: a CT image per study, and TID 1500 AI SRs on it."""

from __future__ import annotations

import copy

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.domain import Algorithm, Finding, Measurement, Region, Urgency
from app.results import codes
from app.results.sr_writer import build_ai_result_sr

ALGO = Algorithm("ICH Detect", "2.1.0", "Demo AI Labs")


def image(tag: str, prefix: str = "outbox") -> Dataset:
    """pydicom's example CT (128x128) as a study of its own, with UIDs derived from ``tag``."""
    img = copy.deepcopy(pydicom.examples.ct)
    img.StudyInstanceUID = generate_uid(entropy_srcs=[f"{prefix}-study-{tag}"])
    img.SeriesInstanceUID = generate_uid(entropy_srcs=[f"{prefix}-series-{tag}"])
    img.SOPInstanceUID = generate_uid(entropy_srcs=[f"{prefix}-sop-{tag}"])
    img.file_meta.MediaStorageSOPInstanceUID = img.SOPInstanceUID
    img.PatientID = f"{prefix.upper()}{tag}"
    img.PatientName = f"{prefix.upper()}^{tag}"
    return img


def sr(
    tag: str,
    img: Dataset | None = None,
    *,
    prefix: str = "outbox",
    urgency: Urgency = Urgency.URGENT,
    certainty: float = 0.9,
    measurements: tuple[Measurement, ...] = (),
) -> Dataset:
    """A TID 1500 SR with one finding on ``img`` (a fresh image when None)."""
    img = img if img is not None else image(tag, prefix)
    finding = Finding(
        tracking_uid=generate_uid(entropy_srcs=[f"{prefix}-track-{tag}"]),
        finding=codes.INTRACRANIAL_HEMORRHAGE,
        site=codes.BRAIN,
        certainty=certainty,
        urgency=urgency,
        algorithm=ALGO,
        regions=(
            Region(
                "POLYLINE",
                ((10.0, 10.0), (30.0, 10.0), (30.0, 30.0), (10.0, 10.0)),
                referenced_sop_uid=img.SOPInstanceUID,
                referenced_sop_class_uid=img.SOPClassUID,
            ),
        ),
        measurements=measurements,
        source_sop_uid="",
        tracking_id=f"finding {tag}",
    )
    return build_ai_result_sr(
        [img],
        ALGO,
        [finding],
        series_instance_uid=generate_uid(entropy_srcs=[f"{prefix}-sr-series-{tag}"]),
        sop_instance_uid=generate_uid(entropy_srcs=[f"{prefix}-sr-{tag}"]),
    )
