"""Write the reader's edited AI result: a new TID 1500 SR that supersedes the AI's.

It holds the findings the reader kept (``Assessment.kept_findings()``: confirmed
and modified ones with the AI's Tracking UIDs, added ones with their own), in the
same measurement groups as the AI SR (``sr_writer.measurement_group``); the
reader is the person observer, the assessed algorithm stays as device observer;
a Predecessor Documents Sequence points to the AI SR and the SOP Instance UID is
new. Added findings carry no TID 4019 algorithm identification.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset

from app.domain import Assessment, Code, Finding
from app.results import codes
from app.results.review_context import (
    SOFTWARE_NAME,
    EvidenceRef,
    check_assessed,
    evidence_refs,
    evidence_stub,
    finish,
    person_observer,
)
from app.results.sr_writer import (
    IMAGING_PROCEDURE,
    concept,
    device_observer,
    measurement_group,
    measurement_report,
)


def build_edited_sr(
    assessment: Assessment,
    ai_sr: Dataset,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 902,
    instance_number: int = 1,
    extra_evidence: Sequence[Dataset] = (),
) -> hd.sr.Comprehensive3DSR:
    """The edited TID 1500 SR: ``assessment``'s kept findings, superseding ``ai_sr``.

    Evidence, patient and study come from ``ai_sr``. A region on an image that the
    AI SR does not list as evidence needs that image's header (its UIDs) in
    ``extra_evidence``. ``sop_instance_uid`` must differ from the AI SR's. Raises
    ``ValueError`` naming the argument on input that does not fit.
    """
    check_assessed(assessment, ai_sr)
    if sop_instance_uid == str(ai_sr.SOPInstanceUID):
        raise ValueError(f"sop_instance_uid must be new, got the AI SR's own {sop_instance_uid}")
    findings = assessment.kept_findings()
    evidence = _evidence(ai_sr, extra_evidence)
    by_uid = {str(ds.SOPInstanceUID): ds for ds in evidence}
    _check_regions(findings, by_uid)
    context = hd.sr.ObservationContext(
        observer_person_context=person_observer(assessment.reader),
        observer_device_context=_device(assessment),
    )
    groups = [measurement_group(f, by_uid, evidence[0]) for f in findings]
    content = measurement_report(context, concept(_procedure(ai_sr)), groups)
    when = assessment.completed_at
    algorithm = assessment.assessed.algorithm
    label = f"{algorithm.name} {algorithm.version}".strip() if algorithm else ""
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=content,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        # No model name / software version: the reader would take them for the
        # algorithm's (the algorithm is named by the device observer and TID 4019).
        manufacturer=SOFTWARE_NAME,
        is_complete=True,
        institution_name=assessment.reader.organization or None,
        series_description=f"AI results reviewed: {label}".strip()[:64],
        previous_versions=[ai_sr],
        content_date=when.date(),
        content_time=when.time(),
        series_date=when.date(),
        series_time=when.time(),
    )
    finish(sr, ai_sr, when)
    return sr


def _evidence(ai_sr: Dataset, extra: Sequence[Dataset]) -> list[Dataset]:
    """Stand-ins for the AI SR's evidence images plus ``extra`` ones, first image first."""
    stubs = [evidence_stub(ref, ai_sr) for ref in evidence_refs(ai_sr)]
    for index, ds in enumerate(extra):
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
            if not ds.get(keyword):
                raise ValueError(f"extra_evidence[{index}] lacks {keyword}")
        ref = EvidenceRef(
            str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID),
            str(ds.SOPInstanceUID),
            str(ds.SOPClassUID),
        )
        stubs.append(evidence_stub(ref, ai_sr))
    if not stubs:
        raise ValueError("ai_sr lists no evidence and extra_evidence is empty")
    return stubs


def _check_regions(findings: Sequence[Finding], by_uid: dict[str, Dataset]) -> None:
    for finding in findings:
        for region in finding.regions[:1]:  # the writer keeps one region per finding
            uid = region.referenced_sop_uid
            if region.is_3d or not uid or uid in by_uid:
                continue
            raise ValueError(
                f"finding {finding.tracking_uid}: image {uid} is not in the AI SR's "
                "evidence; pass its header in extra_evidence"
            )


def _device(assessment: Assessment) -> hd.sr.ObserverContext | None:
    algorithm = assessment.assessed.algorithm
    if algorithm is None or not algorithm.name:
        return None
    return device_observer(algorithm)


def _procedure(ai_sr: Dataset) -> Code:
    """The AI SR's own Procedure Reported, else the generic imaging procedure."""
    for item in ai_sr.get("ContentSequence") or []:
        name = (item.get("ConceptNameCodeSequence") or [None])[0]
        value = (item.get("ConceptCodeSequence") or [None])[0]
        if name is None or value is None:
            continue
        if (name.get("CodeValue"), name.get("CodingSchemeDesignator")) == (
            codes.PROCEDURE_REPORTED.value,
            codes.PROCEDURE_REPORTED.scheme,
        ):
            return Code(
                str(value.get("CodeValue", "")),
                str(value.get("CodingSchemeDesignator", "")),
                str(value.get("CodeMeaning", "")),
            )
    return IMAGING_PROCEDURE
