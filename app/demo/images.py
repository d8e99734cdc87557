"""DICOM image objects for the demo studies: CT and MR slices, a DX radiograph.

Built with pydicom's ``FileDataset`` (file meta and preamble included, so they
can be written with plain ``dcmwrite`` and stored over STOW-RS as they are),
carrying the modules their IODs need (Patient, General Study, General Series,
Frame of Reference, Equipment, Image Plane/Pixel, CT/MR/DX Image, VOI LUT).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
)

from app.demo.phantoms import Volume
from app.demo.radiograph import Radiograph

INSTITUTION = "Demo General Hospital"


@dataclass(frozen=True)
class StudyHeader:
    """Patient and study attributes every instance of one study shares."""

    patient_name: str
    patient_id: str
    birth_date: date
    sex: str
    study_uid: str
    accession: str
    study_id: str
    description: str
    study_datetime: datetime
    priority: str  # Requested Procedure Priority: STAT, HIGH, ROUTINE, ...
    referring: str
    body_part: str

    @property
    def age(self) -> str:
        d, b = self.study_datetime.date(), self.birth_date
        years = d.year - b.year - ((d.month, d.day) < (b.month, b.day))
        return f"{years:03d}Y"


@dataclass(frozen=True)
class SeriesInfo:
    series_uid: str
    number: int
    description: str
    sop_uids: tuple[str, ...]
    frame_of_reference_uid: str = ""


def _dataset(
    header: StudyHeader,
    series: SeriesInfo,
    sop_class: str,
    index: int,
    modality: str,
    acquired: datetime,
) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(series.sop_uids[index])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "AIRC_DEMO_1"
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = series.sop_uids[index]
    ds.InstanceCreationDate = acquired.strftime("%Y%m%d")
    ds.InstanceCreationTime = acquired.strftime("%H%M%S")
    # Patient, General Study, Patient Study
    ds.PatientName = header.patient_name
    ds.PatientID = header.patient_id
    ds.IssuerOfPatientID = "DEMO"
    ds.PatientBirthDate = header.birth_date.strftime("%Y%m%d")
    ds.PatientSex = header.sex
    ds.PatientAge = header.age
    ds.StudyInstanceUID = header.study_uid
    ds.StudyDate = header.study_datetime.strftime("%Y%m%d")
    ds.StudyTime = header.study_datetime.strftime("%H%M%S")
    ds.AccessionNumber = header.accession
    ds.StudyID = header.study_id
    ds.StudyDescription = header.description
    ds.ReferringPhysicianName = header.referring
    ds.RequestedProcedurePriority = header.priority
    # General Series, General Equipment
    ds.Modality = modality
    ds.SeriesInstanceUID = series.series_uid
    ds.SeriesNumber = series.number
    ds.SeriesDescription = series.description
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = acquired.strftime("%H%M%S")
    ds.BodyPartExamined = header.body_part
    ds.Manufacturer = "Demo Imaging"
    ds.InstitutionName = INSTITUTION
    ds.StationName = f"DEMO{modality}1"
    ds.ManufacturerModelName = f"Synthetic {modality}"
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = "1.0"
    # General Image / Acquisition
    ds.InstanceNumber = index + 1
    ds.AcquisitionNumber = 1
    ds.ContentDate = acquired.strftime("%Y%m%d")
    ds.ContentTime = acquired.strftime("%H%M%S")
    ds.AcquisitionDate = ds.ContentDate
    ds.AcquisitionTime = ds.ContentTime
    ds.BurnedInAnnotation = "NO"
    return ds


def _pixels(ds: FileDataset, array: np.ndarray, bits_stored: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = (int(v) for v in array.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if array.dtype == np.int16 else 0
    ds.PixelData = np.ascontiguousarray(array).tobytes()
    ds["PixelData"].VR = "OW"


def _plane(ds: FileDataset, volume: Volume, k: int, series: SeriesInfo) -> None:
    z = volume.z_positions[k]
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.ImagePositionPatient = [round(volume.origin_xy[0], 4), round(volume.origin_xy[1], 4), z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [volume.pixel_spacing, volume.pixel_spacing]
    ds.SliceThickness = volume.slice_thickness
    ds.SliceLocation = z


def ct_images(volume: Volume, header: StudyHeader, series: SeriesInfo) -> list[FileDataset]:
    """One CT Image Storage instance per slice (HU = stored - 1024)."""
    out = []
    start = header.study_datetime + timedelta(seconds=40)
    for k in range(volume.pixels.shape[0]):
        ds = _dataset(header, series, CTImageStorage, k, "CT", start + timedelta(seconds=k // 8))
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        _plane(ds, volume, k, series)
        ds.KVP = 120
        ds.XRayTubeCurrent = 280
        ds.ExposureTime = 1000
        ds.ConvolutionKernel = "H30s"
        ds.ReconstructionDiameter = round(volume.pixel_spacing * volume.pixels.shape[2], 1)
        ds.GantryDetectorTilt = 0
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 80
        ds.WindowCenterWidthExplanation = "BRAIN"
        _pixels(ds, volume.pixels[k], 16)
        out.append(ds)
    return out


def mr_images(volume: Volume, header: StudyHeader, series: SeriesInfo) -> list[FileDataset]:
    """One MR Image Storage instance per slice (axial T2 TSE)."""
    out = []
    start = header.study_datetime + timedelta(minutes=6)
    for k in range(volume.pixels.shape[0]):
        ds = _dataset(header, series, MRImageStorage, k, "MR", start)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        _plane(ds, volume, k, series)
        ds.SpacingBetweenSlices = round(volume.z_positions[1] - volume.z_positions[0], 3)
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "SK"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.SequenceName = "tse2d1_16"
        ds.RepetitionTime = 4500
        ds.EchoTime = 98
        ds.EchoTrainLength = 16
        ds.EchoNumbers = 1
        ds.NumberOfAverages = 2
        ds.ImagingFrequency = 63.87
        ds.ImagedNucleus = "1H"
        ds.MagneticFieldStrength = 1.5
        ds.FlipAngle = 150
        ds.WindowCenter = 1000
        ds.WindowWidth = 2200
        _pixels(ds, volume.pixels[k], 12)
        out.append(ds)
    return out


def dx_image(image: Radiograph, header: StudyHeader, series: SeriesInfo) -> FileDataset:
    """A Digital X-Ray Image (For Presentation), PA chest."""
    acquired = header.study_datetime + timedelta(seconds=30)
    ds = _dataset(header, series, DigitalXRayImageStorageForPresentation, 0, "DX", acquired)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ViewPosition = "PA"
    ds.PositionerType = "COLUMN"
    ds.ImageLaterality = "U"
    ds.PatientOrientation = ["L", "F"]
    ds.AcquisitionDateTime = acquired.strftime("%Y%m%d%H%M%S")
    ds.AnatomicRegionSequence = [_code("51185008", "SCT", "Chest")]
    ds.ViewCodeSequence = [_code("399348003", "SCT", "postero-anterior")]
    ds.AcquisitionContextSequence = []
    ds.ImagerPixelSpacing = [image.pixel_spacing, image.pixel_spacing]
    ds.DetectorType = "SCINTILLATOR"
    ds.DetectorConfiguration = "AREA"
    ds.DistanceSourceToDetector = 1800
    ds.DistanceSourceToPatient = 1650
    ds.KVP = 125
    ds.ExposureTime = 8
    ds.XRayTubeCurrent = 320
    ds.Exposure = 3
    ds.Grid = "NONE"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    _pixels(ds, image.pixels, 12)
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item
