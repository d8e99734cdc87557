"""TID 1500 SR regions that reference a whole-slide image, placed on its base level."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest

from app.archive.slide_pyramid import SlidePyramid, level_from_json
from app.domain import Algorithm, Code, Finding, Region, Urgency
from app.review.slide_sr import SR_GROUP_BASE, on_slide, sr_groups, sr_numbers
from tests.pathology.slide_data import small_slide

TUMOR = Code("108369006", "SCT", "Neoplasm")
AI = Algorithm("Slide AI", "1", "Acme")


@pytest.fixture(scope="module")
def pyramid() -> SlidePyramid:
    """The small demo slide's pyramid, read from its own DICOM JSON as from an archive."""
    slide = small_slide()
    levels = [level_from_json(ds.to_json_dict()) for ds in slide.levels]
    assert all(lvl is not None for lvl in levels)
    return SlidePyramid(slide.study_uid, slide.series_uid, tuple(levels))  # type: ignore[arg-type]


def _finding(uid: str, region: Region, template: str = "TID1500") -> Finding:
    return Finding(
        tracking_uid=uid,
        tracking_id=f"AI finding {uid}",
        finding=TUMOR,
        site=None,
        certainty=0.9,
        urgency=Urgency.ROUTINE,
        algorithm=AI,
        regions=(region,),
        measurements=(),
        source_sop_uid="1.2.3.9",
        template=template,
    )


def test_regions_on_any_level_frame_or_in_slide_coordinates(pyramid: SlidePyramid) -> None:
    base, level1 = pyramid.levels[0], pyramid.levels[1]
    square = ((10.0, 10.0), (60.0, 10.0), (60.0, 40.0), (10.0, 10.0))
    kind, xy = on_slide(Region("POLYLINE", square, base.sop_uid), pyramid)  # type: ignore[misc]
    assert kind == "POLYGON"  # closed
    np.testing.assert_allclose(xy, square)
    # a level of half the resolution: twice the base coordinates
    kind, xy = on_slide(Region("POINT", ((10.0, 20.0),), level1.sop_uid), pyramid)  # type: ignore[misc]
    assert kind == "POINT"
    np.testing.assert_allclose(xy, [(20.0, 40.0)])
    # coordinates of one frame (tile 2 = column 1, row 0 of TILED_FULL)
    kind, xy = on_slide(  # type: ignore[misc]
        Region("POLYLINE", ((5.0, 5.0), (15.0, 5.0)), base.sop_uid, referenced_frame=2), pyramid
    )
    assert kind == "POLYLINE"
    np.testing.assert_allclose(xy, [(261.0, 5.0), (271.0, 5.0)])
    # a circle: centre and a point on it
    kind, xy = on_slide(Region("CIRCLE", ((100.0, 100.0), (130.0, 100.0)), base.sop_uid), pyramid)  # type: ignore[misc]
    assert kind == "POLYGON" and len(xy) == 64
    np.testing.assert_allclose(np.linalg.norm(xy - (100.0, 100.0), axis=1), 30.0)
    # slide coordinates (mm) in the slide's frame of reference
    to_mm = hd.spatial.ImageToReferenceTransformer.for_image(
        small_slide().levels[0], for_total_pixel_matrix=True
    )
    mm = tuple(tuple(p) for p in to_mm(np.asarray(square[:3])))
    region3d = Region("POLYGON", mm, frame_of_reference_uid=base.frame_of_reference_uid)
    kind, xy = on_slide(region3d, pyramid)  # type: ignore[misc]
    np.testing.assert_allclose(xy, square[:3], atol=1e-6)
    # not on this slide: another image, another frame of reference, a frame it lacks
    assert on_slide(Region("POINT", ((1.0, 1.0),), "1.2.3"), pyramid) is None
    assert on_slide(Region("POLYGON", mm, frame_of_reference_uid="1.2.3"), pyramid) is None
    assert (
        on_slide(Region("POINT", ((1.0, 1.0),), base.sop_uid, referenced_frame=9999), pyramid)
        is None
    )


def test_one_group_per_sr_finding_numbered_for_the_study(pyramid: SlidePyramid) -> None:
    base = pyramid.levels[0]
    findings = [
        _finding("a", Region("POINT", ((1.0, 2.0),), base.sop_uid)),
        _finding("ann", Region("POINT", ((1.0, 2.0),), base.sop_uid), template="ANN"),
        _finding("b", Region("POINT", ((1.0, 2.0),), "elsewhere")),
        _finding("c", Region("POLYLINE", ((0.0, 0.0), (9.0, 9.0)), base.sop_uid)),
    ]
    numbers = sr_numbers(findings)
    assert numbers == {"a": SR_GROUP_BASE, "b": SR_GROUP_BASE + 1, "c": SR_GROUP_BASE + 2}
    groups = sr_groups(findings, pyramid, numbers)
    assert [g.number for g in groups] == [SR_GROUP_BASE, SR_GROUP_BASE + 2]  # b is elsewhere
    assert groups[0].is_points and groups[0].label == "AI finding a"
    # the reader rejected "a": the others keep their numbers (and show/hide state)
    assert [g.number for g in sr_groups(findings[2:], pyramid, numbers)] == [SR_GROUP_BASE + 2]
