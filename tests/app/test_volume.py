"""Series → volume over a real local archive, with slices stored out of order.

``make_ct_series`` and ``make_radiograph`` are also used by the UI tests.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from app.archive.client import DicomClientArchive, open_local
from app.archive.volume import (
    LoadCancelled,
    VolumeLoadError,
    display_series,
    load_volume,
    pixel_for_point,
    slice_index_for_point,
    slice_index_for_region,
    slice_index_for_sop,
)
from app.domain import Region


def _base(sop_class: str, study_uid: str, series_uid: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.preamble = b"\0" * 128
    ds.SOPClassUID = sop_class
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.PatientName = "Test^Volume"
    ds.PatientID = "VOL-1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.Manufacturer = "Test"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-VOL"
    ds.StudyDescription = "Synthetic study"
    ds.SeriesNumber = 1
    ds.SamplesPerPixel = 1
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    return ds


def make_ct_series(
    study_uid: str,
    *,
    n: int = 6,
    size: int = 32,
    spacing: float = 2.5,
    row_cos: Sequence[float] = (1.0, 0.0, 0.0),
    col_cos: Sequence[float] = (0.0, 1.0, 0.0),
    description: str = "Head 5mm",
    frame_of_reference: str | None = None,
    window: tuple[float, float] | None = (40.0, 80.0),
    volume: np.ndarray | None = None,
) -> list[Dataset]:
    """CT slices whose value is 100 * (position index) + column, in stored order reversed
    and Instance Numbers shuffled so that neither gives the spatial order."""
    series_uid = generate_uid()
    for_uid = frame_of_reference or generate_uid()
    normal = np.cross(row_cos, col_cos)
    slices: list[Dataset] = []
    for k in range(n):
        ds = _base(CTImageStorage, study_uid, series_uid, "CT")
        ds.SeriesDescription = description
        ds.FrameOfReferenceUID = for_uid
        ds.ImageOrientationPatient = [*map(float, row_cos), *map(float, col_cos)]
        ds.ImagePositionPatient = [float(v) for v in np.array([-40.0, -40.0, 10.0]) + k * spacing * normal]
        ds.PixelSpacing = [0.8, 0.8]
        ds.SliceThickness = spacing
        ds.Rows = ds.Columns = size
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelRepresentation = 1
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = window
        if volume is not None:
            hu = volume[k]
        else:
            hu = 100 * k + np.tile(np.arange(size, dtype=np.int16), (size, 1))
        ds.PixelData = (np.asarray(hu) + 1024).astype(np.int16).tobytes()
        ds.InstanceNumber = (k * 7) % n + 1 if n > 1 else 1  # not the spatial order
        slices.append(ds)
    return slices[::-1]


def make_radiograph(study_uid: str, *, monochrome1: bool = True, size: int = 40) -> Dataset:
    ds = _base(ComputedRadiographyImageStorage, study_uid, generate_uid(), "CR")
    ds.SeriesDescription = "Chest PA"
    ds.Rows = ds.Columns = size
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.PatientOrientation = ["L", "F"]
    ds.InstanceNumber = 1
    ds.PixelData = np.tile(np.arange(size, dtype=np.uint16) * 100, (size, 1)).tobytes()
    return ds


@pytest.fixture()
def archive(tmp_path: Path) -> DicomClientArchive:
    return open_local(tmp_path / "archive")


def test_slices_are_ordered_by_position_and_rescaled(archive: DicomClientArchive) -> None:
    study = generate_uid()
    slices = make_ct_series(study, n=6)
    archive.store(slices)
    calls: list[tuple[int, int]] = []
    vol = load_volume(archive, study, slices[0].SeriesInstanceUID, progress=lambda d, t: calls.append((d, t)))
    assert vol.pixels.shape == (6, 32, 32) and vol.pixels.dtype == np.float32
    assert vol.pixels.flags.c_contiguous
    # value 100*k + column after the -1024 intercept: spatial order, not storage or instance order
    assert np.array_equal(vol.pixels[:, 0, 0], [0, 100, 200, 300, 400, 500])
    assert np.array_equal(vol.pixels[3, 5, :4], [300, 301, 302, 303])
    positions_z = [p[2] for p in vol.positions]
    assert positions_z == sorted(positions_z)
    by_z = sorted(slices, key=lambda d: d.ImagePositionPatient[2])
    assert vol.sop_uids == tuple(d.SOPInstanceUID for d in by_z)
    assert vol.spacing == pytest.approx((2.5, 0.8, 0.8))
    assert vol.origin == pytest.approx((-40.0, -40.0, 10.0))
    assert (vol.window_center, vol.window_width) == (40.0, 80.0)
    assert vol.modality == "CT" and vol.description == "Head 5mm"
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)
    assert vol.problems == [] and vol.has_geometry


def test_order_follows_the_normal_not_z(archive: DicomClientArchive) -> None:
    """Coronal slices (normal along -y... here +/-y): ordered along the cross product."""
    study = generate_uid()
    slices = make_ct_series(study, n=4, row_cos=(1, 0, 0), col_cos=(0, 0, -1))
    archive.store(slices)
    vol = load_volume(archive, study, slices[0].SeriesInstanceUID)
    normal = np.cross((1, 0, 0), (0, 0, -1))
    distances = vol.positions @ normal
    assert list(distances) == sorted(distances)
    assert np.array_equal(vol.pixels[:, 0, 0], [0, 100, 200, 300])
    assert slice_index_for_point(vol, vol.positions[2] + 0.4 * normal) == 2
    assert slice_index_for_point(vol, vol.positions[0] - 50 * normal, tolerance_mm=5) is None


def test_radiograph_is_one_slice_and_monochrome1_is_inverted(archive: DicomClientArchive) -> None:
    study = generate_uid()
    cr = make_radiograph(study)
    archive.store([cr])
    vol = load_volume(archive, study, cr.SeriesInstanceUID)
    assert vol.pixels.shape == (1, 40, 40)
    # stored 0..3900 left to right; MONOCHROME1 shows high values dark: inverted, 4095 - v
    assert vol.pixels[0, 0, 0] == 4095 and vol.pixels[0, 0, 39] == 4095 - 3900
    assert vol.spacing[1:] == (0.2, 0.2)
    assert not vol.has_geometry and vol.patient_orientation == ("L", "F")
    low, high = vol.window_center - vol.window_width / 2, vol.window_center + vol.window_width / 2
    assert low >= 0 and high <= 4095 and vol.window_width > 1000


def test_an_undecodable_frame_is_a_gap_with_its_reason(archive: DicomClientArchive) -> None:
    study = generate_uid()
    slices = make_ct_series(study, n=3)
    broken = slices[1]
    broken.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    broken.PixelData = encapsulate([b"\xff\xd8 not a jpeg \xff\xd9"])
    broken["PixelData"].VR = "OB"
    archive.store(slices)
    vol = load_volume(archive, study, slices[0].SeriesInstanceUID)
    assert vol.pixels.shape[0] == 3  # the gap keeps its place between its neighbours
    gap = vol.sop_uids.index(broken.SOPInstanceUID)
    assert gap == 1 and list(vol.gaps) == [1] and "decode" in vol.gaps[1]
    assert not vol.is_loaded(1) and vol.is_loaded(0) and vol.is_loaded(2)
    assert np.array_equal(vol.pixels[[0, 2], 0, 0], [0, 200])
    assert len(vol.problems) == 1 and broken.SOPInstanceUID in vol.problems[0]


def test_nothing_decodable_is_one_clear_error(archive: DicomClientArchive) -> None:
    study = generate_uid()
    (only,) = make_ct_series(study, n=1)
    del only.PixelData
    archive.store([only])
    with pytest.raises(VolumeLoadError, match="no displayable image"):
        load_volume(archive, study, only.SeriesInstanceUID)


def test_cancel_stops_loading(archive: DicomClientArchive) -> None:
    study = generate_uid()
    slices = make_ct_series(study, n=3)
    archive.store(slices)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LoadCancelled):
        load_volume(archive, study, slices[0].SeriesInstanceUID, cancel=cancel)


def test_display_series_skips_non_images_biggest_first(archive: DicomClientArchive) -> None:
    study = generate_uid()
    small = make_ct_series(study, n=2, description="Scout")
    big = make_ct_series(study, n=5, description="Axial")
    cr = make_radiograph(study)
    sr = make_radiograph(study)
    sr.Modality = "SR"
    archive.store([*small, *big, cr, sr])
    found = display_series(archive, study)
    assert [s.description for s in found] == ["Axial", "Scout", "Chest PA"]


def test_lookups_by_sop_point_and_region(archive: DicomClientArchive) -> None:
    study = generate_uid()
    slices = make_ct_series(study, n=5)
    archive.store(slices)
    vol = load_volume(archive, study, slices[0].SeriesInstanceUID)
    third = vol.sop_uids[3]
    assert slice_index_for_sop(vol, third) == 3
    assert slice_index_for_sop(vol, "1.2.3") is None
    point = vol.positions[1] + np.array([0.8 * 10, 0.8 * 4, 0.3])
    assert slice_index_for_point(vol, point) == 1
    col, row = pixel_for_point(vol, vol.positions[0] + np.array([0.8 * 10, 0.8 * 4, 0]))
    assert (col, row) == pytest.approx((10.5, 4.5))  # pixel centres are at +0.5 in SCOORD
    r2d = Region("POINT", ((3.0, 4.0),), referenced_sop_uid=third)
    r3d = Region("POINT", (tuple(point),), frame_of_reference_uid=vol.frame_of_reference_uid)
    other = Region("POINT", (tuple(point),), frame_of_reference_uid="1.2.999")
    assert slice_index_for_region(vol, r2d) == 3
    assert slice_index_for_region(vol, r3d) == 1
    assert slice_index_for_region(vol, other) is None


def test_multiframe_frames_ordered_by_per_frame_position(archive: DicomClientArchive) -> None:
    """An enhanced multi-frame instance: per-frame positions and rescale, shared orientation."""
    study = generate_uid()
    ds = _base("1.2.840.10008.5.1.4.1.1.2.1", study, generate_uid(), "CT")  # Enhanced CT
    ds.SeriesDescription = "Enhanced"
    ds.FrameOfReferenceUID = generate_uid()
    ds.Rows = ds.Columns = 8
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelRepresentation = 1
    ds.NumberOfFrames = 3
    ds.InstanceNumber = 1
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing = [0.5, 0.5]
    measures.SliceThickness = 3.0
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for z in (6.0, 0.0, 3.0):  # stored out of order
        item, position, transform = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, z]
        transform.RescaleSlope, transform.RescaleIntercept = 1, -1024
        item.PlanePositionSequence = [position]
        item.PixelValueTransformationSequence = [transform]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = (np.array([600, 0, 300])[:, None, None] + 1024 + np.zeros((3, 8, 8))).astype(
        np.int16
    ).tobytes()
    archive.store([ds])
    vol = load_volume(archive, study, ds.SeriesInstanceUID)
    assert vol.pixels.shape == (3, 8, 8)
    assert list(vol.pixels[:, 0, 0]) == [0, 300, 600]
    assert vol.frames == (2, 3, 1) and vol.spacing == pytest.approx((3.0, 0.5, 0.5))
    assert slice_index_for_sop(vol, ds.SOPInstanceUID, frame=1) == 2
