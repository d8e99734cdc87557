"""The demo data set: deterministic, geometrically sound, complete headers, lesions under the regions."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from app.demo import DemoSet, generate_demo_set
from app.demo.catalog import STUDIES
from app.domain import Region, Urgency
from app.errors import DemoDataError
from app.results.seg_reader import read_segmentation
from app.results.sr_reader import read_ai_result
from tests.support.validators import dciodvfy, write

REF = datetime(2025, 1, 15, 10, 0)
SUBSET = ("ct-ich-urgent", "dx-pneumothorax", "mr-mass")


@pytest.fixture(scope="module")
def demo() -> DemoSet:
    return generate_demo_set(0, REF)


def _uids(demo: DemoSet, key: str) -> list[str]:
    s = demo.study(key)
    uids = [s.study_uid] + [str(ds.SOPInstanceUID) for ds in s.images]
    uids += [str(ds.SeriesInstanceUID) for ds in s.images[:1]]
    if s.ai_sr is not None:
        uids += [str(s.ai_sr.SOPInstanceUID)] + [f.tracking_uid for f in s.expected_findings]
    return uids


def _pixel_hashes(demo: DemoSet, key: str) -> list[str]:
    return [hashlib.sha256(ds.PixelData).hexdigest() for ds in demo.study(key).images]


def test_same_seed_gives_same_uids_and_pixels(demo: DemoSet) -> None:
    later = generate_demo_set(0, REF + timedelta(days=3), only=SUBSET)
    for study in later.studies:
        assert _uids(later, study.key) == _uids(demo, study.key)
        assert _pixel_hashes(later, study.key) == _pixel_hashes(demo, study.key)
        # Only the dates follow the reference time.
        assert study.study_datetime == demo.study(study.key).study_datetime + timedelta(days=3)


def test_other_seed_differs(demo: DemoSet) -> None:
    other = generate_demo_set(1, REF, only=SUBSET)
    for study in other.studies:
        assert not set(_uids(other, study.key)) & set(_uids(demo, study.key))
        assert not set(_pixel_hashes(other, study.key)) & set(_pixel_hashes(demo, study.key))


def test_unknown_subset_key_is_refused() -> None:
    with pytest.raises(DemoDataError, match="no-such-study"):
        generate_demo_set(0, REF, only=["no-such-study"])


def test_catalog_studies_and_ai_results(demo: DemoSet) -> None:
    assert [s.key for s in demo.studies] == [s.key for s in STUDIES]
    assert len({s.study_uid for s in demo.studies}) == len(demo.studies) == 9
    assert len({s.accession for s in demo.studies}) == 9
    summary = {
        s.key: (s.modality, s.ai_sr is not None, [f.urgency for f in s.expected_findings])
        for s in demo.studies
    }
    assert summary == {
        "ct-ich-critical": ("CT", True, [Urgency.CRITICAL]),
        "ct-ich-urgent": ("CT", True, [Urgency.URGENT]),
        "ct-no-finding": ("CT", True, []),
        "ct-no-ai": ("CT", False, []),
        "dx-pneumothorax": ("DX", True, [Urgency.CRITICAL]),
        "dx-nodules": ("DX", True, [Urgency.ROUTINE, Urgency.ROUTINE]),
        "dx-normal": ("DX", True, []),
        "mr-mass": ("MR", True, [Urgency.URGENT]),
        "mr-no-ai": ("MR", False, []),
    }
    for s in demo.studies:
        assert s.has_lesion == bool(s.expected_findings)
        for f in s.expected_findings:
            assert f.certainty is not None and 0.0 <= f.certainty <= 1.0
            assert len(f.regions) == 1
    critical = demo.study("ct-ich-critical").expected_findings[0]
    assert critical.certainty == pytest.approx(0.93)
    (volume,) = critical.measurements
    assert volume.unit.value == "ml" and 20 < volume.value < 30
    (diameter,) = demo.study("dx-nodules").expected_findings[0].measurements
    assert diameter.unit.value == "mm" and diameter.value == 14.0


def test_sr_reads_back_as_the_findings_it_was_written_from(demo: DemoSet) -> None:
    for s in demo.studies:
        if s.ai_sr is None:
            continue
        result = read_ai_result(s.ai_sr)
        assert result.readable and result.template == "TID1500", s.key
        assert list(result.findings) == s.expected_findings, s.key
        assert result.study_instance_uid == s.study_uid
        assert result.algorithm is not None and result.algorithm.name == s.algorithm.name  # type: ignore[union-attr]
        assert s.study_datetime < result.content_datetime <= REF  # type: ignore[operator]


STUDY_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "ReferringPhysicianName",
    "StudyID",
)
IMAGE_ATTRIBUTES = STUDY_ATTRIBUTES + (
    "RequestedProcedurePriority",
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "PhotometricInterpretation",
    "WindowCenter",
    "WindowWidth",
    "PixelData",
)
VOLUME_ATTRIBUTES = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "FrameOfReferenceUID",
    "RescaleSlope",
    "RescaleIntercept",
)


def test_required_attributes(demo: DemoSet) -> None:
    for s in demo.studies:
        for ds in s.images:
            missing = [k for k in IMAGE_ATTRIBUTES if k not in ds]
            if s.modality in ("CT", "MR"):
                missing += [k for k in VOLUME_ATTRIBUTES if k not in ds and k[:7] != "Rescale"]
            else:
                missing += [k for k in ("ImagerPixelSpacing", "PatientOrientation") if k not in ds]
            assert not missing, f"{s.key}: {missing}"
            assert ds.preamble is not None and ds.file_meta.TransferSyntaxUID
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        first = s.images[0]
        spec = next(x for x in STUDIES if x.key == s.key)
        assert first.RequestedProcedurePriority == spec.priority
        waited = REF - datetime.strptime(first.StudyDate + first.StudyTime, "%Y%m%d%H%M%S")
        assert waited == timedelta(minutes=spec.waiting_minutes)
        assert first.PatientName.family_name == "DEMO"
        if s.modality == "CT":
            assert first.RescaleIntercept == -1024 and first.RescaleSlope == 1
            assert first.Rows == first.Columns == 512 and len(s.images) >= 40
        if s.ai_sr is not None:
            for k in STUDY_ATTRIBUTES:
                assert s.ai_sr[k].value == first[k].value, f"{s.key}: {k}"
            assert s.ai_sr.preamble is not None and s.ai_sr.file_meta.TransferSyntaxUID


def test_slices_are_monotonic_along_the_normal(demo: DemoSet) -> None:
    for s in demo.studies:
        if s.modality not in ("CT", "MR"):
            continue
        iop = np.array(s.images[0].ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        ordered = sorted(s.images, key=lambda ds: int(ds.InstanceNumber))
        pos = [
            float(np.dot(normal, np.array(ds.ImagePositionPatient, dtype=float))) for ds in ordered
        ]
        steps = np.diff(pos)
        assert (steps > 0).all(), s.key
        assert np.allclose(steps, steps[0]), s.key
        assert len({ds.FrameOfReferenceUID for ds in s.images}) == 1


def _polygon_mask(shape: tuple[int, int], points: list[tuple[float, float]]) -> np.ndarray:
    """Pixels whose centres lie inside the (column, row) polygon (even-odd rule)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    inside = np.zeros(shape, dtype=bool)
    pts = list(points)
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
        if y1 == y2:
            continue
        crosses = (rows >= min(y1, y2)) & (rows < max(y1, y2))
        x_at = x1 + (rows - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (cols < x_at)
    return inside


def _image(s_images: list[Dataset], sop_uid: str | None) -> Dataset:
    return next(ds for ds in s_images if ds.SOPInstanceUID == sop_uid)


def _values_in(ds: Dataset, points: list[tuple[float, float]]) -> np.ndarray:
    assert all(0 <= c < ds.Columns and 0 <= r < ds.Rows for c, r in points)
    pixels = ds.pixel_array.astype(float) * float(ds.get("RescaleSlope", 1))
    pixels += float(ds.get("RescaleIntercept", 0))
    mask = _polygon_mask(pixels.shape, points)
    assert mask.sum() > 20
    return pixels[mask]


def test_ct_regions_lie_on_the_hyperdense_bleed(demo: DemoSet) -> None:
    s = demo.study("ct-ich-critical")
    region = s.expected_findings[0].regions[0]
    assert region.graphic_type == "POLYLINE" and region.coordinates[0] == region.coordinates[-1]
    ds = _image(s.images, region.referenced_sop_uid)
    hu = _values_in(ds, [(c, r) for c, r in region.coordinates])
    assert hu.mean() > 55, hu.mean()
    # The urgent bleed's region is SCOORD3D in patient mm, on a slice plane.
    s = demo.study("ct-ich-urgent")
    region3d: Region = s.expected_findings[0].regions[0]
    assert region3d.is_3d and region3d.frame_of_reference_uid == s.images[0].FrameOfReferenceUID
    (z,) = {p[2] for p in region3d.coordinates}
    ds = next(ds for ds in s.images if float(ds.ImagePositionPatient[2]) == z)
    x0, y0 = (float(v) for v in ds.ImagePositionPatient[:2])
    dy, dx = (float(v) for v in ds.PixelSpacing)
    points = [((x - x0) / dx, (y - y0) / dy) for x, y, _ in region3d.coordinates]
    assert _values_in(ds, points).mean() > 55


def test_mr_and_radiograph_regions_lie_on_their_lesions(demo: DemoSet) -> None:
    s = demo.study("mr-mass")
    region = s.expected_findings[0].regions[0]
    ds = _image(s.images, region.referenced_sop_uid)
    assert _values_in(ds, list(region.coordinates)).mean() > 1000  # white matter is ~700
    s = demo.study("dx-pneumothorax")
    region = s.expected_findings[0].regions[0]
    ds = s.images[0]
    ptx = _values_in(ds, list(region.coordinates))
    mirrored = [(ds.Columns - 1 - c, r) for c, r in region.coordinates]
    assert ptx.mean() < _values_in(ds, mirrored).mean()  # air without lung markings is darker
    s = demo.study("dx-nodules")
    pixels = s.images[0].pixel_array.astype(float)
    rows, cols = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    for finding in s.expected_findings:
        region = finding.regions[0]
        assert region.graphic_type == "CIRCLE"
        (cx, cy), (ex, ey) = region.coordinates
        radius = float(np.hypot(ex - cx, ey - cy))
        d = np.hypot(cols - cx, rows - cy)
        inner = pixels[d < 0.7 * radius].mean()
        ring = pixels[(d > 1.5 * radius) & (d < 2.5 * radius)].mean()
        assert inner > ring + 30, (finding.tracking_id, inner, ring)


def test_demo_head_ct_seg_is_valid_deterministic_and_on_the_bleed(tmp_path: Path) -> None:
    """The demo's AI SEG passes dciodvfy, is the same on every run, and its mask covers
    the phantom's bleed on the slices the AI SR outlines."""
    first = generate_demo_set(seed=0, only=["ct-ich-critical"]).study("ct-ich-critical")
    again = generate_demo_set(seed=0, only=["ct-ich-critical"]).study("ct-ich-critical")
    assert first.ai_seg is not None and again.ai_seg is not None
    assert first.ai_seg.PixelData == again.ai_seg.PixelData
    assert first.ai_seg.ContentTime == again.ai_seg.ContentTime
    assert dciodvfy(write(first.ai_seg, tmp_path / "seg.dcm")) == []
    source = read_segmentation(first.ai_seg)
    (segment,) = source.result.segments
    assert segment.label == "Hemorrhage" and segment.colour == (255, 0, 0)
    framed = {sop for f in source.frames for sop, _ in f.sources}
    (region,) = first.expected_findings[0].regions
    assert region.referenced_sop_uid in framed  # the mask is on the outlined slice
    slice_of = {str(ds.SOPInstanceUID): ds for ds in first.images}
    outlined = slice_of[region.referenced_sop_uid]
    frame = next(f for f in source.frames if f.sources[0][0] == region.referenced_sop_uid)
    mask = source.stored_frame(frame.number) > 0
    hu = outlined.pixel_array.astype(np.float32) - 1024.0
    assert mask.sum() > 200 and np.median(hu[mask]) > 60  # blood, not brain
