"""Bulk annotations read back as groups and findings, from a file and from a real Orthanc."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pydicom.dataset import Dataset

from app.archive.client import open_dicomweb
from app.demo.slide_annotations import build_slide_annotations
from app.errors import ResultParseError
from app.results.ann_reader import groups_by_tracking_uid, read_bulk_annotations
from app.settings import WorklistWeights
from app.worklist.service import WorklistService
from tests.pathology.slide_data import small_slide
from tests.support.orthanc import OrthancServer


def test_groups_findings_and_positive_fraction() -> None:
    slide = small_slide()
    read = read_bulk_annotations(build_slide_annotations(slide))
    groups = {g.label: g for g in read.groups}
    tumor = groups["Tumor region"]
    assert tumor.count == len(slide.content.tumor_polygons)
    np.testing.assert_allclose(tumor.shapes[1], slide.content.tumor_polygons[1], atol=1e-3)
    assert tumor.positive_fraction is None
    n_pos = sum(n.positive for n in slide.content.nuclei)
    expected = n_pos / len(slide.content.nuclei)
    assert groups["Ki-67 nucleus positive"].positive_fraction == pytest.approx(expected)
    assert groups["Ki-67 nucleus negative"].positive_fraction == pytest.approx(expected)
    assert groups["Ki-67 nucleus positive"].colour != groups["Ki-67 nucleus negative"].colour
    assert read.referenced_sop_uids == (slide.levels[0].SOPInstanceUID,)

    result = read.result
    assert result.template == "ANN" and result.study_instance_uid == slide.study_uid
    assert result.algorithm is not None and result.algorithm.name == "Demo Ki-67 Tissue Analyzer"
    regions = [f for f in result.findings if f.regions[0].graphic_type == "POLYGON"]
    assert len(regions) == tumor.count
    assert regions[0].certainty == pytest.approx(slide.content.tumor_probabilities[0], abs=1e-3)
    assert regions[0].regions[0].referenced_sop_uid == slide.levels[0].SOPInstanceUID
    cells = [f for f in result.findings if f.regions[0].graphic_type == "MULTIPOINT"]
    assert sorted(len(f.regions[0].coordinates) for f in cells) == sorted(
        [n_pos, len(slide.content.nuclei) - n_pos]
    )
    fractions = {
        m.value for f in cells for m in f.measurements if m.concept.meaning == "Positive fraction"
    }
    assert fractions == {round(expected, 4)}
    assert len({f.tracking_uid for f in result.findings}) == len(result.findings)


def test_findings_map_to_their_group_by_uid_not_by_label() -> None:
    """A card's Shown box hides the finding's group: found by the group's UID, so a label
    that begins another group's label (here "Ki-67 nucleus", the start of "Ki-67 nucleus
    positive") or a "(reader-edited)" one takes nothing else with it."""
    ds = build_slide_annotations(small_slide())
    tumor = next(g for g in ds.AnnotationGroupSequence if g.AnnotationGroupLabel == "Tumor region")
    tumor.AnnotationGroupLabel = "Ki-67 nucleus"
    read = read_bulk_annotations(ds)
    by_uid = groups_by_tracking_uid(read.groups)
    assert set(by_uid) == {f.tracking_uid for f in read.result.findings}
    labels = {g.number: g.label for g in read.groups}
    for f in read.result.findings:
        own = labels[by_uid[f.tracking_uid]]
        assert f.tracking_id == own or f.tracking_id.removeprefix(own + " ").isdigit()
    cells = [f for f in read.result.findings if f.regions[0].graphic_type == "MULTIPOINT"]
    assert {labels[by_uid[f.tracking_uid]] for f in cells} == {
        "Ki-67 nucleus positive",
        "Ki-67 nucleus negative",
    }


def test_not_bulk_annotations_is_a_parse_error() -> None:
    with pytest.raises(ResultParseError, match="not bulk annotations"):
        read_bulk_annotations(small_slide().levels[0])
    broken = build_slide_annotations(small_slide())
    ds = Dataset()
    ds.update(broken)
    del ds.AnnotationGroupSequence[0].PointCoordinatesData
    with pytest.raises(ResultParseError):
        read_bulk_annotations(ds)


@pytest.mark.orthanc
def test_findings_of_a_slide_study_from_orthanc(empty_orthanc: OrthancServer) -> None:
    slide = small_slide()
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*slide.levels, build_slide_annotations(slide)])
    findings = WorklistService(archive, WorklistWeights()).findings_for(slide.study_uid)
    assert {f.template for f in findings} == {"ANN"}
    assert sum(f.regions[0].graphic_type == "POLYGON" for f in findings) == 3

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "findings",
            slide.study_uid,
            "--server",
            empty_orthanc.dicomweb_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == len(findings)
    polygon = next(r for r in rows if r["regions"][0]["graphic_type"] == "POLYGON")
    assert len(polygon["regions"][0]["coordinates"]) == 24
    assert polygon["regions"][0]["referenced_sop_uid"] == slide.levels[0].SOPInstanceUID
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "findings",
            slide.study_uid,
            "--server",
            empty_orthanc.dicomweb_url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(ANN, editable)" in proc.stdout and "Positive fraction" in proc.stdout
