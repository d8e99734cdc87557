"""Read back an assessment SR written by ``app.results.assessment_writer``.

``is_assessment_sr`` is the cheap test the worklist runs on every SR (root concept
only, so it also works on WADO-RS metadata); ``read_assessment`` walks the tree
and raises ``ResultParseError`` on anything that does not have the structure
docs/conformance.md describes.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pydicom.dataset import Dataset
from pydicom.valuerep import DT

from app.archive.dicomjson import parse_da_tm
from app.domain import Code, Verdict
from app.domain.review import AssessmentRecord, RecordedDecision
from app.errors import ResultParseError
from app.results import codes
from app.results.sr_reader import code_of

_VERDICTS = {(c.value, c.scheme): Verdict(key) for key, c in codes.VERDICT_VALUES.items()}
_MALFORMED = (AttributeError, KeyError, IndexError, TypeError, ValueError, OverflowError)


def is_assessment_sr(ds: Dataset) -> bool:
    """True when ``ds`` is an AI result assessment SR (by its root concept name)."""
    try:
        seq = ds.get("ConceptNameCodeSequence")
        if not seq:
            return False
        item = seq[0]
        return (
            str(item.get("CodeValue", "")) == codes.AI_RESULT_ASSESSMENT.value
            and str(item.get("CodingSchemeDesignator", "")) == codes.AI_RESULT_ASSESSMENT.scheme
        )
    except _MALFORMED:
        return False


def read_assessment(ds: Dataset) -> AssessmentRecord:
    """The assessment recorded in ``ds``; ``ResultParseError`` when it is not one or is
    malformed (no assessed result, a finding without Tracking UID or verdict, ...)."""
    if not is_assessment_sr(ds):
        raise ResultParseError(
            "not an AI result assessment SR (root concept is not 99AIRC AI_ASSESSMENT)"
        )
    try:
        return _read(ds)
    except ResultParseError:
        raise
    except _MALFORMED as exc:
        raise ResultParseError(f"malformed assessment SR: {exc!r}"[:300]) from exc


def _read(ds: Dataset) -> AssessmentRecord:
    sop_uid = _require(ds, "SOPInstanceUID")
    reader_name = user_id = organization = ""
    role: Code | None = None
    assessed_sop = assessed_series = edited = ""
    decisions: list[RecordedDecision] = []
    for item in _children(ds):
        name = code_of(item)
        if name is None:
            continue
        relation = item.get("RelationshipType")
        if relation == "HAS OBS CONTEXT":
            if name.same_concept(codes.PERSON_OBSERVER_NAME):
                reader_name = str(item.get("PersonName", ""))
            elif name.same_concept(codes.PERSON_OBSERVER_LOGIN):
                user_id = str(item.get("TextValue", ""))
            elif name.same_concept(codes.PERSON_OBSERVER_ORGANIZATION):
                organization = str(item.get("TextValue", ""))
            elif name.same_concept(codes.PERSON_OBSERVER_ROLE):
                role = code_of(item, "ConceptCodeSequence")
        elif name.same_concept(codes.ASSESSED_RESULT):
            assessed_sop, assessed_series = _assessed(item)
        elif name.same_concept(codes.EDITED_RESULT):
            edited = _referenced_sop(item)
        elif name.same_concept(codes.FINDING_ASSESSMENT):
            decisions.append(_decision(item, len(decisions)))
    if not assessed_sop:
        raise ResultParseError("assessment SR names no assessed AI result")
    if not assessed_series:
        assessed_series = _series_in_evidence(ds, assessed_sop)
    if not reader_name:
        raise ResultParseError("assessment SR names no person observer")
    return AssessmentRecord(
        sop_instance_uid=sop_uid,
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        study_uid=_require(ds, "StudyInstanceUID"),
        assessed_sop_uid=assessed_sop,
        assessed_series_uid=assessed_series,
        reader_name=reader_name,
        completed_at=_content_datetime(ds),
        decisions=tuple(decisions),
        reader_user_id=user_id,
        reader_organization=organization,
        reader_role=role,
        edited_sop_uid=edited,
    )


def _assessed(container: Dataset) -> tuple[str, str]:
    sop = series = ""
    for item in _children(container):
        name = code_of(item)
        if name is None:
            continue
        if name.same_concept(codes.SOURCE_REPORT):
            sop = _referenced_sop(item)
        elif name.same_concept(codes.SERIES_INSTANCE_UID):
            series = str(item.get("UID", ""))
    return sop, series


def _decision(container: Dataset, index: int) -> RecordedDecision:
    tracking_uid = tracking_id = comment = ""
    verdict: Verdict | None = None
    reason = finding = None
    changed: list[Code] = []
    for item in _children(container):
        name = code_of(item)
        if name is None:
            continue
        if name.same_concept(codes.TRACKING_UID):
            tracking_uid = str(item.get("UID", ""))
        elif name.same_concept(codes.TRACKING_IDENTIFIER):
            tracking_id = str(item.get("TextValue", ""))
        elif name.same_concept(codes.FINDING):
            finding = code_of(item, "ConceptCodeSequence")
        elif name.same_concept(codes.VERDICT):
            value = code_of(item, "ConceptCodeSequence")
            verdict = _VERDICTS.get((value.value, value.scheme)) if value else None
            if verdict is None:
                raise ResultParseError(f"finding assessment {index + 1}: unknown verdict {value}")
        elif name.same_concept(codes.REJECT_REASON):
            reason = code_of(item, "ConceptCodeSequence")
        elif name.same_concept(codes.CHANGED_ATTRIBUTE):
            value = code_of(item, "ConceptCodeSequence")
            if value is not None:
                changed.append(value)
        elif name.same_concept(codes.COMMENT):
            comment = str(item.get("TextValue", ""))
    if not tracking_uid:
        raise ResultParseError(f"finding assessment {index + 1} has no Tracking UID")
    if verdict is None:
        raise ResultParseError(f"finding assessment {index + 1} ({tracking_uid}) has no verdict")
    return RecordedDecision(
        tracking_uid=tracking_uid,
        verdict=verdict,
        reason=reason,
        comment=comment,
        finding=finding,
        tracking_id=tracking_id,
        decided_at=_datetime(str(container.get("ObservationDateTime", ""))),
        changed=tuple(changed),
    )


# -- helpers --------------------------------------------------------------------
def _children(item: Dataset) -> list[Dataset]:
    return list(item.get("ContentSequence") or [])


def _referenced_sop(item: Dataset) -> str:
    refs = item.get("ReferencedSOPSequence") or []
    return str(refs[0].get("ReferencedSOPInstanceUID", "")) if refs else ""


def _require(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if not value:
        raise ResultParseError(f"assessment SR lacks {keyword}")
    return str(value)


def _series_in_evidence(ds: Dataset, sop_uid: str) -> str:
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(keyword) or []:
            for series in study.get("ReferencedSeriesSequence") or []:
                for sop in series.get("ReferencedSOPSequence") or []:
                    if str(sop.get("ReferencedSOPInstanceUID", "")) == sop_uid:
                        return str(series.get("SeriesInstanceUID", ""))
    return ""


def _content_datetime(ds: Dataset) -> datetime | None:
    """Content Date/Time, aware when the SR records its Timezone Offset From UTC."""
    when = parse_da_tm(str(ds.get("ContentDate", "")), str(ds.get("ContentTime", "")))
    offset = str(ds.get("TimezoneOffsetFromUTC", "")).strip()
    if when is None or len(offset) != 5 or offset[0] not in "+-":
        return when
    minutes = int(offset[1:3]) * 60 + int(offset[3:5])
    return when.replace(
        tzinfo=timezone(timedelta(minutes=-minutes if offset[0] == "-" else minutes))
    )


def _datetime(value: str) -> datetime | None:
    if not value.strip():
        return None
    dt = DT(value)
    return datetime(
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond, dt.tzinfo
    )
