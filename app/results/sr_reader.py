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
import math
import struct
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.multival import MultiValue

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


# Bounds on one read, so that no input (a cycle built in memory, a fuzzed file) keeps
# the worklist waiting: real TID 1500 trees are under 10 levels deep.
MAX_DEPTH = 64
MAX_ITEMS = 100_000

# What malformed content raises while pydicom converts values lazily and the walk
# reads them: reported as an unreadable result, not raised.
_MALFORMED = (
    AttributeError,
    KeyError,
    IndexError,
    TypeError,
    ValueError,  # includes UnicodeDecodeError
    InvalidDicomError,
    BytesLengthException,  # a binary value whose length does not fit its VR
    ArithmeticError,  # OverflowError: int(inf)
    struct.error,
    EOFError,
    OSError,  # pydicom: "No tag to read" in a truncated sequence parsed on access
    NotImplementedError,
)
UNEXPECTED = "unexpected error reading the SR"


def read_ai_result(ds: Dataset) -> AIResult:
    """Everything the app reads from one SR; unreadable ones come back marked, not raised."""
    try:
        return _read(ds)
    except ResultParseError as exc:
        problem = str(exc)
    except _MALFORMED as exc:
        problem = f"malformed SR: {exc!r}"
    except Exception as exc:  # one odd SR must not stop the worklist; the fuzz tests hunt these
        log.warning("%s", UNEXPECTED, exc_info=True)
        problem = f"{UNEXPECTED}: {exc!r}"
    return _unreadable(ds, problem)


def read_ai_result_bytes(data: bytes) -> AIResult:
    """Read an SR from its Part 10 (or raw little endian) bytes.

    Bytes pydicom cannot parse at all raise ``ResultParseError``; a parsed object
    whose content is wrong comes back as an unreadable ``AIResult``, as from
    ``read_ai_result``.
    """
    try:
        ds = pydicom.dcmread(BytesIO(data))  # as dicomweb-client parses a WADO-RS part
    except (*_MALFORMED, RecursionError) as exc:
        raise ResultParseError(f"not a readable DICOM object: {exc!r}"[:300]) from exc
    return read_ai_result(ds)


def _unreadable(ds: Dataset, problem: str) -> AIResult:
    sop_uid = _safe_str(ds, "SOPInstanceUID")
    log.info("AI result %s unreadable: %s", sop_uid, problem)
    return AIResult(
        sop_instance_uid=sop_uid,
        series_instance_uid=_safe_str(ds, "SeriesInstanceUID"),
        study_instance_uid=_safe_str(ds, "StudyInstanceUID"),
        template="unknown",
        algorithm=None,
        findings=(),
        readable=False,
        problem=problem[:300],
    )


def _safe_str(ds: Dataset, keyword: str) -> str:
    """An attribute as text, "" when it is missing or its raw bytes do not convert."""
    try:
        return str(ds.get(keyword, "") or "")
    except Exception:  # noqa: BLE001 - the value is what made the SR unreadable
        return ""


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
        predecessor_uids=_predecessor_uids(ds),
    )


def _predecessor_uids(ds: Dataset) -> tuple[str, ...]:
    """SOP Instance UIDs in the Predecessor Documents Sequence (the SRs this one supersedes)."""
    return tuple(
        str(sop.ReferencedSOPInstanceUID)
        for study in ds.get("PredecessorDocumentsSequence") or []
        for series in study.get("ReferencedSeriesSequence") or []
        for sop in series.get("ReferencedSOPSequence") or []
        if sop.get("ReferencedSOPInstanceUID")
    )


# -- content tree helpers -------------------------------------------------------
def code_of(item: Dataset, attr: str = "ConceptNameCodeSequence") -> Code | None:
    """The coded concept in ``item``'s ``attr`` sequence (its concept name by default)."""
    seq = item.get(attr)
    if not seq:
        return None
    c = seq[0]
    value = c.get("CodeValue") or c.get("LongCodeValue") or c.get("URNCodeValue") or ""
    return Code(str(value), str(c.get("CodingSchemeDesignator", "")), str(c.get("CodeMeaning", "")))


def _is(item: Dataset, concept: Code) -> bool:
    name = code_of(item)
    return name is not None and name.same_concept(concept)


def _children(item: Dataset) -> list[Dataset]:
    return list(item.get("ContentSequence") or [])


def _walk(item: Dataset) -> Iterator[Dataset]:
    """Every item below ``item``, depth first in document order, within MAX_DEPTH / MAX_ITEMS."""
    stack = [iter(_children(item))]
    count = 0
    while stack:
        child = next(stack[-1], _END)
        if child is _END:
            stack.pop()
            continue
        count += 1
        if count > MAX_ITEMS:
            raise ResultParseError(f"SR content tree has more than {MAX_ITEMS} items")
        yield child
        grandchildren = _children(child)
        if grandchildren:
            if len(stack) >= MAX_DEPTH:
                raise ResultParseError(f"SR content tree is nested deeper than {MAX_DEPTH} levels")
            stack.append(iter(grandchildren))


_END = Dataset()  # sentinel: no further child


def _text(item: Dataset) -> str:
    vt = item.get("ValueType", "")
    if vt == "TEXT":
        return str(item.get("TextValue", ""))
    if vt == "UIDREF":
        return str(item.get("UID", ""))
    if vt == "CODE":
        code = code_of(item, "ConceptCodeSequence")
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


def _has_person_observer(ds: Dataset) -> bool:
    """True when the document's observer context names a person (DCM 121005 = 121006)."""
    for item in _children(ds):
        if item.get("RelationshipType") == "HAS OBS CONTEXT" and _is(item, codes.OBSERVER_TYPE):
            value = code_of(item, "ConceptCodeSequence")
            if value is not None and value.same_concept(codes.PERSON):
                return True
    return False


def _algorithm_in(group: Dataset, fallback: Algorithm, person_observed: bool = False) -> Algorithm:
    """TID 4019 in a group or in its measurements; the document's device otherwise.

    In a report a person observed (a reader's edited SR), a group without TID 4019
    is the person's own finding: no algorithm.
    """
    name = version = ""
    for item in _walk(group):
        if _is(item, codes.ALGORITHM_NAME) and not name:
            name = _text(item)
        elif _is(item, codes.ALGORITHM_VERSION) and not version:
            version = _text(item)
    if not name:
        return Algorithm(name="", version="", manufacturer="") if person_observed else fallback
    return Algorithm(name=name, version=version, manufacturer=fallback.manufacturer)


def _values(value: Any) -> list[Any]:
    """A DICOM value as a list: None is empty, one value is a list of one."""
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _first_frame(value: object) -> int | None:
    frames = _values(value)
    frame = int(frames[0]) if frames else 0
    return frame if frame > 0 else None


def _region(item: Dataset) -> Region | None:
    """A SCOORD / SCOORD3D item as a Region; None when it has no point a viewer can draw."""
    vt = item.get("ValueType")
    if vt not in ("SCOORD", "SCOORD3D"):
        return None
    data = [float(v) for v in _values(item.get("GraphicData"))]
    graphic_type = str(item.get("GraphicType", ""))
    size = 2 if vt == "SCOORD" else 3
    count = len(data) // size
    if count == 0 or not all(math.isfinite(v) for v in data[: count * size]):
        log.info("%s region without finite coordinates skipped", vt)
        return None
    points = tuple(tuple(data[i * size : (i + 1) * size]) for i in range(count))
    if vt == "SCOORD3D":
        for_uid = str(item.get("ReferencedFrameOfReferenceUID", ""))
        if not for_uid:  # (x, y, z) in no known space: nowhere to draw it
            log.info("SCOORD3D region without a frame of reference skipped")
            return None
        return Region(graphic_type, points, frame_of_reference_uid=for_uid)
    ref_uid = ref_class = None
    ref_frame = None
    for child in _children(item):
        for ref in child.get("ReferencedSOPSequence") or []:
            ref_uid = str(ref.get("ReferencedSOPInstanceUID", "")) or None
            ref_class = str(ref.get("ReferencedSOPClassUID", "")) or None
            ref_frame = _first_frame(ref.get("ReferencedFrameNumber"))
    return Region(graphic_type, points, ref_uid, ref_class, ref_frame)


def _measurement(item: Dataset) -> Measurement | None:
    """A NUM item; None without a value or with NaN / infinity (dcmqi skips those too).

    A TID 1419 Derivation (mean, maximum, ...) is added to the concept's meaning:
    dcmqi writes several values of one concept that differ only by it.
    """
    concept = code_of(item)
    values = item.get("MeasuredValueSequence") or []
    if concept is None or not values:
        return None
    mv = values[0]
    value = float(mv.NumericValue)
    if not math.isfinite(value):
        return None
    unit = code_of(mv, "MeasurementUnitsCodeSequence") or codes.UNITY
    for child in _children(item):
        derivation = code_of(child, "ConceptCodeSequence") if _is(child, codes.DERIVATION) else None
        if derivation is not None and derivation.meaning:
            meaning = f"{concept.meaning} ({derivation.meaning})"
            concept = Code(concept.value, concept.scheme, meaning)
    return Measurement(concept, value, unit)


def _measurement_of(item: Dataset) -> Measurement | None:
    return _measurement(item) if item.get("ValueType") == "NUM" else None


def _certainty(m: Measurement) -> float | None:
    """Certainty of Finding as 0..1 (unit "1" or "%"); None when out of that range."""
    value = m.value / 100.0 if m.unit.value == "%" else m.value
    return value if 0.0 <= value <= 1.0 else None


# -- TID 1500 -------------------------------------------------------------------
def _read_tid1500(ds: Dataset, sop_uid: str, doc_algorithm: Algorithm) -> Iterator[Finding]:
    containers = [c for c in _children(ds) if _is(c, codes.IMAGING_MEASUREMENTS)]
    person_observed = _has_person_observer(ds)
    for container in containers:
        for index, group in enumerate(_children(container)):
            if group.get("ValueType") != "CONTAINER":
                continue
            yield _finding_from_group(group, sop_uid, index, doc_algorithm, person_observed)


def _finding_from_group(
    group: Dataset, sop_uid: str, index: int, doc_algorithm: Algorithm, person_observed: bool
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
            finding_type = code_of(item, "ConceptCodeSequence")
        elif _is(item, codes.FINDING_SITE):
            site = code_of(item, "ConceptCodeSequence")
        elif vt in ("SCOORD", "SCOORD3D"):
            region = _region(item)
            if region is not None:
                regions.append(region)
        elif vt == "NUM":
            m = _measurement(item)
            if m is None:
                continue
            level = _certainty(m) if m.concept.same_concept(codes.CERTAINTY_OF_FINDING) else None
            if level is not None:
                certainty = level
            else:  # a measurement, or a certainty out of range: shown as a number
                measurements.append(m)
        elif vt == "CODE" and _is(item, codes.URGENCY):
            value = code_of(item, "ConceptCodeSequence")
            urgency = (codes.urgency_from_code(value) if value else None) or Urgency.ROUTINE
    if finding_type is None:
        finding_type = code_of(group) or codes.MEASUREMENT_GROUP
    return Finding(
        tracking_uid=tracking_uid or f"{sop_uid}.{index + 1}",
        tracking_id=tracking_id,
        finding=finding_type,
        site=site,
        certainty=certainty,
        urgency=urgency,
        algorithm=_algorithm_in(group, doc_algorithm, person_observed),
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
            value = code_of(item, "ConceptCodeSequence")
            if value is None:
                continue
            found = True
            below = list(_walk(item))  # its region and numbers (HAS PROPERTIES, INFERRED FROM)
            regions = [r for r in map(_region, below) if r is not None]
            measurements = [m for m in map(_measurement_of, below) if m is not None]
            yield _read_only(value, sop_uid, index, template, doc_algorithm, regions, measurements)
    if not found:
        regions = [r for r in map(_region, _walk(ds)) if r is not None]
        measurements = [m for m in map(_measurement_of, _walk(ds)) if m is not None]
        if regions or measurements:
            title = code_of(ds) or Code("", "", "Structured report")
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

