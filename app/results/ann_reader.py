"""Microscopy Bulk Simple Annotations -> findings in slide (image) coordinates (Qt-free).

Each annotation group becomes an ``AnnotationGroupInfo`` (label, property codes,
colour, graphic type, coordinates, per-annotation probability) for the slide view,
and the object as a whole an ``AIResult`` for the finding list and ``companion
findings``: each other annotation (polygon, rectangle, ellipse, polyline) is one
finding with its region, and each group of points is one finding whose region is
the MULTIPOINT of all its points, with the count as a measurement. Groups of the
same property type labelled "... positive" and "... negative" get a derived
positive fraction, positive / (positive + negative) (docs/conformance.md).
The findings are decidable like TID 1500 ones; ``app.results.edited_ann`` writes the
reader's version back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from app.domain import AIResult, Algorithm, Code, Finding, Measurement, Region, Urgency
from app.errors import ResultParseError
from app.results.sr_writer import name_based_uid

ANN_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.91.1"
CERTAINTY = Code("111012", "DCM", "Certainty of Finding")
COUNT = Code("C25463", "NCIt", "Count")
POSITIVE_FRACTION = Code("POSITIVE_FRACTION", "99AIRC", "Positive fraction")
UNITY = Code("1", "UCUM", "no units")
# "... positive" / "... negative", also as the reader's edited version of such a group
_SIGN = re.compile(r"\b(positive|negative)\s*(\(reader-(?:edited|added)\))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class AnnotationGroupInfo:
    """One annotation group as the slide view draws it (base-level pixel coordinates)."""

    number: int
    uid: str
    label: str
    category: Code
    property_type: Code
    graphic_type: str
    colour: tuple[int, int, int]  # sRGB
    shapes: tuple[np.ndarray, ...]  # each (n, 2) of (column, row), or (n, 3) of (x, y, z) mm
    probabilities: np.ndarray | None  # one per annotation, 0..1
    positive_fraction: float | None = None
    # "2D": image coordinates of the referenced slide; "3D": slide coordinates (mm) in
    # ``frame_of_reference_uid`` (a view maps them onto the slide's pixels)
    coordinate_type: str = "2D"
    frame_of_reference_uid: str = ""

    @property
    def count(self) -> int:
        return len(self.shapes)

    @property
    def is_points(self) -> bool:
        return self.graphic_type in ("POINT", "MULTIPOINT")


@dataclass(frozen=True)
class SlideAnnotations:
    result: AIResult
    groups: tuple[AnnotationGroupInfo, ...]
    referenced_sop_uids: tuple[str, ...]


def is_bulk_annotations(ds: Dataset) -> bool:
    return str(ds.get("SOPClassUID", "")) == ANN_SOP_CLASS


def read_bulk_annotations(ds: Dataset) -> SlideAnnotations:
    """The groups and findings of a bulk annotations object; ``ResultParseError`` when
    it is not one or cannot be read."""
    if not is_bulk_annotations(ds):
        raise ResultParseError(f"SOP Class {ds.get('SOPClassUID', '')} is not bulk annotations")
    try:
        ann = hd.ann.MicroscopyBulkSimpleAnnotations.from_dataset(ds, copy=False)
        coordinate_type = hd.ann.AnnotationCoordinateTypeValues(ds.AnnotationCoordinateType)
        for_uid = str(ds.get("FrameOfReferenceUID", ""))
        groups = [_group(g, coordinate_type, for_uid) for g in ann.get_annotation_groups()]
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise ResultParseError(f"bulk annotations {ds.get('SOPInstanceUID', '')}: {exc}") from exc
    groups = _with_positive_fractions(groups)
    listed = [
        (str(item.ReferencedSOPInstanceUID), str(item.get("ReferencedSOPClassUID", "")))
        for series in ds.get("ReferencedSeriesSequence") or []
        for item in series.get("ReferencedInstanceSequence") or []
    ]
    # Another ANN listed in the Common Instance Reference is one this object supersedes
    # (how the reader-edited annotations name the AI's: docs/conformance.md).
    refs = tuple(uid for uid, sop_class in listed if sop_class != ANN_SOP_CLASS)
    predecessors = tuple(uid for uid, sop_class in listed if sop_class == ANN_SOP_CLASS)
    algorithm = _algorithm(ds)
    sop_uid = str(ds.SOPInstanceUID)
    findings: list[Finding] = []
    for g in groups:
        findings.extend(_findings(g, sop_uid, algorithm, refs[0] if refs else None))
    result = AIResult(
        sop_instance_uid=sop_uid,
        series_instance_uid=str(ds.SeriesInstanceUID),
        study_instance_uid=str(ds.StudyInstanceUID),
        template="ANN",
        algorithm=algorithm,
        findings=tuple(findings),
        predecessor_uids=predecessors,
    )
    return SlideAnnotations(result, tuple(groups), refs)


def annotation_tracking_uid(group_uid: str, index: int) -> str:
    """The Tracking UID of annotation ``index`` (0-based) of a group, or of the whole
    group of points (``index`` -1). Made from the Annotation Group UID, so it is the
    same on every read and in an edited object that carries the group over unchanged."""
    return name_based_uid(f"ann-{group_uid}-{index}")


def groups_by_tracking_uid(groups: Sequence[AnnotationGroupInfo]) -> dict[str, int]:
    """The group number of each finding ``read_bulk_annotations`` made of ``groups``, by
    Tracking UID (a group of points is one finding, every other annotation one each):
    by the group's UID, never its label, which the reader's edits change and which may
    begin another group's label."""
    out: dict[str, int] = {}
    for g in groups:
        for index in [-1] if g.is_points else range(g.count):
            out[annotation_tracking_uid(g.uid, index)] = g.number
    return out


def _group(
    g: hd.ann.AnnotationGroup,
    coordinate_type: hd.ann.AnnotationCoordinateTypeValues,
    for_uid: str,
) -> AnnotationGroupInfo:
    three_d = coordinate_type == hd.ann.AnnotationCoordinateTypeValues.SCOORD3D
    dims = 3 if three_d else 2
    # slide coordinates are mm: float64, or micrometre detail is lost far from the origin
    dtype = np.float64 if three_d else np.float32
    shapes = tuple(
        np.asarray(s, dtype=dtype)[:, :dims] for s in g.get_graphic_data(coordinate_type)
    )
    probabilities = None
    names, values, _units = g.get_measurements()
    for i, name in enumerate(names):
        if name.value == CERTAINTY.value and name.scheme_designator == CERTAINTY.scheme:
            probabilities = np.asarray(values[:, i], dtype=np.float32)
    colour: tuple[int, int, int] = (255, 255, 0)
    lab = g.get("RecommendedDisplayCIELabValue")
    if lab:
        r, gr, b = hd.color.CIELabColor.from_dicom_value(lab).to_rgb()
        colour = (int(r), int(gr), int(b))
    return AnnotationGroupInfo(
        number=int(g.number),
        uid=str(g.uid),
        label=str(g.label),
        category=_code(g.annotated_property_category),
        property_type=_code(g.annotated_property_type),
        graphic_type=g.graphic_type.value,
        colour=colour,
        shapes=shapes,
        probabilities=probabilities,
        coordinate_type="3D" if three_d else "2D",
        frame_of_reference_uid=for_uid if three_d else "",
    )


def _with_positive_fractions(groups: list[AnnotationGroupInfo]) -> list[AnnotationGroupInfo]:
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for g in groups:
        m = _SIGN.search(g.label)
        if m:
            key = (g.property_type.value, g.property_type.scheme)
            counts.setdefault(key, {})[m.group(1).lower()] = g.count
    out = []
    for g in groups:
        c = counts.get((g.property_type.value, g.property_type.scheme), {})
        if _SIGN.search(g.label) and "positive" in c and "negative" in c:
            total = c["positive"] + c["negative"]
            fraction = c["positive"] / total if total else None
            g = AnnotationGroupInfo(**{**g.__dict__, "positive_fraction": fraction})
        out.append(g)
    return out


def _findings(
    g: AnnotationGroupInfo, sop_uid: str, algorithm: Algorithm, image_uid: str | None
) -> list[Finding]:
    def finding(
        index: int,
        regions: tuple[Region, ...],
        certainty: float | None,
        measurements: tuple[Measurement, ...],
    ) -> Finding:
        return Finding(
            tracking_uid=annotation_tracking_uid(g.uid, index),
            tracking_id=f"{g.label} {index + 1}" if index >= 0 else g.label,
            finding=g.property_type,
            site=None,
            certainty=certainty,
            urgency=Urgency.ROUTINE,
            algorithm=algorithm,
            regions=regions,
            measurements=measurements,
            source_sop_uid=sop_uid,
            template="ANN",
        )

    def region(kind: str, coords: tuple[tuple[float, ...], ...]) -> Region:
        if g.coordinate_type == "3D":  # slide coordinates, mm
            return Region(kind, coords, frame_of_reference_uid=g.frame_of_reference_uid)
        return Region(kind, coords, referenced_sop_uid=image_uid)

    if g.is_points:
        points = tuple(tuple(float(v) for v in p) for s in g.shapes for p in s)
        measurements = [Measurement(COUNT, float(g.count), UNITY)]
        if g.positive_fraction is not None:
            measurements.append(
                Measurement(POSITIVE_FRACTION, round(g.positive_fraction, 4), UNITY)
            )
        mean = (
            round(float(g.probabilities.mean()), 4)
            if g.probabilities is not None and g.count
            else None
        )
        return [finding(-1, (region("MULTIPOINT", points),), mean, tuple(measurements))]
    out = []
    for i, shape in enumerate(g.shapes):
        coords = tuple(tuple(float(v) for v in p) for p in shape)
        prob = round(float(g.probabilities[i]), 4) if g.probabilities is not None else None
        out.append(finding(i, (region(g.graphic_type, coords),), prob, ()))
    return out


def _algorithm(ds: Dataset) -> Algorithm:
    for group in ds.get("AnnotationGroupSequence") or []:
        for item in group.get("AnnotationGroupAlgorithmIdentificationSequence") or []:
            return Algorithm(
                name=str(item.get("AlgorithmName", "")),
                version=str(item.get("AlgorithmVersion", "")),
                manufacturer=str(ds.get("Manufacturer", "")),
            )
    return Algorithm(
        name=str(ds.get("ManufacturerModelName", "")),
        version="",
        manufacturer=str(ds.get("Manufacturer", "")),
    )


def _code(c: hd.sr.CodedConcept) -> Code:
    return Code(str(c.value), str(c.scheme_designator), str(c.meaning))
