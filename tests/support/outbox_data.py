"""Real SRs (and their source images) to put through the outbox in tests."""

from __future__ import annotations

import copy

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.domain import Algorithm, Finding, Region, Urgency
from app.results import codes
from app.results.sr_writer import build_ai_result_sr

ALGO = Algorithm("ICH Detect", "2.1.0", "Demo AI Labs")


def image(tag: str) -> Dataset:
    img = copy.deepcopy(pydicom.examples.ct)
    img.StudyInstanceUID = generate_uid(entropy_srcs=[f"outbox-study-{tag}"])
    img.SeriesInstanceUID = generate_uid(entropy_srcs=[f"outbox-series-{tag}"])
    img.SOPInstanceUID = generate_uid(entropy_srcs=[f"outbox-sop-{tag}"])
    img.file_meta.MediaStorageSOPInstanceUID = img.SOPInstanceUID
    img.PatientID = f"OUTBOX{tag}"
    img.PatientName = f"OUTBOX^{tag}"
    return img


def sr(tag: str, img: Dataset | None = None) -> Dataset:
    """A TID 1500 SR with one finding on ``img`` (a fresh image when None)."""
    img = img if img is not None else image(tag)
    finding = Finding(
        tracking_uid=generate_uid(entropy_srcs=[f"outbox-track-{tag}"]),
        finding=codes.INTRACRANIAL_HEMORRHAGE,
        site=codes.BRAIN,
        certainty=0.9,
        urgency=Urgency.URGENT,
        algorithm=ALGO,
        regions=(
            Region(
                "POLYLINE",
                ((10.0, 10.0), (30.0, 10.0), (30.0, 30.0), (10.0, 10.0)),
                referenced_sop_uid=img.SOPInstanceUID,
                referenced_sop_class_uid=img.SOPClassUID,
            ),
        ),
        measurements=(),
        source_sop_uid="",
        tracking_id=f"finding {tag}",
    )
    return build_ai_result_sr(
        [img],
        ALGO,
        [finding],
        series_instance_uid=generate_uid(entropy_srcs=[f"outbox-sr-series-{tag}"]),
        sop_instance_uid=generate_uid(entropy_srcs=[f"outbox-sr-{tag}"]),
    )
