"""Every object the demo writes passes the outside validators (DESIGN.md §3.4, §5).

dciodvfy (dicom3tools) checks the IOD of every SR and of one CT, DX and MR image;
pixelmed's DicomSRValidator checks the SR templates (TID 1500); DCMTK's dsrdump
must parse each SR. Errors fail the test; warnings are printed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from app.demo import DemoSet, generate_demo_set
from app.demo.catalog import STUDIES
from app.demo.generate import demo_uid
from app.domain import Algorithm, Finding, Measurement, Region, Urgency
from app.results import codes
from app.results.sr_reader import read_ai_result
from app.results.sr_writer import build_ai_result_sr
from tests.support.validators import dciodvfy, dsrdump, pixelmed, write

REF = datetime(2025, 1, 15, 10, 0)
SR_KEYS = [s.key for s in STUDIES if s.ai is not None]


@pytest.fixture(scope="module")
def demo() -> DemoSet:
    return generate_demo_set(0, REF)


@pytest.mark.parametrize("key", SR_KEYS)
def test_demo_sr_is_valid(demo: DemoSet, key: str, tmp_path: Path) -> None:
    study = demo.study(key)
    assert study.ai_sr is not None
    path = write(study.ai_sr, tmp_path / f"{key}-sr.dcm")
    assert dciodvfy(path) == []
    assert pixelmed(path) == []
    dump = dsrdump(path)
    assert "Imaging Measurement Report" in dump
    for finding in study.expected_findings:
        assert finding.tracking_uid in dump


@pytest.mark.parametrize("key", ["ct-ich-critical", "dx-nodules", "mr-mass"])
def test_demo_image_is_valid(demo: DemoSet, key: str, tmp_path: Path) -> None:
    images = demo.study(key).images
    path = write(images[len(images) // 2], tmp_path / f"{key}-image.dcm")
    assert dciodvfy(path) == []


ALGO = Algorithm("Local Model", "0.1", "AI Review Companion")


def _kinds(ct: Dataset) -> dict[str, Region | None]:
    """Region kinds beyond the demo's: 3D ELLIPSOID (TID 1411), 3D POINT, none (TID 1501),
    a 2D POLYGON (written as a closed POLYLINE) and a 2D POINT."""
    z = float(ct.ImagePositionPatient[2])
    for_uid = str(ct.FrameOfReferenceUID)
    ellipsoid = (
        (-10.0, 0.0, z),
        (10.0, 0.0, z),
        (0.0, -8.0, z),
        (0.0, 8.0, z),
        (0.0, 0.0, z - 6.0),
        (0.0, 0.0, z + 6.0),
    )
    ref = str(ct.SOPInstanceUID)
    return {
        "ellipsoid3d": Region("ELLIPSOID", ellipsoid, frame_of_reference_uid=for_uid),
        "point3d": Region("POINT", ((1.5, -2.25, z),), frame_of_reference_uid=for_uid),
        "none": None,
        "polygon2d": Region(
            "POLYGON", ((10.0, 10.0), (40.0, 10.0), (40.0, 30.0)), referenced_sop_uid=ref
        ),
        "point2d": Region("POINT", ((100.0, 120.0),), referenced_sop_uid=ref),
    }


def _finding(name: str, region: Region | None, certainty: float | None, sr_uid: str) -> Finding:
    return Finding(
        tracking_uid=demo_uid(0, "writer-test", name),
        finding=codes.MASS,
        site=codes.BRAIN,
        certainty=certainty,
        urgency=Urgency.URGENT,
        algorithm=ALGO,
        regions=(region,) if region else (),
        measurements=(Measurement(codes.AREA, 42.5, codes.SQUARE_MILLIMETER),),
        source_sop_uid=sr_uid,
    )


def _sr(images: list[Dataset], findings: list[Finding], sr_uid: str) -> Dataset:
    return build_ai_result_sr(
        images,
        ALGO,
        findings,
        series_instance_uid=demo_uid(0, "writer-test", "series"),
        sop_instance_uid=sr_uid,
        content_datetime=REF,
    )


@pytest.mark.parametrize("kind", ["ellipsoid3d", "point3d", "none", "polygon2d", "point2d"])
def test_writer_region_kind_is_valid(demo: DemoSet, kind: str, tmp_path: Path) -> None:
    images = demo.study("ct-no-ai").images
    sr_uid = demo_uid(0, "writer-test", kind)
    region = _kinds(images[20])[kind]
    path = write(_sr(images, [_finding(kind, region, 0.5, sr_uid)], sr_uid), tmp_path / "k.dcm")
    assert dciodvfy(path) == []
    assert pixelmed(path) == []
    dsrdump(path)


def test_writer_mixed_region_kinds_read_back(demo: DemoSet, tmp_path: Path) -> None:
    """All kinds in one report. (pixelmed checks every group of a report against the
    template of one of them, so it flags mixed TID 1410/1411/1501 groups; each kind on its
    own passes above. dciodvfy and dsrdump have no such limit.)"""
    images = demo.study("ct-no-ai").images
    ct = images[20]
    sr_uid = demo_uid(0, "writer-test", "sr")
    kinds = _kinds(ct)
    certainties = [0.5, None, 0.25, 1.0, 0.75]
    findings = [
        _finding(name, region, c, sr_uid)
        for (name, region), c in zip(kinds.items(), certainties, strict=True)
    ]
    sr = _sr(images, findings, sr_uid)
    path = write(sr, tmp_path / "writer-kinds-sr.dcm")
    assert dciodvfy(path) == []
    dsrdump(path)
    read = read_ai_result(sr).findings
    assert [f.tracking_uid for f in read] == [f.tracking_uid for f in findings]
    assert [f.certainty for f in read] == certainties
    assert read[0].regions[0].graphic_type == "ELLIPSOID"
    assert len(read[0].regions[0].coordinates) == 6
    assert read[1].regions == findings[1].regions
    assert read[2].regions == ()
    polyline = read[3].regions[0]
    assert polyline.graphic_type == "POLYLINE" and len(polyline.coordinates) == 4
    assert polyline.coordinates[0] == polyline.coordinates[-1]
    assert polyline.referenced_sop_class_uid == ct.SOPClassUID
    assert read[4].regions[0].coordinates == ((100.0, 120.0),)


def test_writer_refuses_bad_input(demo: DemoSet) -> None:
    with pytest.raises(ValueError, match="evidence"):
        build_ai_result_sr([], ALGO, [], series_instance_uid="1.2.3", sop_instance_uid="1.2.4")
    bad = Finding(
        tracking_uid="1.2.5",
        finding=codes.MASS,
        site=None,
        certainty=87.0,
        urgency=Urgency.ROUTINE,
        algorithm=ALGO,
        regions=(),
        measurements=(),
        source_sop_uid="",
    )
    with pytest.raises(ValueError, match="certainty"):
        build_ai_result_sr(
            demo.study("ct-no-ai").images[:1],
            ALGO,
            [bad],
            series_instance_uid="1.2.3",
            sop_instance_uid="1.2.4",
        )
