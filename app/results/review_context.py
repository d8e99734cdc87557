"""What both review SRs take from an ``Assessment`` and the assessed AI SR.

The assessment SR (``assessment_writer``) and the edited SR (``edited_sr``) share
the reader as a TID 1002 person observer, the patient/study information and
evidence of the AI SR, the checks that the assessment belongs to that SR, and
the way a (possibly timezone-aware) datetime is written.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from datetime import datetime

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dcm_codes
from pydicom.valuerep import DT

from app.domain import Assessment, Finding, Reader, Verdict
from app.results import codes
from app.results.ann_reader import ANN_SOP_CLASS
from app.results.sr_reader import SR_SOP_CLASSES
from app.results.sr_writer import concept

SOFTWARE_NAME = "AI Review Companion"
try:
    SOFTWARE_VERSION = importlib.metadata.version("ai-review-companion")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    SOFTWARE_VERSION = "unknown"

# Header attributes highdicom reads from its first evidence item; the rest of the
# patient and study modules is copied from the AI SR after construction.
_HEADER = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


@dataclass(frozen=True)
class EvidenceRef:
    """One instance an SR lists as evidence."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str


def person_observer(reader: Reader) -> hd.sr.ObserverContext:
    """The reader as a TID 1002 person observer: name, login, organization and, where
    ``reader.role`` is one of ``codes.READER_ROLES``, the coded role in the organization."""
    if not reader.name.strip():
        raise ValueError("assessment.reader.name must be a person name (FAMILY^GIVEN), got ''")
    role = codes.READER_ROLES.get(reader.role.strip().lower())
    return hd.sr.ObserverContext(
        observer_type=dcm_codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=reader.name,
            login_name=reader.user_id or None,
            organization_name=reader.organization or None,
            role_in_organization=concept(role) if role else None,
        ),
    )


def check_assessed(assessment: Assessment, ai_sr: Dataset) -> None:
    """Raise ``ValueError`` unless ``ai_sr`` is the SR the assessment is about and every
    decision is a verdict on one of its findings (or an added finding with a new UID)."""
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "SOPClassUID"):
        if not ai_sr.get(keyword):
            raise ValueError(f"ai_sr lacks {keyword}")
    if str(ai_sr.SOPClassUID) not in SR_SOP_CLASSES and str(ai_sr.SOPClassUID) != ANN_SOP_CLASS:
        raise ValueError(
            f"ai_sr must be an SR or bulk annotations instance, got SOP class {ai_sr.SOPClassUID}"
        )
    if str(ai_sr.SOPInstanceUID) != assessment.assessed.sop_instance_uid:
        raise ValueError(
            f"ai_sr {ai_sr.SOPInstanceUID} is not the assessed AI result "
            f"{assessment.assessed.sop_instance_uid}"
        )
    if str(ai_sr.StudyInstanceUID) != assessment.study_uid:
        raise ValueError(
            f"ai_sr belongs to study {ai_sr.StudyInstanceUID}, "
            f"the assessment to {assessment.study_uid}"
        )
    ai_uids = {f.tracking_uid for f in assessment.assessed.findings}
    seen: set[str] = set()
    for index, decision in enumerate(assessment.decisions):
        where = f"assessment.decisions[{index}]"
        if decision.verdict is Verdict.UNDECIDED:
            raise ValueError(f"{where} ({decision.tracking_uid}) is still undecided")
        if decision.finding.tracking_uid != decision.tracking_uid:
            raise ValueError(
                f"{where}: the finding's Tracking UID {decision.finding.tracking_uid} is not "
                f"the decision's {decision.tracking_uid}"
            )
        if decision.tracking_uid in seen:
            raise ValueError(f"{where}: a second decision on {decision.tracking_uid}")
        seen.add(decision.tracking_uid)
        known = decision.tracking_uid in ai_uids
        if decision.verdict is Verdict.ADDED and known:
            raise ValueError(
                f"{where}: an added finding needs a new Tracking UID, "
                f"{decision.tracking_uid} is the AI's"
            )
        if decision.verdict is not Verdict.ADDED and not known:
            raise ValueError(
                f"{where}: {decision.tracking_uid} is not a finding of the assessed AI result"
            )


def original_finding(assessment: Assessment, tracking_uid: str) -> Finding | None:
    """The AI's own version of a finding, by Tracking UID."""
    for finding in assessment.assessed.findings:
        if finding.tracking_uid == tracking_uid:
            return finding
    return None


def evidence_refs(ai_sr: Dataset) -> list[EvidenceRef]:
    """The instances ``ai_sr`` lists as evidence (current and pertinent other)."""
    refs: list[EvidenceRef] = []
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ai_sr.get(keyword) or []:
            for series in study.get("ReferencedSeriesSequence") or []:
                for sop in series.get("ReferencedSOPSequence") or []:
                    refs.append(
                        EvidenceRef(
                            str(study.StudyInstanceUID),
                            str(series.SeriesInstanceUID),
                            str(sop.ReferencedSOPInstanceUID),
                            str(sop.ReferencedSOPClassUID),
                        )
                    )
    return refs


def evidence_stub(ref: EvidenceRef, header: Dataset) -> Dataset:
    """A dataset standing for one evidence instance, for highdicom's evidence lists:
    its UIDs, plus the few patient/study attributes highdicom reads from ``header``."""
    ds = Dataset()
    if "SpecificCharacterSet" in header:
        ds.SpecificCharacterSet = header.SpecificCharacterSet
    for keyword in _HEADER:
        setattr(ds, keyword, header.get(keyword))
    ds.StudyInstanceUID = ref.study_uid
    ds.SeriesInstanceUID = ref.series_uid
    ds.SOPInstanceUID = ref.sop_uid
    ds.SOPClassUID = ref.sop_class_uid
    return ds


def finish(sr: hd.sr.Comprehensive3DSR, ai_sr: Dataset, when: datetime) -> None:
    """Copy the AI SR's patient and study modules (highdicom only takes a few from its
    first evidence item) and record ``when``'s UTC offset, if it has one."""
    sr.copy_patient_and_study_information(ai_sr)
    offset = timezone_offset(when)
    if offset:
        sr.TimezoneOffsetFromUTC = offset


def timezone_offset(when: datetime) -> str:
    """``+HHMM`` / ``-HHMM`` for an aware datetime, ``""`` for a naive one."""
    delta = when.utcoffset()
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def dicom_datetime(when: datetime) -> str:
    """``when`` as a DICOM DT string (with its UTC offset where it has one)."""
    return str(DT(when))
