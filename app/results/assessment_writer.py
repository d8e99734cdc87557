"""Write the reader's assessment of an AI result as a DICOM Comprehensive 3D SR.

One SR per assessed AI SR, in the spirit of IHE AI Result Assessment (AIRA):
who assessed (the reader as a TID 1002 *person* observer) and when, which AI
result was assessed (a COMPOSITE reference to its SOP instance plus its Study
and Series Instance UIDs, and the same instance in the evidence), and per
finding — keyed by its Tracking UID — the verdict (confirmed / rejected /
modified / added), the coded reason for a rejection, what a modification
changed, and the reader's comment. The exact AIRA template was not available
to us; docs/conformance.md gives the structure, every code, and what was followed.

The root concept is a private title (99AIRC ``AI_ASSESSMENT``) and not TID 1500
on purpose: a display reading every TID 1500 SR of the study as measurements
must not show rejected findings as if the reader had reported them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import highdicom as hd
from highdicom.sr.templates import DEFAULT_LANGUAGE
from pydicom.dataset import Dataset

from app.domain import Assessment, Code, Decision, Finding, Verdict
from app.results import codes
from app.results.review_context import (
    SOFTWARE_NAME,
    SOFTWARE_VERSION,
    EvidenceRef,
    check_assessed,
    dicom_datetime,
    evidence_stub,
    finish,
    original_finding,
    person_observer,
)
from app.results.sr_writer import concept

_REL = hd.sr.RelationshipTypeValues


def build_assessment_sr(
    assessment: Assessment,
    ai_sr: Dataset,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 901,
    instance_number: int = 1,
    edited_sr: Dataset | None = None,
) -> hd.sr.Comprehensive3DSR:
    """The assessment SR for ``assessment`` of the AI SR ``ai_sr``.

    Patient, study and evidence come from ``ai_sr``; ``edited_sr``, when given, is
    the edited TID 1500 SR the reader's changes went into, referenced as well.
    Content date/time is ``assessment.completed_at``. Raises ``ValueError`` naming
    the argument when ``ai_sr`` is not the assessed result or a decision does not
    fit it (undecided, unknown Tracking UID, an added finding reusing an AI UID).
    """
    check_assessed(assessment, ai_sr)
    when = assessment.completed_at
    root = hd.sr.ContainerContentItem(name=concept(codes.AI_RESULT_ASSESSMENT))
    root.ContentSequence = hd.sr.ContentSequence()
    root.ContentSequence.extend(hd.sr.LanguageOfContentItemAndDescendants(DEFAULT_LANGUAGE))
    root.ContentSequence.extend(
        hd.sr.ObservationContext(observer_person_context=person_observer(assessment.reader))
    )
    root.ContentSequence.append(_assessed_result(assessment, ai_sr))
    evidence = [_sr_stub(ai_sr)]
    if edited_sr is not None:
        root.ContentSequence.append(
            hd.sr.CompositeContentItem(
                name=concept(codes.EDITED_RESULT),
                referenced_sop_class_uid=str(edited_sr.SOPClassUID),
                referenced_sop_instance_uid=str(edited_sr.SOPInstanceUID),
                relationship_type=_REL.CONTAINS,
            )
        )
        evidence.append(_sr_stub(edited_sr, header=ai_sr))
    for decision in assessment.decisions:
        root.ContentSequence.append(_decision_item(assessment, decision, when))
    reader = assessment.reader
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=root,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=SOFTWARE_NAME,
        is_complete=True,
        institution_name=reader.organization or None,
        series_description="AI result assessment",
        manufacturer_model_name=SOFTWARE_NAME,
        software_versions=SOFTWARE_VERSION,
        content_date=when.date(),
        content_time=when.time(),
        series_date=when.date(),
        series_time=when.time(),
    )
    finish(sr, ai_sr, when)
    return sr


def _sr_stub(sr: Dataset, header: Dataset | None = None) -> Dataset:
    ref = EvidenceRef(
        str(sr.StudyInstanceUID),
        str(sr.SeriesInstanceUID),
        str(sr.SOPInstanceUID),
        str(sr.SOPClassUID),
    )
    return evidence_stub(ref, header if header is not None else sr)


def _assessed_result(assessment: Assessment, ai_sr: Dataset) -> hd.sr.ContainerContentItem:
    """Which AI result was assessed: the SR instance, its study and series, its algorithm."""
    item = hd.sr.ContainerContentItem(
        name=concept(codes.ASSESSED_RESULT), relationship_type=_REL.CONTAINS
    )
    item.ContentSequence = hd.sr.ContentSequence()
    algorithm = assessment.assessed.algorithm
    if algorithm is not None and algorithm.name:
        item.ContentSequence.extend(
            hd.sr.AlgorithmIdentification(
                name=algorithm.name, version=algorithm.version or "unknown"
            )
        )
    item.ContentSequence.extend(
        [
            hd.sr.CompositeContentItem(
                name=concept(codes.SOURCE_REPORT),
                referenced_sop_class_uid=str(ai_sr.SOPClassUID),
                referenced_sop_instance_uid=str(ai_sr.SOPInstanceUID),
                relationship_type=_REL.CONTAINS,
            ),
            hd.sr.UIDRefContentItem(
                name=concept(codes.STUDY_INSTANCE_UID),
                value=str(ai_sr.StudyInstanceUID),
                relationship_type=_REL.CONTAINS,
            ),
            hd.sr.UIDRefContentItem(
                name=concept(codes.SERIES_INSTANCE_UID),
                value=str(ai_sr.SeriesInstanceUID),
                relationship_type=_REL.CONTAINS,
            ),
        ]
    )
    return item


def _decision_item(
    assessment: Assessment, decision: Decision, completed: datetime
) -> hd.sr.ContainerContentItem:
    """One finding's assessment, keyed by its Tracking UID (as TID 1501 keys a group)."""
    item = hd.sr.ContainerContentItem(
        name=concept(codes.FINDING_ASSESSMENT), relationship_type=_REL.CONTAINS
    )
    if decision.decided_at is not None and decision.decided_at != completed:
        # Observation DateTime (0040,A032): when the reader decided, if not at submission.
        item.add_new(0x0040A032, "DT", dicom_datetime(decision.decided_at))
    finding = decision.finding
    children: list[hd.sr.ContentItem] = [
        hd.sr.UIDRefContentItem(
            name=concept(codes.TRACKING_UID),
            value=decision.tracking_uid,
            relationship_type=_REL.HAS_OBS_CONTEXT,
        )
    ]
    if finding.tracking_id:
        children.append(
            hd.sr.TextContentItem(
                name=concept(codes.TRACKING_IDENTIFIER),
                value=finding.tracking_id,
                relationship_type=_REL.HAS_OBS_CONTEXT,
            )
        )
    children.append(_code_item(codes.FINDING, finding.finding))
    children.append(_code_item(codes.VERDICT, codes.VERDICT_VALUES[decision.verdict.value]))
    if decision.reason is not None:
        children.append(_code_item(codes.REJECT_REASON, decision.reason))
    if decision.verdict is Verdict.MODIFIED:
        original = original_finding(assessment, decision.tracking_uid)
        if original is not None:
            children.extend(
                _code_item(codes.CHANGED_ATTRIBUTE, c) for c in changes(original, finding)
            )
    if decision.comment.strip():
        children.append(
            hd.sr.TextContentItem(
                name=concept(codes.COMMENT), value=decision.comment, relationship_type=_REL.CONTAINS
            )
        )
    item.ContentSequence = hd.sr.ContentSequence(children)
    return item


def _code_item(name: Code, value: Code) -> hd.sr.CodeContentItem:
    return hd.sr.CodeContentItem(
        name=concept(name), value=concept(value), relationship_type=_REL.CONTAINS
    )


def changes(original: Finding, modified: Finding) -> list[Code]:
    """What the reader changed, as the concepts of the changed parts: Finding, Finding
    Site, Image Region, urgency, Certainty of Finding, and each changed measurement."""
    out: list[Code] = []
    if not original.finding.same_concept(modified.finding):
        out.append(codes.FINDING)
    if not _same_code(original.site, modified.site):
        out.append(codes.FINDING_SITE)
    if original.regions != modified.regions:
        out.append(codes.IMAGE_REGION)
    if original.urgency != modified.urgency:
        out.append(codes.URGENCY)
    if original.certainty != modified.certainty:
        out.append(codes.CERTAINTY_OF_FINDING)
    out.extend(_changed_measurements(original, modified))
    return out


def _same_code(a: Code | None, b: Code | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.same_concept(b)


def _changed_measurements(original: Finding, modified: Finding) -> Iterator[Code]:
    def key(c: Code) -> tuple[str, str]:
        return (c.value, c.scheme)

    before = {key(m.concept): m for m in original.measurements}
    after = {key(m.concept): m for m in modified.measurements}
    for k in dict.fromkeys([*before, *after]):
        a, b = before.get(k), after.get(k)
        if a is None or b is None or a.value != b.value or not a.unit.same_concept(b.unit):
            yield (a or b).concept  # type: ignore[union-attr]
