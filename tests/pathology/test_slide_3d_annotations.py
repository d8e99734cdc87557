"""AI annotations in 3D slide coordinates (SCOORD3D, mm), as some AI products write them:
placed on the slide's pixels with its Total Pixel Matrix Origin and Image Orientation
(Slide), flown to, listed in slide coordinates, reviewed and written back in 3D.

Real Orthanc; the 3D object is the demo's annotations mapped by highdicom's own
image-to-slide transform, so the 2D object of the same slide is the expected answer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from app.archive.client import open_dicomweb
from app.archive.slide_pyramid import read_pyramid
from app.audit.log import AuditLog
from app.delivery.outbox import Outbox
from app.delivery.sender import Sender
from app.demo.slide_annotations import build_slide_annotations
from app.domain import Code, Region, SeriesRef
from app.results import codes
from app.results.ann_reader import read_bulk_annotations
from app.results.edited_ann import EDITED, build_edited_ann
from app.review.session import ReviewSession
from app.review.store import ReviewStore
from app.review.submit import submit_review
from app.settings import WorklistWeights
from app.worklist.service import WorklistService
from tests.pathology.slide_data import small_slide
from tests.pathology.test_slide_review_submit import READER, ann_errors
from tests.support.orthanc import OrthancServer
from tests.support.validators import write
from ui.slide_study import read_slide_material, region_box

NECROSIS = Code("6574001", "SCT", "Necrosis")


@pytest.mark.orthanc
def test_slide_coordinates_are_placed_on_the_slide_pixels(empty_orthanc: OrthancServer) -> None:
    slide = small_slide()
    flat = build_slide_annotations(slide)
    ann = build_slide_annotations(slide, slide_coordinates=True)
    assert ann.AnnotationCoordinateType == "3D"
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*slide.levels, ann])

    pyramid = read_pyramid(archive, slide.study_uid, slide.series_uid)
    assert pyramid.has_slide_geometry
    assert pyramid.base.origin_mm == (20.0, 40.0, 0.0)
    assert pyramid.base.frame_of_reference_uid == str(ann.FrameOfReferenceUID)

    ref = SeriesRef(slide.study_uid, slide.series_uid, "SM")
    material = read_slide_material(archive, ref)
    assert material.problems == ()
    expected = {g.label: g for g in read_bulk_annotations(flat).groups}
    assert {g.label for g in material.groups} == set(expected)
    for g in material.groups:
        assert g.count == expected[g.label].count
        for got, want in zip(g.shapes, expected[g.label].shapes, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-3)  # pixels, as in the 2D object

    # the findings keep slide coordinates (what `companion findings` lists) and fly to
    # the same place as the 2D object's
    three_d = read_bulk_annotations(ann).result.findings
    two_d = read_bulk_annotations(flat).result.findings
    for f3, f2 in zip(three_d, two_d, strict=True):
        region = f3.regions[0]
        assert region.is_3d and region.frame_of_reference_uid == str(ann.FrameOfReferenceUID)
        assert len(region.coordinates[0]) == 3 and region.referenced_sop_uid is None
        assert region_box(f3, pyramid) == pytest.approx(region_box(f2), abs=1e-3)
    assert region_box(three_d[0]) is None  # not placeable without the slide's geometry


@pytest.mark.orthanc
def test_a_review_of_slide_coordinates_is_written_back_in_slide_coordinates(
    empty_orthanc: OrthancServer, tmp_path: Path
) -> None:
    slide = small_slide()
    ann = build_slide_annotations(slide, slide_coordinates=True)
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([slide.levels[0], ann])
    results = WorklistService(archive, WorklistWeights()).results_for(slide.study_uid)
    session = ReviewSession(slide.study_uid, results, READER, new_uid=generate_uid)
    tumors = [i.current for i in session.items if i.current.regions[0].graphic_type == "POLYGON"]
    assert len(tumors) >= 3
    session.modify(tumors[0].tracking_uid, replace(tumors[0], finding=NECROSIS))  # retyped
    session.reject(tumors[1].tracking_uid, codes.REJECT_REASONS["false_positive"], "stroma")
    for uid in session.undecided():
        session.confirm(uid)
    path = tmp_path / "journal.sqlite3"
    outbox = Outbox(path)
    receipt = submit_review(
        session,
        {str(ann.SOPInstanceUID): ann},
        outbox=outbox,
        audit=AuditLog(path, key=b"k" * 32),
        store=ReviewStore(path),
        new_uid=generate_uid,
    )
    assert len(receipt.edited_uids) == 1
    assert len(Sender(outbox, archive).run_once().sent) == 2

    (ref,) = [
        r
        for r in archive.search_instances(slide.study_uid, modality="ANN")
        if r.sop_uid == receipt.edited_uids[0]
    ]
    edited = archive.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid)
    assert edited.AnnotationCoordinateType == "3D"
    assert edited.FrameOfReferenceUID == ann.FrameOfReferenceUID
    back = {g.label: g for g in read_bulk_annotations(edited).groups}
    ai = {g.label: g for g in read_bulk_annotations(ann).groups}
    tumor, necrosis = back[f"Tumor region{EDITED}"], back[f"{NECROSIS.meaning}{EDITED}"]
    assert tumor.count == ai["Tumor region"].count - 2 and necrosis.count == 1
    np.testing.assert_allclose(necrosis.shapes[0], ai["Tumor region"].shapes[0], atol=1e-6)
    np.testing.assert_allclose(tumor.shapes[0], ai["Tumor region"].shapes[2], atol=1e-6)
    assert back["Ki-67 nucleus positive"].count == ai["Ki-67 nucleus positive"].count
    assert ann_errors(write(edited, tmp_path / "edited_3d_ann.dcm")) == []


def test_a_drawn_region_cannot_join_slide_coordinates() -> None:
    """A region the reader drew is in image pixels: it is refused, not mixed into a 3D
    object (the window does not offer drawing on such a slide)."""
    slide = small_slide()
    ann = build_slide_annotations(slide, slide_coordinates=True)
    result = read_bulk_annotations(ann).result
    session = ReviewSession(slide.study_uid, [result], READER, new_uid=generate_uid)
    image = str(slide.levels[0].SOPInstanceUID)
    session.add(NECROSIS, Region("POLYGON", ((1.0, 1.0), (9.0, 1.0), (9.0, 9.0)), image))
    for uid in session.undecided():
        session.confirm(uid)
    (assessment,) = session.assessments()
    with pytest.raises(ValueError, match="slide coordinates"):
        build_edited_ann(
            assessment, ann, series_instance_uid=generate_uid(), sop_instance_uid=generate_uid()
        )
