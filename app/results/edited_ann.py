"""Write the reader's edited slide annotations: a new Microscopy Bulk Simple Annotations
object that supersedes the AI's (highdicom ``ann``).

From the original ANN and an ``Assessment`` of it (decisions keyed by the Tracking
UIDs ``ann_reader`` gives each annotation, or each group of points):

- an AI group the reader left as it is (every annotation confirmed) is copied
  unchanged, with its Annotation Group UID, so its annotations keep their
  Tracking UIDs when the edited object is read;
- rejected annotations are left out (a group left empty is dropped); modified ones
  take the reader's geometry and certainty; a group that lost or changed any
  annotation gets a new UID, the label "<label> (reader-edited)" and generation
  type SEMIAUTOMATIC (the AI's algorithm identification stays);
- an annotation relabelled (its finding type changed) goes into a group of the new
  type, "<type> (reader-edited)", under the same rules;
- findings the reader added go into MANUAL groups "<type> (reader-added)".

The new object is a new series of the same study with a new SOP Instance UID. It
"supersedes" the original by listing it in its Common Instance Reference Module
(Referenced Series Sequence, with the ANN SOP class) next to the source image;
``ann_reader`` reads such a reference as a predecessor (docs/conformance.md).
The coordinates keep the original's type: 2D image coordinates (SCOORD), or 3D slide
coordinates (SCOORD3D), which the reader can confirm, reject and retype but not move
(and a region the reader drew, in image pixels, cannot join them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from app.domain import Assessment, Code, Decision, Finding, Region, Verdict
from app.results.ann_reader import ANN_SOP_CLASS, CERTAINTY, annotation_tracking_uid
from app.results.review_context import SOFTWARE_NAME, SOFTWARE_VERSION

EDITED = " (reader-edited)"
ADDED = " (reader-added)"
# Category for a reader-added type no AI group has: SCT "Morphologically abnormal structure".
DEFAULT_CATEGORY = Code("49755003", "SCT", "Morphologically abnormal structure")
_UNITY = hd.sr.CodedConcept("1", "UCUM", "no units")
_GEN = hd.ann.AnnotationGroupGenerationTypeValues
_POINTS = ("POINT", "MULTIPOINT")
_LO = 64  # VR LO


@dataclass
class _Bucket:
    """One group of the edited object, filled annotation by annotation."""

    label: str
    category: Code
    prop: Code
    graphic_type: str
    source: hd.ann.AnnotationGroup | None  # the AI group it comes from
    generation: hd.ann.AnnotationGroupGenerationTypeValues
    shapes: list[np.ndarray] = field(default_factory=list)
    rows: list[int | None] = field(default_factory=list)  # source annotation index
    certainty: list[float] = field(default_factory=list)


def is_ann_assessment(assessment: Assessment) -> bool:
    return assessment.assessed.template == "ANN"


def ann_changed(assessment: Assessment) -> bool:
    """True when the edited annotations differ from the AI's: anything rejected,
    modified or added (a rejection removes a region the viewer would otherwise show)."""
    return any(d.verdict is not Verdict.CONFIRMED for d in assessment.decisions)


def build_edited_ann(
    assessment: Assessment,
    original: Dataset,
    *,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int = 903,
    instance_number: int = 1,
) -> hd.ann.MicroscopyBulkSimpleAnnotations:
    """The edited bulk annotations for ``assessment`` of ``original`` (see the module
    text). Raises ``ValueError`` naming the argument on input that does not fit."""
    if str(original.get("SOPClassUID", "")) != ANN_SOP_CLASS:
        raise ValueError(f"original must be bulk annotations, got {original.get('SOPClassUID')}")
    if str(original.SOPInstanceUID) != assessment.assessed.sop_instance_uid:
        raise ValueError(
            f"original {original.SOPInstanceUID} is not the assessed result "
            f"{assessment.assessed.sop_instance_uid}"
        )
    if sop_instance_uid == str(original.SOPInstanceUID):
        raise ValueError(f"sop_instance_uid must be new, got the original's {sop_instance_uid}")
    coordinate_type = hd.ann.AnnotationCoordinateTypeValues(original.AnnotationCoordinateType)
    dims = 3 if coordinate_type == hd.ann.AnnotationCoordinateTypeValues.SCOORD3D else 2
    ann = hd.ann.MicroscopyBulkSimpleAnnotations.from_dataset(original, copy=True)
    decisions = {d.tracking_uid: d for d in assessment.decisions}
    groups: list[hd.ann.AnnotationGroup] = []
    categories: dict[tuple[str, str], Code] = {}
    for g in ann.get_annotation_groups():
        categories.setdefault(
            _key(_code(g.annotated_property_type)), _code(g.annotated_property_category)
        )
    for g in ann.get_annotation_groups():
        shapes = [
            np.asarray(s, dtype=np.float64)[:, :dims] for s in g.get_graphic_data(coordinate_type)
        ]
        buckets = _edited_buckets(g, shapes, decisions, categories, dims)
        if buckets is None:  # untouched: copied as it is
            kept = copy.deepcopy(g)
            kept.AnnotationGroupNumber = len(groups) + 1
            groups.append(kept)
            continue
        for bucket in buckets:
            groups.append(_group(bucket, len(groups) + 1))
    added: dict[tuple[str, str, str], _Bucket] = {}
    for d in assessment.decisions:
        if d.verdict is Verdict.ADDED:
            if dims == 3:
                raise ValueError(
                    "assessment: a region the reader drew (image pixels) cannot join "
                    "annotations in slide coordinates (3D)"
                )
            _add_to(added, d.finding, categories)
    groups.extend(_group(b, len(groups) + 1) for b in added.values())
    if not groups:
        raise ValueError("assessment: every annotation was rejected; nothing to write")
    edited = hd.ann.MicroscopyBulkSimpleAnnotations(
        source_images=[_source_stub(original)],
        annotation_coordinate_type=coordinate_type,
        annotation_groups=groups,
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=instance_number,
        manufacturer=SOFTWARE_NAME,
        manufacturer_model_name=SOFTWARE_NAME,
        software_versions=SOFTWARE_VERSION,
        device_serial_number="AIRC",
        content_description=_fit(f"Reader-edited: {original.get('ContentDescription', '')}"),
        content_creator_name=assessment.reader.name,
        content_label="READER_EDITED",
        pixel_origin_interpretation=str(original.get("PixelOriginInterpretation", "VOLUME")),
        series_description="AI annotations, edited by the reader",
    )
    edited.copy_patient_and_study_information(original)
    _reference_original(edited, original)
    equipment: list[Dataset] = [
        copy.deepcopy(i) for i in original.get("ContributingEquipmentSequence") or []
    ]
    equipment.append(
        hd.ContributingEquipment(
            manufacturer=str(original.get("Manufacturer", "")) or "unknown",
            purpose_of_reference=hd.sr.CodedConcept("109102", "DCM", "Processing Equipment"),
            manufacturer_model_name=str(original.get("ManufacturerModelName", "")) or None,
            software_versions=str(original.get("SoftwareVersions", "")) or None,
            contribution_description="Made the AI annotations the reader edited",
        )
    )
    edited.ContributingEquipmentSequence = DicomSequence(equipment)  # type: ignore[assignment]
    return edited


# -- groups ------------------------------------------------------------------------------
def _edited_buckets(
    g: hd.ann.AnnotationGroup,
    shapes: list[np.ndarray],
    decisions: dict[str, Decision],
    categories: dict[tuple[str, str], Code],
    dims: int = 2,
) -> list[_Bucket] | None:
    """The groups an AI group becomes, or None when the reader left it unchanged.
    ``dims`` 3: the AI's coordinates are slide coordinates (x, y, z mm); the reader may
    not move them (a region given in image pixels is refused)."""

    def coords(region: Region) -> np.ndarray:
        pts = np.asarray(region.coordinates, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] < dims or (dims == 3) != region.is_3d:
            raise ValueError(
                f"assessment: a region of {len(pts[0]) if len(pts) else 0} coordinates "
                f"cannot replace one in {'slide' if dims == 3 else 'image'} coordinates"
            )
        return pts[:, :dims]

    prop = _code(g.annotated_property_type)
    graphic = g.graphic_type.value
    certainty = _certainty(g)
    buckets: dict[tuple[str, str, str], _Bucket] = {}
    changed = False

    def bucket(ftype: Code, graphic_type: str) -> _Bucket:
        key = (*_key(ftype), graphic_type)
        if key not in buckets:
            base = str(g.label) if ftype.same_concept(prop) else ftype.meaning
            manual = g.algorithm_identification is None  # drawn by a reader before
            buckets[key] = _Bucket(
                label=_fit(base, ADDED if manual else EDITED),
                category=(
                    _code(g.annotated_property_category)
                    if ftype.same_concept(prop)
                    else categories.get(_key(ftype), DEFAULT_CATEGORY)
                ),
                prop=ftype,
                graphic_type=graphic_type,
                source=g,
                generation=_GEN.MANUAL if manual else _GEN.SEMIAUTOMATIC,
            )
        return buckets[key]

    if graphic in _POINTS:  # one finding for the whole group
        d = decisions.get(annotation_tracking_uid(str(g.uid), -1))
        if d is None or d.verdict is Verdict.CONFIRMED:
            return None
        if d.verdict is Verdict.REJECTED:
            return []
        region = d.finding.regions[0] if d.finding.regions else None
        old = {tuple(np.round(s[0], 3)): i for i, s in enumerate(shapes)}
        points = list(coords(region)) if region is not None else [s[0] for s in shapes]
        b = bucket(d.finding.finding, "POINT")
        for p in points:
            row = old.get(tuple(np.round(p, 3)))
            b.shapes.append(p.reshape(1, dims))
            b.rows.append(row)
            b.certainty.append(
                certainty[row] if certainty is not None and row is not None else np.nan
            )
        return [x for x in buckets.values() if x.shapes]
    for i, shape in enumerate(shapes):
        d = decisions.get(annotation_tracking_uid(str(g.uid), i))
        if d is None or d.verdict is Verdict.CONFIRMED:
            b = bucket(prop, graphic)
            b.shapes.append(shape)
            b.rows.append(i)
            b.certainty.append(certainty[i] if certainty is not None else np.nan)
            continue
        changed = True
        if d.verdict is Verdict.REJECTED:
            continue
        region = d.finding.regions[0] if d.finding.regions else None
        new_shape = coords(region) if region is not None else shape
        b = bucket(d.finding.finding, region.graphic_type if region is not None else graphic)
        b.shapes.append(new_shape)
        b.rows.append(i)
        cert = d.finding.certainty
        b.certainty.append(float(cert) if cert is not None else np.nan)
    if not changed:
        return None
    return [x for x in buckets.values() if x.shapes]


def _add_to(
    added: dict[tuple[str, str, str], _Bucket],
    finding: Finding,
    categories: dict[tuple[str, str], Code],
) -> None:
    if not finding.regions:
        raise ValueError(f"assessment: the added finding {finding.tracking_uid} has no region")
    region = finding.regions[0]
    graphic = "POINT" if region.graphic_type == "MULTIPOINT" else region.graphic_type
    key = (*_key(finding.finding), graphic)
    if key not in added:
        added[key] = _Bucket(
            label=_fit(finding.finding.meaning, ADDED),
            category=categories.get(_key(finding.finding), DEFAULT_CATEGORY),
            prop=finding.finding,
            graphic_type=graphic,
            source=None,
            generation=_GEN.MANUAL,
        )
    b = added[key]
    pts = np.asarray([p[:2] for p in region.coordinates], dtype=np.float64)
    for shape in [p.reshape(1, 2) for p in pts] if graphic == "POINT" else [pts]:
        b.shapes.append(shape)
        b.rows.append(None)
        b.certainty.append(np.nan)


def _group(b: _Bucket, number: int) -> hd.ann.AnnotationGroup:
    source = b.source
    measurements = _measurements(b) if source is not None else None
    colour = None
    algorithm = None
    description = None
    if source is not None:
        lab = source.get("RecommendedDisplayCIELabValue")
        colour = hd.color.CIELabColor.from_dicom_value(lab) if lab else None
        algorithm = source.algorithm_identification
        description = _fit(
            f"{source.get('AnnotationGroupDescription', '') or source.label}", EDITED
        )
    else:
        description = "Drawn by the reader"
    return hd.ann.AnnotationGroup(
        number=number,
        uid=hd.UID(),
        label=b.label,
        annotated_property_category=_concept(b.category),
        annotated_property_type=_concept(b.prop),
        graphic_type=b.graphic_type,
        graphic_data=[np.asarray(s, dtype=np.float32) for s in b.shapes],
        algorithm_type=b.generation,
        algorithm_identification=algorithm,
        measurements=measurements or None,
        description=description,
        display_color=colour,
    )


def _measurements(b: _Bucket) -> list[hd.ann.Measurements]:
    """The source group's measurements for the kept annotations; certainty as edited."""
    assert b.source is not None
    out: list[hd.ann.Measurements] = []
    names, values, units = b.source.get_measurements()
    has_certainty = False
    for j, (name, unit) in enumerate(zip(names, units, strict=True)):
        if name.value == CERTAINTY.value and name.scheme_designator == CERTAINTY.scheme:
            column = np.asarray(b.certainty, dtype=np.float32)
            has_certainty = True
        else:
            column = np.asarray(
                [values[r, j] if r is not None else np.nan for r in b.rows], dtype=np.float32
            )
        if np.any(~np.isnan(column)):
            out.append(hd.ann.Measurements(name=name, values=column, unit=unit))
    column = np.asarray(b.certainty, dtype=np.float32)
    if not has_certainty and np.any(~np.isnan(column)):
        out.append(
            hd.ann.Measurements(
                name=_concept(Code(CERTAINTY.value, CERTAINTY.scheme, CERTAINTY.meaning)),
                values=column,
                unit=_UNITY,
            )
        )
    return out


def _certainty(g: hd.ann.AnnotationGroup) -> np.ndarray | None:
    names, values, _units = g.get_measurements()
    for j, name in enumerate(names):
        if name.value == CERTAINTY.value and name.scheme_designator == CERTAINTY.scheme:
            return np.asarray(values[:, j], dtype=np.float64)
    return None


# -- references ----------------------------------------------------------------------------
def _source_stub(original: Dataset) -> Dataset:
    """The source image as highdicom needs it: its UIDs (from the original's references)
    and the patient, study and specimen attributes, which the original carries too."""
    image = (original.get("ReferencedImageSequence") or [None])[0]
    series_uid = None
    for series in original.get("ReferencedSeriesSequence") or []:
        for item in series.get("ReferencedInstanceSequence") or []:
            if str(item.ReferencedSOPClassUID) == ANN_SOP_CLASS:
                continue
            if image is None or item.ReferencedSOPInstanceUID == image.ReferencedSOPInstanceUID:
                image = image or item
                series_uid = str(series.SeriesInstanceUID)
    if image is None or series_uid is None:
        raise ValueError("original names no source image in its Common Instance Reference")
    stub = Dataset()
    for elem in original:
        if elem.keyword in _SKIP or elem.tag.group in (0x0002, 0x006A):
            continue
        stub.add(copy.deepcopy(elem))
    stub.SOPClassUID = image.ReferencedSOPClassUID
    stub.SOPInstanceUID = image.ReferencedSOPInstanceUID
    stub.SeriesInstanceUID = series_uid
    stub.Modality = "SM"
    if "FrameOfReferenceUID" not in stub:  # highdicom compares it; 2D output does not hold it
        stub.FrameOfReferenceUID = hd.UID()
    return stub


_SKIP = frozenset(
    {
        "ReferencedSeriesSequence",
        "ReferencedImageSequence",
        "ContributingEquipmentSequence",
        "Manufacturer",
        "ManufacturerModelName",
        "SoftwareVersions",
        "DeviceSerialNumber",
    }
)


def _reference_original(edited: Dataset, original: Dataset) -> None:
    """List the original ANN in the Common Instance Reference Module (the supersede rule)."""
    item = Dataset()
    item.ReferencedSOPClassUID = ANN_SOP_CLASS
    item.ReferencedSOPInstanceUID = str(original.SOPInstanceUID)
    for series in edited.ReferencedSeriesSequence:
        if series.SeriesInstanceUID == original.SeriesInstanceUID:
            series.ReferencedInstanceSequence.append(item)
            return
    series = Dataset()
    series.SeriesInstanceUID = str(original.SeriesInstanceUID)
    series.ReferencedInstanceSequence = [item]
    edited.ReferencedSeriesSequence.append(series)


# -- helpers -------------------------------------------------------------------------------
def _fit(text: str, suffix: str = "") -> str:
    """``text`` + ``suffix`` within VR LO; a suffix already there is not added again."""
    for old in (EDITED, ADDED):
        if suffix and text.endswith(old):
            text = text[: -len(old)]
    return text[: _LO - len(suffix)].rstrip() + suffix


def _key(c: Code) -> tuple[str, str]:
    return (c.value, c.scheme)


def _code(c: hd.sr.CodedConcept) -> Code:
    return Code(str(c.value), str(c.scheme_designator), str(c.meaning))


def _concept(c: Code) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(c.value, c.scheme, c.meaning)
