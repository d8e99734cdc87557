"""Write AI findings as a DICOM Comprehensive 3D SR, TID 1500 (Measurement Report).

Plain highdicom TID 1500, the structure ``app.results.sr_reader`` reads back:
the observer is the algorithm as a DEVICE; every ``Finding`` becomes one
measurement group (TID 1410 planar ROI, TID 1411 volumetric ROI for an
ELLIPSOID, TID 1501 when it has no region) with Tracking Identifier and UID,
finding type and site, TID 4019 algorithm identification, Certainty of Finding
(DCM 111012, unit "1"), its measurements and the private urgency evaluation.
Used by the demo generator and by local inference alike; ``measurement_group``
and ``measurement_report`` are shared with the reader's edited SR
(``app.results.edited_sr``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import highdicom as hd
import numpy as np
from highdicom.sr.templates import DEFAULT_LANGUAGE
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dcm_codes

from app.domain import Algorithm, Code, Finding, Region
from app.results import codes

# Procedure Reported (TID 1500 row 4) from CID 100 "Quantitative Diagnostic Imaging
# Procedures" by modality. More specific LOINC codes (e.g. 24725-4 "CT Head") would
# read better, but pixelmed's validator treats CID 100 as closed and calls them errors;
# its (2019) list also lacks 43468-8 "XR unspecified body region", so radiographs get
# the generic SCT "Imaging procedure".
PROCEDURE_CODES: dict[str, Code] = {
    "CT": Code("25045-6", "LN", "CT unspecified body region"),
    "MR": Code("25056-3", "LN", "MRI unspecified body region"),
    "PT": Code("44136-0", "LN", "PET unspecified body region"),
    "NM": Code("49118-3", "LN", "NM unspecified body region"),
}
IMAGING_PROCEDURE = Code("363679005", "SCT", "Imaging procedure")


def concept(code: Code) -> hd.sr.CodedConcept:
    """Our plain ``Code`` as a highdicom coded concept."""
    return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)


def procedure_code(image: Dataset) -> Code:
    """The Procedure Reported (CID 100) for the modality of ``image``."""
    return PROCEDURE_CODES.get(str(image.get("Modality", "")).upper(), IMAGING_PROCEDURE)


# Namespace of the name-based UUIDs behind our deterministic UIDs (a fixed random UUID).
UID_NAMESPACE = uuid.UUID("5b0f8e4e-4f57-4b8e-9c61-2a1d7e3c9a10")


def name_based_uid(name: str) -> str:
    """A DICOM UID that depends only on ``name``: 2.25 + a version-5 (SHA-1) UUID (PS3.5 B.2)."""
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, name).int}"


def device_uid(algorithm: Algorithm) -> str:
    """A stable Device Observer UID for one algorithm version (same input, same UID)."""
    return name_based_uid(
        f"ai-device|{algorithm.manufacturer}|{algorithm.name}|{algorithm.version}"
    )


def device_observer(algorithm: Algorithm) -> hd.sr.ObserverContext:
    """The algorithm as the DEVICE observer of a report (TID 1004)."""
    return hd.sr.ObserverContext(
        observer_type=dcm_codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid(algorithm),
            name=algorithm.name,
            manufacturer_name=algorithm.manufacturer or None,
            model_name=algorithm.name,
        ),
    )


def build_ai_result_sr(
    evidence: Sequence[Dataset],
    algorithm: Algorithm,
    findings: Sequence[Finding],
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 900,
    instance_number: int = 1,
    content_datetime: datetime | None = None,
    institution: str | None = None,
) -> hd.sr.Comprehensive3DSR:
    """A Comprehensive 3D SR (TID 1500) holding ``findings`` about the ``evidence`` images.

    Only the first ``Region`` of each finding is written (one ROI per measurement
    group); the rest are dropped. A 2D POLYGON is written as a closed POLYLINE
    (SCOORD has no POLYGON graphic type; SCOORD3D has). No findings gives a valid report with an empty
    Imaging Measurements container: "the algorithm ran and found nothing".
    Raises ``ValueError`` naming the argument on bad input.
    """
    if not evidence:
        raise ValueError("evidence must hold at least one image, got none")
    when = content_datetime or datetime.now().replace(microsecond=0)
    context = hd.sr.ObservationContext(observer_device_context=device_observer(algorithm))
    procedure = concept(procedure_code(evidence[0]))
    by_uid = {str(ds.SOPInstanceUID): ds for ds in evidence}
    groups = [measurement_group(f, by_uid, evidence[0]) for f in findings]
    content = measurement_report(context, procedure, groups)
    sr = hd.sr.Comprehensive3DSR(
        evidence=list(evidence),
        content=content,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=algorithm.manufacturer or None,
        is_complete=True,
        institution_name=institution,
        series_description=f"AI results: {algorithm.name} {algorithm.version}"[:64],
        manufacturer_model_name=algorithm.name,
        software_versions=algorithm.version,
        content_date=when.date(),
        content_time=when.time(),
        series_date=when.date(),
        series_time=when.time(),
    )
    if evidence[0].get("StudyDescription"):  # a study-level attribute the SR shares
        sr.StudyDescription = evidence[0].StudyDescription
    return sr


def measurement_report(
    context: hd.sr.ObservationContext,
    procedure: hd.sr.CodedConcept,
    groups: Sequence[GroupType],
) -> Dataset:
    """The TID 1500 root content item: title, observer ``context``, Procedure Reported and
    one measurement group per finding (an empty Imaging Measurements container for none)."""
    if not groups:
        return _empty_report(context, procedure)
    return hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=procedure,
        imaging_measurements=list(groups),
        title=concept(codes.IMAGING_MEASUREMENT_REPORT),
    )[0]


def _empty_report(context: hd.sr.ObservationContext, procedure: hd.sr.CodedConcept) -> Dataset:
    """TID 1500 root with an empty Imaging Measurements container.

    highdicom's ``MeasurementReport`` insists on at least one group, but TID 1500
    makes every group under Imaging Measurements optional; this mirrors its
    root (language, observation context, procedure) item for item.
    """
    root = hd.sr.ContainerContentItem(
        name=concept(codes.IMAGING_MEASUREMENT_REPORT), template_id="1500"
    )
    root.ContentSequence = hd.sr.ContentSequence()
    root.ContentSequence.extend(hd.sr.LanguageOfContentItemAndDescendants(DEFAULT_LANGUAGE))
    root.ContentSequence.extend(context)
    root.ContentSequence.append(
        hd.sr.CodeContentItem(
            name=dcm_codes.DCM.ProcedureReported,
            value=procedure,
            relationship_type=hd.sr.RelationshipTypeValues.HAS_CONCEPT_MOD,
        )
    )
    root.ContentSequence.append(
        hd.sr.ContainerContentItem(
            name=concept(codes.IMAGING_MEASUREMENTS),
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
    )
    return root


GroupType = (
    hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
    | hd.sr.MeasurementsAndQualitativeEvaluations
)


def measurement_group(finding: Finding, by_uid: dict[str, Dataset], first: Dataset) -> GroupType:
    """One measurement group (TID 1410, 1411 or 1501) for one finding.

    ``by_uid`` maps SOP Instance UIDs of the evidence to datasets carrying at least
    their SOP Class UID (for 2D regions); ``first`` gives the Source Series of a
    TID 1411 volume. A finding whose algorithm has no name (one a reader added) gets
    no TID 4019 algorithm identification.
    """
    algorithm_id = (
        hd.sr.AlgorithmIdentification(
            name=finding.algorithm.name, version=finding.algorithm.version or "unknown"
        )
        if finding.algorithm.name
        else None
    )
    measurements = []
    if finding.certainty is not None:
        if not 0.0 <= finding.certainty <= 1.0:
            raise ValueError(
                f"finding {finding.tracking_uid}: certainty must be within 0..1, "
                f"got {finding.certainty!r}"
            )
        measurements.append(
            hd.sr.Measurement(
                name=concept(codes.CERTAINTY_OF_FINDING),
                value=float(finding.certainty),
                unit=concept(codes.UNITY),
                algorithm_id=algorithm_id,
            )
        )
    for m in finding.measurements:
        measurements.append(
            hd.sr.Measurement(
                name=concept(m.concept),
                value=float(m.value),
                unit=concept(m.unit),
                algorithm_id=algorithm_id,
            )
        )
    common: dict[str, Any] = {
        "tracking_identifier": hd.sr.TrackingIdentifier(
            uid=finding.tracking_uid, identifier=finding.tracking_id or finding.finding.meaning
        ),
        "finding_type": concept(finding.finding),
        "finding_sites": [hd.sr.FindingSite(concept(finding.site))] if finding.site else None,
        "algorithm_id": algorithm_id,
        "measurements": measurements,
        "qualitative_evaluations": [
            hd.sr.QualitativeEvaluation(
                concept(codes.URGENCY), concept(codes.URGENCY_VALUES[finding.urgency])
            )
        ],
    }
    if not finding.regions:
        return hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    region = finding.regions[0]
    if region.is_3d and region.graphic_type.upper() == "ELLIPSOID":
        surface = hd.sr.VolumeSurface(
            graphic_type=hd.sr.GraphicTypeValues3D.ELLIPSOID,
            graphic_data=np.asarray(region.coordinates, dtype=float),
            frame_of_reference_uid=str(region.frame_of_reference_uid),
            source_series=hd.sr.SourceSeriesForSegmentation(str(first.SeriesInstanceUID)),
        )
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            referenced_volume_surface=surface, **common
        )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        referenced_region=_image_region(finding, region, by_uid), **common
    )


def _image_region(
    finding: Finding, region: Region, by_uid: dict[str, Dataset]
) -> hd.sr.ImageRegion | hd.sr.ImageRegion3D:
    graphic_type = region.graphic_type.upper()
    points = [tuple(float(v) for v in p) for p in region.coordinates]
    if graphic_type == "POLYGON" and len(points) > 2 and points[0] != points[-1]:
        points.append(points[0])  # DICOM: a polygon's first and last vertex are the same
    if graphic_type == "POLYGON" and not region.is_3d:
        graphic_type = "POLYLINE"  # SCOORD has no POLYGON: a closed POLYLINE is an area
    data = np.asarray(points, dtype=float)
    if region.is_3d:
        return hd.sr.ImageRegion3D(
            graphic_type=graphic_type,
            graphic_data=data,
            frame_of_reference_uid=str(region.frame_of_reference_uid),
        )
    sop_uid = region.referenced_sop_uid
    if not sop_uid:
        raise ValueError(
            f"finding {finding.tracking_uid}: a 2D region needs referenced_sop_uid, got none"
        )
    sop_class = region.referenced_sop_class_uid
    if not sop_class and sop_uid in by_uid:
        sop_class = str(by_uid[sop_uid].SOPClassUID)
    if not sop_class:
        raise ValueError(
            f"finding {finding.tracking_uid}: referenced image {sop_uid} is not in the "
            "evidence and the region names no SOP class"
        )
    frames = [region.referenced_frame] if region.referenced_frame else None
    return hd.sr.ImageRegion(
        graphic_type=graphic_type,
        graphic_data=data,
        source_image=hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=sop_class,
            referenced_sop_instance_uid=sop_uid,
            referenced_frame_numbers=frames,
        ),
    )
