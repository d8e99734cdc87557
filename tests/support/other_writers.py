"""SRs as other software writes them, for the reader and fuzz tests.

- highdicom-built TID 1500 documents of every shape the reader supports (TID 1410
  planar ROIs with each SCOORD / SCOORD3D graphic type, TID 1411 volumetric ROIs,
  TID 1501 groups, an image library);
- dcmqi's ``tid1500writer`` (the reference writer behind large public archives),
  run on a small synthetic CT series and a highdicom SEG written to a folder;
- documents of other templates: Basic Text SR, Enhanced SR (TID 2000-like) and a
  Key Object Selection document.

Everything is deterministic: UIDs derive from fixed names.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as pcodes
from pydicom.uid import generate_uid

ALGORITHM = hd.sr.AlgorithmIdentification(name="VendorNet", version="7.3")
LESION = hd.sr.CodedConcept("52988006", "SCT", "Lesion")
NODULE = hd.sr.CodedConcept("27925004", "SCT", "Nodule")
LUNG = hd.sr.CodedConcept("39607008", "SCT", "Lung")
LIVER = hd.sr.CodedConcept("10200004", "SCT", "Liver")
MM = hd.sr.CodedConcept("mm", "UCUM", "millimeter")
URGENCY = hd.sr.CodedConcept("URGENCY", "99AIRC", "AI result urgency")
CRITICAL = hd.sr.CodedConcept("CRITICAL", "99AIRC", "Critical")
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def uid(*parts: str) -> str:
    return generate_uid(entropy_srcs=["other-writers", *parts])


# -- images ------------------------------------------------------------------------
def ct_series(count: int = 3, tag: str = "ct") -> list[Dataset]:
    """``count`` slices of pydicom's 128x128 example CT, 5 mm apart, in one series."""
    slices = []
    for k in range(count):
        ds = copy.deepcopy(pydicom.examples.ct)
        ds.StudyInstanceUID = uid(tag, "study")
        ds.SeriesInstanceUID = uid(tag, "series")
        ds.FrameOfReferenceUID = uid(tag, "frame-of-reference")
        ds.SOPInstanceUID = uid(tag, "image", str(k))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-158.0, -179.0, -75.0 + 5.0 * k]
        ds.SliceLocation = -75.0 + 5.0 * k
        slices.append(ds)
    return slices


def multiframe_image(image: Dataset, frames: int = 4) -> Dataset:
    """``image`` as a multi-frame object (only its frame count matters to an SR)."""
    ds = copy.deepcopy(image)
    ds.SOPInstanceUID = uid("multiframe", str(image.SOPInstanceUID))
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.NumberOfFrames = frames
    ds.PixelData = bytes(ds.PixelData) * frames
    return ds


def segmentation(series: Sequence[Dataset]) -> hd.seg.Segmentation:
    """A binary SEG of ``series`` with two segments (a nodule and a liver)."""
    shape = (len(series), int(series[0].Rows), int(series[0].Columns))
    mask = np.zeros((*shape, 2), dtype=bool)
    mask[len(series) // 2, 40:60, 50:70, 0] = True
    mask[:, 70:100, 20:60, 1] = True
    algorithm = hd.AlgorithmIdentificationSequence(
        name="SegNet", version="1.0", family=pcodes.DCM.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=label,
            segmented_property_category=pcodes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=prop,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for n, label, prop in ((1, "Nodule", NODULE), (2, "Liver", LIVER))
    ]
    return hd.seg.Segmentation(
        source_images=list(series),
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=uid("seg", "series", str(series[0].SeriesInstanceUID)),
        series_number=50,
        sop_instance_uid=uid("seg", "sop", str(series[0].SeriesInstanceUID)),
        instance_number=1,
        manufacturer="Seg Inc",
        manufacturer_model_name="SegNet",
        software_versions="1.0",
        device_serial_number="1",
    )


# -- highdicom TID 1500 ---------------------------------------------------------------
def tracking(name: str) -> hd.sr.TrackingIdentifier:
    return hd.sr.TrackingIdentifier(uid=uid("tracking", name), identifier=name)


def source_image(image: Dataset, frames: Sequence[int] | None = None) -> hd.sr.SourceImageForRegion:
    return hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=image.SOPClassUID,
        referenced_sop_instance_uid=image.SOPInstanceUID,
        referenced_frame_numbers=list(frames) if frames else None,
    )


def planar_group(
    name: str,
    region: hd.sr.ImageRegion | hd.sr.ImageRegion3D | None = None,
    *,
    segment: hd.sr.ReferencedSegmentationFrame | None = None,
    **kwargs: Any,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    kwargs.setdefault("finding_type", LESION)
    kwargs.setdefault("algorithm_id", ALGORITHM)
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking(name),
        referenced_region=region,
        referenced_segment=segment,
        **kwargs,
    )


def report(
    groups: Sequence[Any],
    evidence: Sequence[Dataset],
    *,
    library: bool = False,
    sop_class: type[hd.sr.Comprehensive3DSR | hd.sr.EnhancedSR] = hd.sr.Comprehensive3DSR,
    tag: str = "report",
) -> Dataset:
    """A TID 1500 document holding ``groups``; ``library`` adds a TID 1600 image library."""
    observer = hd.sr.ObserverContext(
        observer_type=pcodes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=uid("device"), name="VendorNet", manufacturer_name="Vendor Inc"
        ),
    )
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=pcodes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=list(groups),
        referenced_images=list(evidence) if library else None,
    )
    return sop_class(
        evidence=list(evidence),
        content=content[0],
        series_instance_uid=uid(tag, "sr-series"),
        series_number=100,
        sop_instance_uid=uid(tag, "sr"),
        instance_number=1,
        manufacturer="Vendor Inc",
        manufacturer_model_name="VendorNet Station",
        software_versions="7.3",
    )


def measurement(
    name: hd.sr.CodedConcept | pydicom.sr.coding.Code,
    value: float,
    unit: hd.sr.CodedConcept,
    **kwargs: Any,
) -> hd.sr.Measurement:
    return hd.sr.Measurement(name=name, value=value, unit=unit, **kwargs)


def to_bytes(ds: Dataset) -> bytes:
    """Part 10 bytes of ``ds`` (as an archive returns them)."""
    from io import BytesIO

    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# -- dcmqi ------------------------------------------------------------------------------
def tid1500writer() -> str | None:
    """The dcmqi binary next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).with_name("tid1500writer")
    return str(beside) if beside.exists() else shutil.which("tid1500writer")


def _code(c: hd.sr.CodedConcept) -> dict[str, str]:
    return {
        "CodeValue": c.value,
        "CodingSchemeDesignator": c.scheme_designator,
        "CodeMeaning": c.meaning,
    }


HU = hd.sr.CodedConcept("[hnsf'U]", "UCUM", "Hounsfield unit")
ATTENUATION = hd.sr.CodedConcept("112031", "DCM", "Attenuation Coefficient")
VOLUME = hd.sr.CodedConcept("118565006", "SCT", "Volume")
MM3 = hd.sr.CodedConcept("mm3", "UCUM", "cubic millimeter")
MEAN = hd.sr.CodedConcept("373098007", "SCT", "Mean")
MAXIMUM = hd.sr.CodedConcept("56851009", "SCT", "Maximum")
DCMQI_TRACKING_UID = "1.2.826.0.1.3680043.8.498.4242.1"


def dcmqi_metadata(series: Sequence[Dataset], seg: Dataset) -> dict[str, Any]:
    """tid1500writer's JSON input (dcmqi doc/schemas/sr-tid1500-schema.json).

    Two measurement groups on the SEG's two segments: the first with a Tracking UID
    and the algorithm's TID 4019 in its measurement, the second without either (dcmqi
    makes up the UID), with Mean and Maximum of one concept and a text evaluation.
    """
    source_series = str(series[0].SeriesInstanceUID)
    seg_uid = str(seg.SOPInstanceUID)
    return {
        "SeriesDescription": "AI measurements",
        "SeriesNumber": "1001",
        "InstanceNumber": "1",
        "compositeContext": ["seg.dcm"],
        "imageLibrary": [f"ct{k}.dcm" for k in range(len(series))],
        "observerContext": {
            "ObserverType": "DEVICE",
            "DeviceObserverUID": uid("dcmqi", "device"),
            "DeviceObserverName": "SegNet",
            "DeviceObserverManufacturer": "Seg Inc",
        },
        "VerificationFlag": "UNVERIFIED",
        "CompletionFlag": "COMPLETE",
        "activitySession": "1",
        "timePoint": "1",
        "procedureReported": _code(
            hd.sr.CodedConcept("25045-6", "LN", "CT unspecified body region")
        ),
        "Measurements": [
            {
                "TrackingIdentifier": "Nodule 1",
                "TrackingUniqueIdentifier": DCMQI_TRACKING_UID,
                "ReferencedSegment": 1,
                "SourceSeriesForImageSegmentation": source_series,
                "segmentationSOPInstanceUID": seg_uid,
                "Finding": _code(NODULE),
                "FindingSite": _code(LUNG),
                "measurementItems": [
                    {
                        "value": "1234.5",
                        "quantity": _code(VOLUME),
                        "units": _code(MM3),
                        "measurementAlgorithmIdentification": {
                            "AlgorithmName": "SegNet",
                            "AlgorithmVersion": "1.0",
                        },
                    },
                    {
                        "value": "87",
                        "quantity": {
                            "CodeValue": "111012",
                            "CodingSchemeDesignator": "DCM",
                            "CodeMeaning": "Certainty of Finding",
                        },
                        "units": {
                            "CodeValue": "%",
                            "CodingSchemeDesignator": "UCUM",
                            "CodeMeaning": "%",
                        },
                    },
                ],
                "qualitativeEvaluations": [
                    {"conceptCode": _code(URGENCY), "conceptValue": _code(CRITICAL)}
                ],
            },
            {
                "TrackingIdentifier": "Liver",
                "ReferencedSegment": 2,
                "SourceSeriesForImageSegmentation": source_series,
                "segmentationSOPInstanceUID": seg_uid,
                "Finding": _code(hd.sr.CodedConcept("113343008", "SCT", "Organ")),
                "FindingSite": _code(LIVER),
                "measurementItems": [
                    {
                        "value": "37.3289",
                        "quantity": _code(ATTENUATION),
                        "units": _code(HU),
                        "derivationModifier": _code(MEAN),
                    },
                    {
                        "value": "221",
                        "quantity": _code(ATTENUATION),
                        "units": _code(HU),
                        "derivationModifier": _code(MAXIMUM),
                    },
                    {"value": "NaN", "quantity": _code(VOLUME), "units": _code(MM3)},
                ],
                "qualitativeEvaluations": [
                    {
                        "conceptCode": {
                            "CodeValue": "123",
                            "CodingSchemeDesignator": "99TEST",
                            "CodeMeaning": "Texture",
                        },
                        "conceptValue": "coarse",
                    }
                ],
            },
        ],
    }


def dcmqi_sr(folder: Path) -> tuple[Dataset, list[Dataset], Dataset]:
    """(SR written by tid1500writer, the CT series, the SEG), all written under ``folder``.

    Raises RuntimeError with dcmqi's output when the writer is missing or fails.
    """
    writer = tid1500writer()
    if writer is None:
        raise RuntimeError("dcmqi's tid1500writer is not installed (pip install dcmqi)")
    folder.mkdir(parents=True, exist_ok=True)
    series = ct_series(3, tag="dcmqi")
    for k, image in enumerate(series):
        image.save_as(folder / f"ct{k}.dcm", enforce_file_format=True)
    seg = segmentation(series)
    seg.save_as(folder / "seg.dcm")
    (folder / "meta.json").write_text(json.dumps(dcmqi_metadata(series, seg), indent=1))
    run = subprocess.run(
        [
            writer,
            "--inputMetadata",
            "meta.json",
            "--inputImageLibraryDirectory",
            ".",
            "--inputCompositeContextDirectory",
            ".",
            "--outputDICOM",
            "sr.dcm",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if run.returncode != 0 or not (folder / "sr.dcm").exists():
        raise RuntimeError(f"tid1500writer failed ({run.returncode}): {run.stdout}\n{run.stderr}")
    return pydicom.dcmread(folder / "sr.dcm"), series, seg


# -- other templates ------------------------------------------------------------------
def _container(
    name: hd.sr.CodedConcept | pydicom.sr.coding.Code, items: Sequence[Any], **kw: Any
) -> Any:
    item = hd.sr.ContainerContentItem(name=name, **kw)
    item.ContentSequence = hd.sr.ContentSequence(list(items))
    return item


def _finding_code(value: hd.sr.CodedConcept) -> hd.sr.CodeContentItem:
    return hd.sr.CodeContentItem(
        name=pcodes.DCM.Finding,
        value=value,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )


def _report_root(children: Sequence[Any]) -> Any:
    return _container(
        hd.sr.CodedConcept("18748-4", "LN", "Diagnostic imaging report"),
        children,
        template_id="2000",
    )


def basic_text_sr(image: Dataset) -> Dataset:
    """A Basic Text SR (TID 2000-like): text findings, one coded finding, an image reference."""
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    findings = _container(
        pcodes.DCM.Findings,
        [
            hd.sr.TextContentItem(
                name=pcodes.DCM.Finding,
                value="Small nodule in the right upper lobe.",
                relationship_type=contains,
            ),
            _finding_code(NODULE),
            hd.sr.ImageContentItem(
                name=pcodes.DCM.SourceOfMeasurement,
                referenced_sop_class_uid=image.SOPClassUID,
                referenced_sop_instance_uid=image.SOPInstanceUID,
                relationship_type=contains,
            ),
        ],
        relationship_type=contains,
    )
    impression = hd.sr.TextContentItem(
        name=pcodes.DCM.Impression, value="Follow up in 3 months.", relationship_type=contains
    )
    sr = hd.sr.EnhancedSR(
        evidence=[image],
        content=_report_root([findings, impression]),
        series_instance_uid=uid("basic-text", "series"),
        series_number=200,
        sop_instance_uid=uid("basic-text", "sr"),
        instance_number=1,
        manufacturer="Reporting Inc",
    )
    sr.SOPClassUID = BASIC_TEXT_SR
    sr.file_meta.MediaStorageSOPClassUID = BASIC_TEXT_SR
    return sr


def enhanced_sr(image: Dataset, *, coded: bool = True) -> Dataset:
    """An Enhanced SR (TID 2000-like) with a coded finding that has a region and a size.

    ``coded=False`` leaves out the coded finding: only a region and a number remain.
    """
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    region = hd.sr.ScoordContentItem(
        name=pcodes.DCM.ImageRegion,
        graphic_type=hd.sr.GraphicTypeValues.CIRCLE,
        graphic_data=np.array([[64.0, 64.0], [64.0, 74.0]]),
        relationship_type=hd.sr.RelationshipTypeValues.INFERRED_FROM,
    )
    region.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.ImageContentItem(
                name=pcodes.DCM.SourceOfMeasurement,
                referenced_sop_class_uid=image.SOPClassUID,
                referenced_sop_instance_uid=image.SOPInstanceUID,
                relationship_type=hd.sr.RelationshipTypeValues.SELECTED_FROM,
            )
        ]
    )
    size = hd.sr.NumContentItem(
        name=pcodes.SCT.Diameter,
        value=21.0,
        unit=MM,
        relationship_type=hd.sr.RelationshipTypeValues.HAS_PROPERTIES,
    )
    if coded:
        finding = _finding_code(hd.sr.CodedConcept("4147007", "SCT", "Mass"))
        finding.ContentSequence = hd.sr.ContentSequence([region, size])
        items = [finding]
    else:
        size.RelationshipType = "CONTAINS"
        region.RelationshipType = "CONTAINS"
        items = [size, region]
    findings = _container(pcodes.DCM.Findings, items, relationship_type=contains)
    return hd.sr.EnhancedSR(
        evidence=[image],
        content=_report_root([findings]),
        series_instance_uid=uid("enhanced", str(coded), "series"),
        series_number=201,
        sop_instance_uid=uid("enhanced", str(coded), "sr"),
        instance_number=1,
        manufacturer="Reporting Inc",
    )


def key_object_selection(images: Sequence[Dataset]) -> Dataset:
    """A Key Object Selection document (TID 2010) flagging ``images`` "Of Interest"."""
    content = hd.ko.KeyObjectSelection(
        document_title=pcodes.DCM.OfInterest,
        referenced_objects=list(images),
        description="Images with the lesion",
    )
    return hd.ko.KeyObjectSelectionDocument(
        evidence=list(images),
        content=content,
        series_instance_uid=uid("kos", "series"),
        series_number=300,
        sop_instance_uid=uid("kos", "sop"),
        instance_number=1,
        manufacturer="PACS Inc",
    )
