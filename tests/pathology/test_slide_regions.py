"""What the slide view shows during a review: the AI's groups with the reader's decisions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from pydicom.uid import generate_uid

from app.demo.slide_annotations import build_slide_annotations
from app.domain import Code, Reader, Region
from app.results import codes
from app.results.ann_reader import read_bulk_annotations
from app.review.session import ReviewSession
from app.review.slide_regions import (
    ADDED_COLOUR,
    ADDED_LABEL,
    reader_groups,
    slide_image_uid,
    slide_region,
)
from tests.pathology.slide_data import small_slide

READER = Reader("dr.path", "PATH^OLOGIST")


def test_decisions_change_what_is_shown() -> None:
    slide = small_slide()
    read = read_bulk_annotations(build_slide_annotations(slide))
    session = ReviewSession(slide.study_uid, [read.result], READER, new_uid=generate_uid)
    as_is = reader_groups(read.groups, session.items)  # nothing decided yet: the same groups
    assert len(as_is) == len(read.groups) and all(a is b for a, b in zip(as_is, read.groups))

    items = session.items
    tumors = [i.current for i in items if i.current.regions[0].graphic_type == "POLYGON"]
    points = [i.current for i in items if i.current.regions[0].graphic_type == "MULTIPOINT"]
    session.confirm(tumors[0].tracking_uid)
    session.reject(tumors[1].tracking_uid, codes.REJECT_REASONS["false_positive"])
    moved = tuple((x + 7.0, y) for x, y in tumors[2].regions[0].coordinates)
    session.modify(
        tumors[2].tracking_uid,
        replace(tumors[2], regions=(replace(tumors[2].regions[0], coordinates=moved),)),
    )
    session.reject(points[0].tracking_uid, codes.REJECT_REASONS["false_positive"])
    image = str(slide.levels[0].SOPInstanceUID)
    square = ((10.0, 10.0), (40.0, 10.0), (40.0, 40.0), (10.0, 40.0))
    session.add(Code("86049000", "SCT", "Tumor"), Region("POLYGON", square, image))
    session.add(
        Code("84640000", "SCT", "Nucleus"), Region("MULTIPOINT", ((5.0, 6.0), (7.0, 8.0)), image)
    )

    shown = reader_groups(read.groups, session.items)
    ai = {g.label: g for g in read.groups}
    by_label = {g.label: g for g in shown if g.label != ADDED_LABEL}
    tumor = by_label["Tumor region"]
    assert tumor.number == ai["Tumor region"].number and tumor.count == 2
    np.testing.assert_allclose(tumor.shapes[0], ai["Tumor region"].shapes[0])
    np.testing.assert_allclose(tumor.shapes[1], np.asarray(moved), atol=1e-3)
    assert tumor.probabilities is not None and len(tumor.probabilities) == 2
    rejected_points = next(
        g for g in shown if g.uid == next(g.uid for g in read.groups if g.is_points)
    )
    assert rejected_points.count == 0
    added = [g for g in shown if g.label == ADDED_LABEL]
    assert {g.graphic_type for g in added} == {"POLYGON", "POINT"}
    assert all(g.colour == ADDED_COLOUR for g in added)
    assert len({g.number for g in shown}) == len(shown)
    polygon = next(g for g in added if g.graphic_type == "POLYGON")
    np.testing.assert_allclose(polygon.shapes[0], np.asarray(square))
    assert next(g for g in added if g.is_points).count == 2
    assert slide_image_uid(session) == image
    added_uid = next(i.tracking_uid for i in session.items if i.original is None)
    assert slide_region(session, added_uid) == session.item(added_uid).current.regions[0]
    assert slide_region(session, tumors[2].tracking_uid) is not None
    assert slide_region(session, "no-such-uid") is None
