"""SRs that other software writes read correctly (issue 3 item 5).

- highdicom TID 1500 documents of every shape the reader supports;
- an SR from dcmqi's ``tid1500writer``, the reference writer behind large public
  archives, on a small CT series and a SEG;
- other templates (Basic Text SR, Enhanced SR, Key Object Selection), read-only.

Each SR is also read back from its Part 10 bytes (``read_ai_result_bytes``), the way
a retrieved instance is read.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as pcodes

from app.domain import AIResult, Finding, Urgency
from app.results.sr_reader import read_ai_result, read_ai_result_bytes
from tests.support import other_writers as ow

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


@pytest.fixture(scope="module")
def series() -> list[Dataset]:
    return ow.ct_series(3)


def _read(sr: Dataset) -> AIResult:
    """The result from the dataset, checked against the one from its bytes."""
    result = read_ai_result(sr)
    assert result.readable, result.problem
    assert read_ai_result_bytes(ow.to_bytes(sr)) == result
    return result


def _check_common(finding: Finding, sr: Dataset, name: str) -> None:
    """What every highdicom group here carries: tracking, finding type, algorithm, source."""
    assert finding.tracking_uid == ow.uid("tracking", name)
    assert finding.tracking_id == name
    assert finding.finding.value == ow.LESION.value and finding.finding.scheme == "SCT"
    assert finding.algorithm.name == "VendorNet" and finding.algorithm.version == "7.3"
    assert finding.algorithm.manufacturer == "Vendor Inc"
    assert finding.source_sop_uid == sr.SOPInstanceUID
    assert finding.template == "TID1500" and finding.editable


# -- TID 1410 planar ROIs -----------------------------------------------------------------
def _drawn_as(kind: str) -> str:
    """highdicom refuses MULTIPOINT in TID 1410; it is drawn as POLYLINE and retyped after."""
    return "POLYLINE" if kind == "MULTIPOINT" else kind


def _retype_multipoint(sr: Dataset) -> None:
    """Make the MULTIPOINT group's region MULTIPOINT, as a less strict writer would."""
    for group in sr.ContentSequence[-1].ContentSequence:
        items = group.ContentSequence
        if any(getattr(i, "TextValue", "") == "MULTIPOINT" for i in items):
            for item in items:
                if item.ValueType in ("SCOORD", "SCOORD3D"):
                    item.GraphicType = "MULTIPOINT"


PLANAR_2D = {
    "POINT": [[10.5, 20.25]],
    "MULTIPOINT": [[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]],
    "POLYLINE": [[10.0, 10.0], [40.0, 10.0], [40.0, 30.0], [10.0, 10.0]],
    "CIRCLE": [[64.0, 64.0], [64.0, 74.0]],
    "ELLIPSE": [[40.0, 64.0], [88.0, 64.0], [64.0, 50.0], [64.0, 78.0]],
}


def test_planar_rois_of_each_2d_graphic_type(series: list[Dataset]) -> None:
    """Five TID 1410 groups in one document, one per SCOORD graphic type, in order."""
    image = series[1]
    groups = [
        ow.planar_group(
            kind,
            hd.sr.ImageRegion(
                graphic_type=_drawn_as(kind),
                graphic_data=np.array(data),
                source_image=ow.source_image(image),
            ),
            finding_sites=[hd.sr.FindingSite(ow.LUNG)],
        )
        for kind, data in PLANAR_2D.items()
    ]
    sr = ow.report(groups, series, tag="planar-2d")
    _retype_multipoint(sr)
    result = _read(sr)
    assert result.template == "TID1500" and result.editable
    assert result.algorithm is not None and result.algorithm.name == "VendorNet"
    assert [f.tracking_id for f in result.findings] == list(PLANAR_2D)
    for finding, (kind, data) in zip(result.findings, PLANAR_2D.items(), strict=True):
        _check_common(finding, sr, kind)
        assert finding.site is not None and finding.site.meaning == "Lung"
        assert finding.certainty is None and finding.urgency is Urgency.ROUTINE
        assert finding.measurements == ()
        (region,) = finding.regions
        assert region.graphic_type == kind and not region.is_3d
        assert region.coordinates == tuple(tuple(p) for p in data)
        assert region.referenced_sop_uid == image.SOPInstanceUID
        assert region.referenced_sop_class_uid == image.SOPClassUID
        assert region.referenced_frame is None
    assert len({f.tracking_uid for f in result.findings}) == len(PLANAR_2D)


PLANAR_3D = {
    "POINT": [[1.5, -20.25, -70.0]],
    "MULTIPOINT": [[1.0, 2.0, -70.0], [3.0, 4.0, -70.0]],
    "POLYLINE": [[0.0, 0.0, -70.0], [10.0, 0.0, -70.0], [10.0, 10.0, -70.0]],
    "POLYGON": [[0.0, 0.0, -70.0], [10.0, 0.0, -70.0], [10.0, 10.0, -70.0], [0.0, 0.0, -70.0]],
    "ELLIPSE": [[-10.0, 0.0, -70.0], [10.0, 0.0, -70.0], [0.0, -5.0, -70.0], [0.0, 5.0, -70.0]],
}


def test_planar_rois_in_3d_coordinates(series: list[Dataset]) -> None:
    """TID 1410 with SCOORD3D (highdicom ImageRegion3D), POLYGON included."""
    for_uid = series[0].FrameOfReferenceUID
    groups = [
        ow.planar_group(
            kind,
            hd.sr.ImageRegion3D(
                graphic_type=_drawn_as(kind),
                graphic_data=np.array(data),
                frame_of_reference_uid=for_uid,
            ),
        )
        for kind, data in PLANAR_3D.items()
    ]
    sr = ow.report(groups, series, tag="planar-3d")
    _retype_multipoint(sr)
    result = _read(sr)
    for finding, (kind, data) in zip(result.findings, PLANAR_3D.items(), strict=True):
        _check_common(finding, sr, kind)
        (region,) = finding.regions
        assert region.is_3d and region.frame_of_reference_uid == for_uid
        assert region.graphic_type == kind
        assert region.coordinates == tuple(tuple(p) for p in data)
        assert region.referenced_sop_uid is None


def test_referenced_frame_numbers_of_a_multiframe_image(series: list[Dataset]) -> None:
    """One frame, and several frames (the first is the one shown)."""
    image = ow.multiframe_image(series[0])
    groups = [
        ow.planar_group(
            name,
            hd.sr.ImageRegion(
                graphic_type="POINT",
                graphic_data=np.array([[5.0, 6.0]]),
                source_image=ow.source_image(image, frames),
            ),
        )
        for name, frames in (("frame 3", [3]), ("frames 2 and 4", [2, 4]))
    ]
    sr = ow.report(groups, [image], tag="frames")
    one, several = _read(sr).findings
    assert one.regions[0].referenced_frame == 3
    assert several.regions[0].referenced_frame == 2
    assert one.regions[0].referenced_sop_uid == image.SOPInstanceUID


def test_planar_roi_on_a_segmentation_frame(series: list[Dataset]) -> None:
    """TID 1410 that points at a SEG frame instead of drawing a region: no region, the rest read."""
    seg = ow.segmentation(series)
    segment = hd.sr.ReferencedSegmentationFrame(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        frame_number=1,
        segment_number=1,
        source_image=hd.sr.SourceImageForSegmentation(
            series[1].SOPClassUID, series[1].SOPInstanceUID
        ),
    )
    group = ow.planar_group(
        "segment frame",
        segment=segment,
        measurements=[
            ow.measurement(pcodes.SCT.Area, 120.5, hd.sr.CodedConcept("mm2", "UCUM", "mm2"))
        ],
    )
    sr = ow.report([group], [*series, seg], tag="segframe")
    (finding,) = _read(sr).findings
    _check_common(finding, sr, "segment frame")
    assert finding.regions == ()
    assert [(m.concept.meaning, m.value, m.unit.value) for m in finding.measurements] == [
        ("Area", 120.5, "mm2")
    ]


# -- TID 1411 volumetric ROIs -------------------------------------------------------------
def test_volumetric_roi_with_volume_surfaces(series: list[Dataset]) -> None:
    """An ELLIPSOID surface, a surface of POLYGONs on three slices, and regions on images."""
    for_uid = series[0].FrameOfReferenceUID
    source = hd.sr.SourceSeriesForSegmentation(series[0].SeriesInstanceUID)
    ellipsoid = [
        [-10.0, 0.0, -70.0], [10.0, 0.0, -70.0],
        [0.0, -5.0, -70.0], [0.0, 5.0, -70.0],
        [0.0, 0.0, -72.0], [0.0, 0.0, -68.0],
    ]  # fmt: skip
    polygons = [
        np.array([[0.0, 0.0, z], [8.0, 0.0, z], [8.0, 8.0, z], [0.0, 0.0, z]])
        for z in (-75.0, -70.0, -65.0)
    ]
    groups = [
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=ow.tracking("ellipsoid"),
            referenced_volume_surface=hd.sr.VolumeSurface(
                graphic_type="ELLIPSOID",
                graphic_data=np.array(ellipsoid),
                frame_of_reference_uid=for_uid,
                source_series=source,
            ),
            finding_type=ow.LESION,
            algorithm_id=ow.ALGORITHM,
            measurements=[
                ow.measurement(pcodes.SCT.Volume, 0.42, hd.sr.CodedConcept("ml", "UCUM", "ml"))
            ],
        ),
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=ow.tracking("polygons"),
            referenced_volume_surface=hd.sr.VolumeSurface(
                graphic_type="POLYGON",
                graphic_data=polygons,
                frame_of_reference_uid=for_uid,
                source_series=source,
            ),
            finding_type=ow.LESION,
            algorithm_id=ow.ALGORITHM,
        ),
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=ow.tracking("image regions"),
            referenced_regions=[
                hd.sr.ImageRegion(
                    graphic_type="POLYLINE",
                    graphic_data=np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 10.0]]),
                    source_image=ow.source_image(image),
                )
                for image in series
            ],
            finding_type=ow.LESION,
            algorithm_id=ow.ALGORITHM,
        ),
    ]
    sr = ow.report(groups, series, tag="volumetric")
    ellipsoid_f, polygons_f, regions_f = _read(sr).findings
    for finding, name in (
        (ellipsoid_f, "ellipsoid"),
        (polygons_f, "polygons"),
        (regions_f, "image regions"),
    ):
        _check_common(finding, sr, name)
    (surface,) = ellipsoid_f.regions
    assert surface.graphic_type == "ELLIPSOID" and surface.frame_of_reference_uid == for_uid
    assert surface.coordinates == tuple(tuple(p) for p in ellipsoid)
    assert [(m.concept.meaning, m.value, m.unit.value) for m in ellipsoid_f.measurements] == [
        ("Volume", 0.42, "ml")
    ]
    assert [r.graphic_type for r in polygons_f.regions] == ["POLYGON"] * 3
    assert [r.coordinates[0][2] for r in polygons_f.regions] == [-75.0, -70.0, -65.0]
    assert all(r.is_3d for r in polygons_f.regions)
    assert [r.referenced_sop_uid for r in regions_f.regions] == [s.SOPInstanceUID for s in series]


def test_volumetric_roi_with_referenced_segments(series: list[Dataset]) -> None:
    """TID 1411 on SEG segments: no drawable region (the SEG holds it), the rest read."""
    seg = ow.segmentation(series)
    groups = [
        hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=ow.tracking(name),
            referenced_segment=hd.sr.ReferencedSegment(
                sop_class_uid=seg.SOPClassUID,
                sop_instance_uid=seg.SOPInstanceUID,
                segment_number=number,
                source_series=hd.sr.SourceSeriesForSegmentation(series[0].SeriesInstanceUID),
            ),
            finding_type=ow.LESION,
            finding_sites=[hd.sr.FindingSite(site)],
            algorithm_id=ow.ALGORITHM,
            measurements=[
                ow.measurement(pcodes.SCT.Volume, volume, ow.MM3),
                ow.measurement(ow.ATTENUATION, -35.5, ow.HU, derivation=ow.MEAN),
            ],
        )
        for name, number, site, volume in (
            ("nodule", 1, ow.LUNG, 1234.5),
            ("liver", 2, ow.LIVER, 1.5e6),
        )
    ]
    sr = ow.report(groups, [*series, seg], tag="segments")
    nodule, liver = _read(sr).findings
    _check_common(nodule, sr, "nodule")
    _check_common(liver, sr, "liver")
    assert nodule.site is not None and nodule.site.meaning == "Lung"
    assert liver.site is not None and liver.site.meaning == "Liver"
    assert nodule.regions == () and liver.regions == ()
    assert [(m.concept.meaning, m.value, m.unit.value) for m in liver.measurements] == [
        ("Volume", 1.5e6, "mm3"),
        ("Attenuation Coefficient (Mean)", -35.5, "[hnsf'U]"),
    ]
    # The derivation is display text; the concept stays the standard one.
    assert liver.measurements[1].concept.value == "112031"


# -- TID 1501, measurements, qualitative evaluations ------------------------------------
def test_tid1501_groups_with_units_and_qualitative_evaluations(series: list[Dataset]) -> None:
    """Groups with no region: numbers with their units, certainty, coded evaluations."""
    severity = hd.sr.QualitativeEvaluation(
        hd.sr.CodedConcept("246112005", "SCT", "Severity"),
        hd.sr.CodedConcept("24484000", "SCT", "Severe"),
    )
    urgent = hd.sr.QualitativeEvaluation(
        ow.URGENCY, hd.sr.CodedConcept("URGENT", "99AIRC", "Urgent")
    )
    foreign = hd.sr.QualitativeEvaluation(  # someone else's urgency-like code: not ours, ignored
        hd.sr.CodedConcept("URGENCY", "99OTHER", "Urgency"), ow.CRITICAL
    )
    measurements = [
        ow.measurement(
            hd.sr.CodedConcept("111012", "DCM", "Certainty of Finding"),
            0.66,
            hd.sr.CodedConcept("1", "UCUM", "no units"),
        ),
        ow.measurement(pcodes.SCT.Diameter, 12.5, ow.MM),
        ow.measurement(
            pcodes.SCT.Area, 98.25, hd.sr.CodedConcept("mm2", "UCUM", "square millimeter")
        ),
        ow.measurement(pcodes.SCT.Volume, 3.5, hd.sr.CodedConcept("ml", "UCUM", "milliliter")),
        ow.measurement(ow.ATTENUATION, 42.0, ow.HU),
        ow.measurement(
            hd.sr.CodedConcept("C25463", "NCIt", "Count"),
            3.0,
            hd.sr.CodedConcept("{count}", "UCUM", "count"),
        ),
    ]
    groups = [
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=ow.tracking("numbers"),
            finding_type=ow.LESION,
            finding_sites=[hd.sr.FindingSite(ow.LIVER)],
            algorithm_id=ow.ALGORITHM,
            measurements=measurements,
            qualitative_evaluations=[severity, urgent, foreign],
        ),
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=ow.tracking("evaluations only"),
            finding_type=ow.LESION,
            algorithm_id=ow.ALGORITHM,
            qualitative_evaluations=[
                hd.sr.QualitativeEvaluation(ow.URGENCY, ow.CRITICAL),
                severity,
            ],
        ),
    ]
    sr = ow.report(groups, series, tag="tid1501")
    numbers, evaluations = _read(sr).findings
    _check_common(numbers, sr, "numbers")
    _check_common(evaluations, sr, "evaluations only")
    assert numbers.regions == () and evaluations.regions == ()
    assert numbers.certainty == pytest.approx(0.66)
    assert numbers.urgency is Urgency.URGENT
    assert [(m.concept.meaning, m.value, m.unit.value) for m in numbers.measurements] == [
        ("Diameter", 12.5, "mm"),
        ("Area", 98.25, "mm2"),
        ("Volume", 3.5, "ml"),
        ("Attenuation Coefficient", 42.0, "[hnsf'U]"),
        ("Count", 3.0, "{count}"),
    ]
    assert evaluations.urgency is Urgency.CRITICAL and evaluations.measurements == ()


def test_certainty_in_percent_and_out_of_range(series: list[Dataset]) -> None:
    """87 % is 0.87; a certainty outside 0..1 is kept as a plain number, not as certainty."""
    certainty = hd.sr.CodedConcept("111012", "DCM", "Certainty of Finding")
    groups = [
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=ow.tracking(name),
            finding_type=ow.LESION,
            algorithm_id=ow.ALGORITHM,
            measurements=[ow.measurement(certainty, value, hd.sr.CodedConcept(unit, "UCUM", unit))],
        )
        for name, value, unit in (("percent", 87.0, "%"), ("too big", 87.0, "1"))
    ]
    percent, too_big = _read(ow.report(groups, series, tag="certainty")).findings
    assert percent.certainty == pytest.approx(0.87) and percent.measurements == ()
    assert too_big.certainty is None
    assert [(m.concept.value, m.value) for m in too_big.measurements] == [("111012", 87.0)]


def test_image_library_and_enhanced_sr(series: list[Dataset]) -> None:
    """A TID 1600 image library beside the measurements changes nothing; nor does Enhanced SR."""
    region = hd.sr.ImageRegion(
        graphic_type="POINT",
        graphic_data=np.array([[5.0, 6.0]]),
        source_image=ow.source_image(series[2]),
    )
    plain = _read(ow.report([ow.planar_group("lesion", region)], series, tag="plain"))
    with_library = ow.report(
        [ow.planar_group("lesion", region)], series, library=True, tag="library"
    )
    titles = [i.ConceptNameCodeSequence[0].CodeMeaning for i in with_library.ContentSequence]
    assert "Image Library" in titles
    library = _read(with_library)
    enhanced = _read(
        ow.report(
            [ow.planar_group("lesion", region)],
            series,
            library=True,
            sop_class=hd.sr.EnhancedSR,
            tag="enh",
        )
    )
    assert library.findings[0].regions == plain.findings[0].regions
    assert len(library.findings) == len(enhanced.findings) == 1
    assert enhanced.editable and enhanced.findings[0].regions == plain.findings[0].regions


def test_group_without_tracking_uid_gets_a_unique_one(series: list[Dataset]) -> None:
    """A writer that leaves out Tracking UIDs: every finding still has its own key."""
    region = hd.sr.ImageRegion3D(
        graphic_type="POINT",
        graphic_data=np.array([[0.0, 0.0, -70.0]]),
        frame_of_reference_uid=series[0].FrameOfReferenceUID,
    )
    sr = ow.report([ow.planar_group(f"g{i}", region) for i in range(3)], series, tag="no-uid")
    for group in sr.ContentSequence[-1].ContentSequence:
        group.ContentSequence = [
            i for i in group.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue != "112040"
        ]
    findings = _read(sr).findings
    assert len({f.tracking_uid for f in findings}) == 3
    assert [f.tracking_id for f in findings] == ["g0", "g1", "g2"]


# -- dcmqi ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dcmqi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, list[Dataset], Dataset]:
    if ow.tid1500writer() is None:
        pytest.fail("dcmqi's tid1500writer is not installed (pip install dcmqi: the test extra)")
    return ow.dcmqi_sr(tmp_path_factory.mktemp("dcmqi"))


def test_dcmqi_tid1500writer(dcmqi: tuple[Dataset, list[Dataset], Dataset]) -> None:
    sr, series, seg = dcmqi
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.22"  # dcmqi writes Enhanced SR
    assert sr.Manufacturer == "QIICR"
    result = _read(sr)
    assert result.template == "TID1500" and result.editable
    assert result.study_instance_uid == series[0].StudyInstanceUID
    nodule, liver = result.findings
    assert nodule.tracking_uid == ow.DCMQI_TRACKING_UID and nodule.tracking_id == "Nodule 1"
    assert liver.tracking_id == "Liver"
    assert liver.tracking_uid.startswith(("1.", "2.")) and liver.tracking_uid != nodule.tracking_uid
    assert (nodule.finding.value, nodule.finding.scheme) == ("27925004", "SCT")
    assert nodule.site is not None and nodule.site.meaning == "Lung"
    assert liver.site is not None and liver.site.value == "10200004"
    assert nodule.urgency is Urgency.CRITICAL and liver.urgency is Urgency.ROUTINE
    assert nodule.certainty == pytest.approx(0.87) and liver.certainty is None
    assert [(m.concept.meaning, m.value, m.unit.value) for m in nodule.measurements] == [
        ("Volume", 1234.5, "mm3")
    ]
    # Mean and Maximum of one concept stay apart; the NaN volume was left out by dcmqi.
    assert [(m.concept.meaning, m.value, m.unit.value) for m in liver.measurements] == [
        ("Attenuation Coefficient (Mean)", pytest.approx(37.3289), "[hnsf'U]"),
        ("Attenuation Coefficient (Maximum)", 221.0, "[hnsf'U]"),
    ]
    # TID 4019 inside the nodule's measurement; the device observer for the liver group.
    assert (nodule.algorithm.name, nodule.algorithm.version) == ("SegNet", "1.0")
    assert liver.algorithm.name == "SegNet"
    assert nodule.algorithm.manufacturer == liver.algorithm.manufacturer == "Seg Inc"
    # The regions live in the SEG (TID 1411 Referenced Segment): nothing to draw from the SR.
    assert nodule.regions == () and liver.regions == ()
    assert seg.SOPClassUID == SEG_STORAGE


# -- other templates: read-only -----------------------------------------------------------
def _read_only(sr: Dataset) -> AIResult:
    result = _read(sr)
    assert result.template != "TID1500" and not result.editable
    assert all(not f.editable and f.template == result.template for f in result.findings)
    assert all(f.source_sop_uid == sr.SOPInstanceUID for f in result.findings)
    return result


def test_basic_text_sr_is_read_only(series: list[Dataset]) -> None:
    """Its coded finding is listed; free text is not a finding."""
    sr = ow.basic_text_sr(series[0])
    assert sr.SOPClassUID == ow.BASIC_TEXT_SR
    result = _read_only(sr)
    assert result.template == "TID2000"
    (finding,) = result.findings
    assert (
        finding.finding.meaning == "Nodule" and finding.regions == () and finding.measurements == ()
    )
    assert finding.certainty is None and finding.urgency is Urgency.ROUTINE
    assert finding.algorithm.manufacturer == "Reporting Inc"


def test_enhanced_sr_finding_keeps_its_region_and_size(series: list[Dataset]) -> None:
    result = _read_only(ow.enhanced_sr(series[0]))
    (finding,) = result.findings
    assert finding.finding.meaning == "Mass"
    (region,) = finding.regions
    assert region.graphic_type == "CIRCLE" and region.referenced_sop_uid == series[0].SOPInstanceUID
    assert [(m.concept.meaning, m.value, m.unit.value) for m in finding.measurements] == [
        ("Diameter", 21.0, "mm")
    ]


def test_enhanced_sr_without_coded_finding_is_one_document_finding(series: list[Dataset]) -> None:
    (finding,) = _read_only(ow.enhanced_sr(series[0], coded=False)).findings
    assert finding.finding.meaning == "Diagnostic imaging report"
    assert len(finding.regions) == 1 and len(finding.measurements) == 1


def test_key_object_selection_is_readable_with_no_findings(series: list[Dataset]) -> None:
    result = _read_only(ow.key_object_selection(series))
    assert result.template == "TID2010" and result.findings == ()


def test_read_ai_result_bytes_rejects_what_is_not_dicom() -> None:
    from app.errors import ResultParseError

    with pytest.raises(ResultParseError, match="not a readable DICOM object"):
        read_ai_result_bytes(b"this is not DICOM")
    with pytest.raises(ResultParseError):
        read_ai_result_bytes(b"")
