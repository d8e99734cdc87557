"""The SR reader on objects written outside the demo code.

These SRs are built here with highdicom (and by hand with pydicom), the way a
third-party AI vendor would, so the reader is not only tested against our own
writer.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as pcodes
from pydicom.uid import generate_uid

from app.domain import Urgency
from app.results.sr_reader import read_ai_result


@pytest.fixture(scope="module")
def ct() -> Dataset:
    ds = pydicom.examples.ct
    return ds


def _third_party_sr(ct: Dataset) -> hd.sr.Comprehensive3DSR:
    """A vendor-style TID 1500: percent certainty, no urgency, SCOORD3D and SCOORD regions."""
    tracking_2d = generate_uid()
    tracking_3d = generate_uid()
    algo = hd.sr.AlgorithmIdentification(name="VendorNet", version="7.3")
    group_2d = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_2d, identifier="lesion 1"),
        referenced_region=hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=np.array([[10.0, 10.0], [40.0, 10.0], [40.0, 30.0], [10.0, 10.0]]),
            source_image=hd.sr.SourceImageForRegion(
                referenced_sop_class_uid=ct.SOPClassUID,
                referenced_sop_instance_uid=ct.SOPInstanceUID,
            ),
        ),
        finding_type=hd.sr.CodedConcept("4147007", "SCT", "Mass"),
        finding_sites=[hd.sr.FindingSite(hd.sr.CodedConcept("39607008", "SCT", "Lung"))],
        algorithm_id=algo,
        measurements=[
            hd.sr.Measurement(
                name=hd.sr.CodedConcept("111012", "DCM", "Certainty of Finding"),
                value=87.0,
                unit=hd.sr.CodedConcept("%", "UCUM", "percent"),
            ),
            hd.sr.Measurement(
                name=pcodes.SCT.Diameter,
                value=12.5,
                unit=hd.sr.CodedConcept("mm", "UCUM", "millimeter"),
            ),
        ],
    )
    group_3d = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_3d, identifier="lesion 2"),
        referenced_region=hd.sr.ImageRegion3D(
            graphic_type=hd.sr.GraphicTypeValues3D.POINT,
            graphic_data=np.array([[1.5, -20.25, 30.0]]),
            frame_of_reference_uid=ct.FrameOfReferenceUID,
        ),
        finding_type=hd.sr.CodedConcept("27925004", "SCT", "Nodule"),
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                hd.sr.CodedConcept("URGENCY", "99AIRC", "AI result urgency"),
                hd.sr.CodedConcept("CRITICAL", "99AIRC", "Critical"),
            )
        ],
    )
    observer = hd.sr.ObserverContext(
        observer_type=pcodes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), manufacturer_name="Vendor Inc"
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=pcodes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[group_2d, group_3d],
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[ct],
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=100,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="Vendor Inc",
    )


def test_reads_third_party_tid1500(ct: Dataset) -> None:
    sr = _third_party_sr(ct)
    result = read_ai_result(sr)
    assert result.readable and result.template == "TID1500" and result.editable
    assert len(result.findings) == 2
    mass, nodule = result.findings
    assert mass.finding.value == "4147007" and mass.site and mass.site.meaning == "Lung"
    assert mass.certainty == pytest.approx(0.87)
    assert mass.urgency is Urgency.ROUTINE  # no urgency evaluation: routine
    assert mass.algorithm.name == "VendorNet" and mass.algorithm.version == "7.3"
    assert mass.algorithm.manufacturer == "Vendor Inc"
    assert [m.concept.meaning for m in mass.measurements] == ["Diameter"]
    assert mass.measurements[0].value == pytest.approx(12.5)
    assert mass.measurements[0].unit.value == "mm"
    (region,) = mass.regions
    assert region.graphic_type == "POLYLINE" and region.referenced_sop_uid == ct.SOPInstanceUID
    assert region.coordinates[1] == (40.0, 10.0)
    assert nodule.urgency is Urgency.CRITICAL and nodule.certainty is None
    (point,) = nodule.regions
    assert point.is_3d and point.frame_of_reference_uid == ct.FrameOfReferenceUID
    assert point.coordinates == ((1.5, -20.25, 30.0),)
    assert all(f.source_sop_uid == sr.SOPInstanceUID for f in result.findings)


def test_tid1500_survives_file_round_trip(ct: Dataset, tmp_path) -> None:
    sr = _third_party_sr(ct)
    path = tmp_path / "sr.dcm"
    sr.save_as(path)
    again = read_ai_result(pydicom.dcmread(path))
    assert again.findings == read_ai_result(sr).findings


def test_non_tid1500_sr_is_read_only(ct: Dataset) -> None:
    """A Comprehensive SR with another template keeps its coded finding and region, read-only."""
    sr = _third_party_sr(ct)
    sr.ContentTemplateSequence[0].TemplateIdentifier = "2000"
    sr.ConceptNameCodeSequence[0].CodeValue = "18748-4"
    sr.ConceptNameCodeSequence[0].CodingSchemeDesignator = "LN"
    sr.ConceptNameCodeSequence[0].CodeMeaning = "Diagnostic imaging report"
    result = read_ai_result(sr)
    assert result.readable and result.template == "TID2000" and not result.editable
    assert [f.finding.meaning for f in result.findings] == ["Mass", "Nodule"]
    assert not any(f.editable for f in result.findings)


def test_malformed_sr_is_marked_unreadable(ct: Dataset) -> None:
    sr = _third_party_sr(ct)
    del sr.ContentSequence
    result = read_ai_result(sr)
    assert not result.readable and "content" in result.problem
    broken = _third_party_sr(ct)
    # A measurement that lost its numeric value.
    group = broken.ContentSequence[-1].ContentSequence[0]
    num = next(i for i in group.ContentSequence if i.ValueType == "NUM")
    del num.MeasuredValueSequence[0].NumericValue
    result = read_ai_result(broken)
    assert not result.readable and result.problem
