"""Read AI results from DICOM SR documents into ``AIResult`` / ``Finding``.

TID 1500 (Measurement Report) is read group by group: every Measurement Group
(TID 1410/1411/1501) becomes one editable finding. The walk goes over the plain
pydicom content tree by concept codes, not through highdicom's object model,
because it must be fast (the worklist reads hundreds of SRs) and lenient with
what other writers produce. Any other SR is still shown, read-only: its coded
findings, regions and numbers are collected from the whole tree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from pydicom.dataset import Dataset

from app.archive.dicomjson import parse_da_tm
from app.domain import AIResult, Algorithm, Code, Finding, Measurement, Region, Urgency
from app.errors import ResultParseError
from app.results import codes

log = logging.getLogger(__name__)

SR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
}


def read_ai_result(ds: Dataset) -> AIResult:
    """Everything the app reads from one SR; unreadable ones come back marked, not raised."""
    sop_uid = str(ds.get("SOPInstanceUID", ""))
    try:
        return _read(ds)
    except (ResultParseError, AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        problem = str(exc) if isinstance(exc, ResultParseError) else f"malformed SR: {exc!r}"
        log.info("AI result %s unreadable: %s", sop_uid, problem)
        return AIResult(
            sop_instance_uid=sop_uid,
            series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
            study_instance_uid=str(ds.get("StudyInstanceUID", "")),
            template="unknown",
            algorithm=None,
            findings=(),
            readable=False,
            problem=problem[:300],
        )


def _read(ds: Dataset) -> AIResult:
    sop_uid = _require(ds, "SOPInstanceUID")
    if "ContentSequence" not in ds or "ConceptNameCodeSequence" not in ds:
        raise ResultParseError("not a structured report: no content tree")
    template = _template_of(ds)
    document_algorithm = _document_algorithm(ds)
    if template == "TID1500":
        findings = tuple(_read_tid1500(ds, sop_uid, document_algorithm))
    else:
        findings = tuple(_read_other(ds, sop_uid, template, document_algorithm))
    content_dt = parse_da_tm(str(ds.get("ContentDate", "")), str(ds.get("ContentTime", "")))
    return AIResult(
        sop_instance_uid=sop_uid,
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        template=template,
        algorithm=findings[0].algorithm if findings else document_algorithm,
        findings=findings,
        content_datetime=content_dt,
    )


# -- content tree helpers -------------------------------------------------------
def _code(item: Dataset, attr: str = "ConceptNameCodeSequence") -> Code | None:
    seq = item.get(attr)
    if not seq:
        return None
    c = seq[0]
    value = c.get("CodeValue") or c.get("LongCodeValue") or c.get("URNCodeValue") or ""
    return Code(str(value), str(c.get("CodingSchemeDesignator", "")), str(c.get("CodeMeaning", "")))


def _is(item: Dataset, concept: Code) -> bool:
    name = _code(item)
    return name is not None and name.same_concept(concept)


def _children(item: Dataset) -> list[Dataset]:
    return list(item.get("ContentSequence") or [])


def _walk(item: Dataset) -> Iterator[Dataset]:
    for child in _children(item):
        yield child
        yield from _walk(child)


def _text(item: Dataset) -> str:
    vt = item.get("ValueType", "")
    if vt == "TEXT":
        return str(item.get("TextValue", ""))
    if vt == "UIDREF":
        return str(item.get("UID", ""))
    if vt == "CODE":
        code = _code(item, "ConceptCodeSequence")
        return code.meaning if code else ""
    return ""


def _require(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if not value:
        raise ResultParseError(f"SR lacks {keyword}")
    return str(value)


def _template_of(ds: Dataset) -> str:
    for item in ds.get("ContentTemplateSequence") or []:
        tid = str(item.get("TemplateIdentifier", "")).strip()
        if tid == "1500":
            return "TID1500"
        if tid:
            return f"TID{tid}"
    if _is(ds, codes.IMAGING_MEASUREMENT_REPORT):
        return "TID1500"
    return "SR"


def _document_algorithm(ds: Dataset) -> Algorithm:
    """Algorithm named at document level: observer context, else the equipment module."""
    name = version = manufacturer = ""
    for item in _children(ds):
        if item.get("RelationshipType") != "HAS OBS CONTEXT":
            continue
        if _is(item, codes.DEVICE_OBSERVER_MANUFACTURER):
            manufacturer = _text(item)
        elif _is(item, codes.DEVICE_OBSERVER_NAME):
            name = _text(item)
    manufacturer = manufacturer or str(ds.get("Manufacturer", ""))
    name = name or str(ds.get("ManufacturerModelName", ""))
    version = str(ds.get("SoftwareVersions", "")) if name else ""
    return Algorithm(name=name, version=version, manufacturer=manufacturer)


def _algorithm_in(group: Dataset, fallback: Algorithm) -> Algorithm:
    """TID 4019 in a group or in its measurements; the document's device otherwise."""
    name = version = ""
    for item in _walk(group):
        if _is(item, codes.ALGORITHM_NAME) and not name:
            name = _text(item)
        elif _is(item, codes.ALGORITHM_VERSION) and not version:
            version = _text(item)
    if not name:
        return fallback
    return Algorithm(name=name, version=version, manufacturer=fallback.manufacturer)


def _region(item: Dataset) -> Region | None:
    vt = item.get("ValueType")
    data = [float(v) for v in (item.get("GraphicData") or [])]
    graphic_type = str(item.get("GraphicType", ""))
    if vt == "SCOORD":
        points = tuple(tuple(data[i : i + 2]) for i in range(0, len(data) - 1, 2))
        ref_uid = ref_class = None
        ref_frame = None
        for child in _children(item):
            for ref in child.get("ReferencedSOPSequence") or []:
                ref_uid = str(ref.get("ReferencedSOPInstanceUID", "")) or None
                ref_class = str(ref.get("ReferencedSOPClassUID", "")) or None
                frames = ref.get("ReferencedFrameNumber")
                if frames:
                    ref_frame = int(frames[0] if isinstance(frames, list | tuple) else frames)
        return Region(graphic_type, points, ref_uid, ref_class, ref_frame)
    if vt == "SCOORD3D":
        points = tuple(tuple(data[i : i + 3]) for i in range(0, len(data) - 2, 3))
        for_uid = str(item.get("ReferencedFrameOfReferenceUID", "")) or None
        return Region(graphic_type, points, frame_of_reference_uid=for_uid)
    return None


def _measurement(item: Dataset) -> Measurement | None:
    concept = _code(item)
    values = item.get("MeasuredValueSequence") or []
    if concept is None or not values:
        return None
    mv = values[0]
    unit = _code(mv, "MeasurementUnitsCodeSequence") or codes.UNITY
    return Measurement(concept, float(mv.NumericValue), unit)


def _certainty(m: Measurement) -> float:
    return m.value / 100.0 if m.unit.value == "%" else m.value


# -- TID 1500 -------------------------------------------------------------------
def _read_tid1500(ds: Dataset, sop_uid: str, doc_algorithm: Algorithm) -> Iterator[Finding]:
    containers = [c for c in _children(ds) if _is(c, codes.IMAGING_MEASUREMENTS)]
    for container in containers:
        for index, group in enumerate(_children(container)):
            if group.get("ValueType") != "CONTAINER":
                continue
            yield _finding_from_group(group, sop_uid, index, doc_algorithm)


def _finding_from_group(
    group: Dataset, sop_uid: str, index: int, doc_algorithm: Algorithm
) -> Finding:
    tracking_uid = tracking_id = ""
    finding_type: Code | None = None
    site: Code | None = None
    certainty: float | None = None
    urgency = Urgency.ROUTINE
    regions: list[Region] = []
    measurements: list[Measurement] = []
    for item in _children(group):
        vt = item.get("ValueType")
        if _is(item, codes.TRACKING_UID):
            tracking_uid = _text(item)
        elif _is(item, codes.TRACKING_IDENTIFIER):
            tracking_id = _text(item)
        elif _is(item, codes.FINDING):
            finding_type = _code(item, "ConceptCodeSequence")
        elif _is(item, codes.FINDING_SITE):
            site = _code(item, "ConceptCodeSequence")
        elif vt in ("SCOORD", "SCOORD3D"):
            region = _region(item)
            if region is not None:
                regions.append(region)
        elif vt == "NUM":
            m = _measurement(item)
            if m is None:
                continue
            if m.concept.same_concept(codes.CERTAINTY_OF_FINDING):
                certainty = _certainty(m)
            else:
                measurements.append(m)
        elif vt == "CODE" and _is(item, codes.URGENCY):
            value = _code(item, "ConceptCodeSequence")
            urgency = (codes.urgency_from_code(value) if value else None) or Urgency.ROUTINE
    if finding_type is None:
        finding_type = _code(group) or codes.MEASUREMENT_GROUP
    return Finding(
        tracking_uid=tracking_uid or f"{sop_uid}.{index + 1}",
        tracking_id=tracking_id,
        finding=finding_type,
        site=site,
        certainty=certainty,
        urgency=urgency,
        algorithm=_algorithm_in(group, doc_algorithm),
        regions=tuple(regions),
        measurements=tuple(measurements),
        source_sop_uid=sop_uid,
        template="TID1500",
        editable=True,
    )


# -- any other SR: read-only -----------------------------------------------------
def _read_other(
    ds: Dataset, sop_uid: str, template: str, doc_algorithm: Algorithm
) -> Iterator[Finding]:
    """One read-only finding per coded Finding item, else one for the whole document."""
    found = False
    for index, item in enumerate(_walk(ds)):
        if _is(item, codes.FINDING) and item.get("ValueType") == "CODE":
            value = _code(item, "ConceptCodeSequence")
            if value is None:
                continue
            found = True
            regions = [r for r in map(_region, _walk(item)) if r is not None]
            yield _read_only(value, sop_uid, index, template, doc_algorithm, regions, [])
    if not found:
        regions = [r for r in map(_region, _walk(ds)) if r is not None]
        measurements = [
            m for m in (_measurement(i) for i in _walk(ds) if i.get("ValueType") == "NUM") if m
        ]
        if regions or measurements:
            title = _code(ds) or Code("", "", "Structured report")
            yield _read_only(title, sop_uid, 0, template, doc_algorithm, regions, measurements)


def _read_only(
    finding: Code,
    sop_uid: str,
    index: int,
    template: str,
    algorithm: Algorithm,
    regions: list[Region],
    measurements: list[Measurement],
) -> Finding:
    return Finding(
        tracking_uid=f"{sop_uid}.{index + 1}",
        finding=finding,
        site=None,
        certainty=None,
        urgency=Urgency.ROUTINE,
        algorithm=algorithm,
        regions=tuple(regions),
        measurements=tuple(measurements),
        source_sop_uid=sop_uid,
        template=template,
        editable=False,
    )

