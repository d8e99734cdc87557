"""Small real DICOM objects for tests: a CT image per study, and TID 1500 AI SRs on it."""

from __future__ import annotations

import copy

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.domain import Algorithm, Code, Finding, Measurement, Region, Urgency
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


def review_study(tag: str, prefix: str = "review") -> tuple[list[Dataset], Dataset]:
    """A two-slice CT series and an AI SR with three findings on its first slice, for
    review tests: a critical hemorrhage (with a volume), an urgent mass, a routine
    nodule (with a diameter). The SR lists only slice 1 as evidence, so a region drawn
    on slice 2 is on an image the AI never referenced."""
    first = image(tag, prefix)
    second = copy.deepcopy(first)
    second.SOPInstanceUID = generate_uid(entropy_srcs=[f"{prefix}-sop2-{tag}"])
    second.file_meta.MediaStorageSOPInstanceUID = second.SOPInstanceUID
    second.InstanceNumber = int(first.get("InstanceNumber", 1) or 1) + 1
    position = [float(v) for v in first.ImagePositionPatient]
    second.ImagePositionPatient = [position[0], position[1], position[2] + 5.0]

    def region(x: float, y: float, size: float) -> Region:
        corners = ((x, y), (x + size, y), (x + size, y + size), (x, y + size), (x, y))
        return Region(
            "POLYLINE",
            corners,
            referenced_sop_uid=first.SOPInstanceUID,
            referenced_sop_class_uid=first.SOPClassUID,
        )

    def finding(n: int, code: Code, urgency: Urgency, certainty: float,
                where: Region, measurements: tuple[Measurement, ...] = ()) -> Finding:
        return Finding(
            tracking_uid=generate_uid(entropy_srcs=[f"{prefix}-track-{tag}-{n}"]),
            finding=code,
            site=codes.BRAIN,
            certainty=certainty,
            urgency=urgency,
            algorithm=ALGO,
            regions=(where,),
            measurements=measurements,
            source_sop_uid="",
            tracking_id=f"finding {n}",
        )

    findings = [
        finding(1, codes.INTRACRANIAL_HEMORRHAGE, Urgency.CRITICAL, 0.93, region(20, 20, 30),
                (Measurement(codes.VOLUME, 12.5, codes.MILLILITER),)),
        finding(2, codes.MASS, Urgency.URGENT, 0.61, region(70, 30, 20)),
        finding(3, codes.NODULE, Urgency.ROUTINE, 0.55, region(40, 80, 12),
                (Measurement(codes.DIAMETER, 6.0, codes.MILLIMETER),)),
    ]
    ai_sr = build_ai_result_sr(
        [first],
        ALGO,
        findings,
        series_instance_uid=generate_uid(entropy_srcs=[f"{prefix}-sr-series-{tag}"]),
        sop_instance_uid=generate_uid(entropy_srcs=[f"{prefix}-sr-{tag}"]),
    )
    return [first, second], ai_sr
