"""Overlays on the slice viewer, checked on rendered pixels under Xvfb: every SCOORD graphic
type, SCOORD3D regions on each slice they cross, SEG masks, labels and the reader's controls."""

from __future__ import annotations

import numpy as np
import pytest

from app.domain import Algorithm, Code, Finding, Measurement, Region, Segment, SegmentationResult
from app.domain.models import Urgency
from app.results.seg_source import SegmentLayer
from tests.ui.test_slice_viewer import make_volume
from viewers.region_overlay import region_outlines
from viewers.slice_viewer import SliceViewer

pytestmark = pytest.mark.gui


def coloured(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(int)
    return (rgb.max(axis=2) - rgb.min(axis=2)) > 80


def box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    assert ys.size, "nothing drawn"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def expected_box(
    viewer: SliceViewer, x0: float, y0: float, x1: float, y1: float
) -> tuple[float, float, float, float]:
    """World mm box -> widget pixels."""
    a, b = viewer.world_to_widget(x0, y0), viewer.world_to_widget(x1, y1)
    return a[0], a[1], b[0], b[1]


def assert_box(got: tuple[int, ...], want: tuple[float, ...], tol: float) -> None:
    for g, w in zip(got, want, strict=True):
        assert abs(g - w) <= tol, (got, want)


def show(viewer: SliceViewer, slices: int = 3, size: int = 64, spacing: float = 2.0) -> None:
    viewer.show_volume(
        make_volume(np.zeros((slices, size, size)), spacing=(spacing, 1.0, 1.0)), slice_index=1
    )
    viewer.set_text_visible(False)


# SCOORD (column, row); pixel (i, j) centre is SCOORD (i + .5, j + .5) and world (i, j) mm
CASES = {
    "POINT": (((20.5, 30.5),), (20.0, 30.0, 20.0, 30.0), True),
    "MULTIPOINT": (((10.5, 10.5), (40.5, 50.5)), (10.0, 10.0, 40.0, 50.0), True),
    "POLYLINE": (((10.0, 20.0), (30.0, 20.0), (30.0, 40.0)), (9.5, 19.5, 29.5, 39.5), False),
    "POLYGON": (((12.0, 8.0), (44.0, 8.0), (28.0, 30.0)), (11.5, 7.5, 43.5, 29.5), False),
    "CIRCLE": (((32.5, 32.5), (42.5, 32.5)), (22.0, 22.0, 42.0, 42.0), False),
    "ELLIPSE": (
        ((20.5, 32.5), (44.5, 32.5), (32.5, 26.5), (32.5, 38.5)),
        (20.0, 26.0, 44.0, 38.0),
        False,
    ),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_every_scoord_graphic_type_lands_on_its_pixels(viewer: SliceViewer, kind: str) -> None:
    coords, world, is_marker = CASES[kind]
    show(viewer)
    viewer.set_regions([Region(kind, coords, referenced_sop_uid="1.2.3.1")])
    got = box(coloured(viewer.rendered_rgb()))
    px = viewer.world_to_widget(1.0, 0.0)[0] - viewer.world_to_widget(0.0, 0.0)[0]
    if is_marker:  # a cross centred on each point: the box grows by the marker's arm
        arm = 0.025 * 64
        world = (world[0] - arm, world[1] - arm, world[2] + arm, world[3] + arm)
    assert_box(got, expected_box(viewer, *world), tol=2.5 if not is_marker else 0.3 * px + 2)
    viewer.set_slice(0)  # a SCOORD region is only on its own image
    assert not coloured(viewer.rendered_rgb()).any()


def test_scoord3d_polygon_in_a_slice_plane_lands_on_its_pixels(viewer: SliceViewer) -> None:
    show(viewer)
    viewer.volume.pixels[1, 6:16, 10:20] = 1000.0  # a white square, pixels (10..19, 6..15)
    viewer.set_slice(0)
    viewer.set_slice(1)
    z = 2.0  # slice 1's plane; world x, y of pixel edges
    corners = ((9.5, 5.5, z), (19.5, 5.5, z), (19.5, 15.5, z), (9.5, 15.5, z))
    viewer.set_regions([Region("POLYGON", corners, frame_of_reference_uid="1.2.3")])
    rgb = viewer.rendered_rgb()
    white = box(np.all(rgb > 200, axis=2))
    px = viewer.world_to_widget(1.0, 0.0)[0] - viewer.world_to_widget(0.0, 0.0)[0]
    assert_box(box(coloured(rgb)), white, tol=1.2 * px)
    assert_box(box(coloured(rgb)), expected_box(viewer, 9.5, 5.5, 19.5, 15.5), tol=2)
    for other in (0, 2):
        viewer.set_slice(other)
        assert not coloured(viewer.rendered_rgb()).any(), other


def test_scoord3d_polygon_across_slices_draws_on_each_slice_it_crosses(
    viewer: SliceViewer,
) -> None:
    """A quad tilted from z = 4 mm to z = 10 mm (slices 2 mm apart: slices 2..5) cuts each
    of those slices along a line at a known x; slices 0, 1, 6, 7 show nothing."""
    viewer.show_volume(make_volume(np.zeros((8, 64, 64))), slice_index=0)
    viewer.set_text_visible(False)
    # x runs 10 -> 40 while z runs 4 -> 10: on slice k (z = 2k) the cut is at x = 10 + 5 (2k - 4)
    quad = ((10.0, 20.0, 4.0), (40.0, 20.0, 10.0), (40.0, 40.0, 10.0), (10.0, 40.0, 4.0))
    region = Region("POLYGON", quad, frame_of_reference_uid="1.2.3")
    vol = viewer.volume
    assert [bool(region_outlines([region], vol, k)) for k in range(8)] == [
        False,
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    viewer.set_regions([region])
    for k in range(8):
        viewer.set_slice(k)
        drawn = coloured(viewer.rendered_rgb())
        assert drawn.any() == (2 <= k <= 5), k
        if 2 < k < 5:  # the cut: a line from y 20 to 40 at x = 10 + 5 (2k - 4) (+- 5 mm slab)
            x = 10.0 + 5.0 * (2 * k - 4)
            x0, y0, x1, y1 = box(drawn)
            want = expected_box(viewer, x - 5.0, 20.0, x + 5.0, 40.0)
            assert_box((x0, y0, x1, y1), want, tol=3)
            cx = viewer.world_to_widget(x, 30.0)
            assert drawn[round(cx[1]), round(cx[0]) - 2 : round(cx[0]) + 3].any()


def test_scoord3d_points_and_ellipsoid_on_the_slices_they_reach(viewer: SliceViewer) -> None:
    vol = make_volume(np.zeros((8, 64, 64)))
    points = Region(
        "MULTIPOINT", ((10.0, 10.0, 2.0), (30.0, 30.0, 8.4)), frame_of_reference_uid="1.2.3"
    )
    assert [len(region_outlines([points], vol, k)) for k in range(8)] == [0, 3, 0, 0, 3, 0, 0, 0]
    # a sphere of radius 5 mm at z = 8 reaches slices 2 (z 4, edge: not cut) .. 6 (z 12)
    c = (32.0, 32.0, 8.0)
    sphere = Region(
        "ELLIPSOID",
        (
            (27.0, 32.0, 8.0),
            (37.0, 32.0, 8.0),
            (32.0, 27.0, 8.0),
            (32.0, 37.0, 8.0),
            (32.0, 32.0, 3.0),
            (32.0, 32.0, 13.0),
        ),
        frame_of_reference_uid="1.2.3",
    )
    cuts = [region_outlines([sphere], vol, k) for k in range(8)]
    assert [bool(c) for c in cuts] == [False, False, True, True, True, True, True, False]
    ring = cuts[4][0].points  # the equator: radius 5 around the centre
    assert np.allclose(np.linalg.norm(ring - np.array(c[:2]), axis=1), 5.0)
    ring3 = cuts[3][0].points  # 2 mm off the centre: radius sqrt(25 - 4)
    assert np.allclose(np.linalg.norm(ring3 - np.array(c[:2]), axis=1), np.sqrt(21.0))


def _layer(
    mask_slices: dict[int, np.ndarray], colour: tuple[int, int, int] = (255, 0, 0), number: int = 1
) -> SegmentLayer:
    segment = Segment(number, f"Seg {number}", colour)
    result = SegmentationResult("9.9", "9.8", "9.7", "BINARY", (segment,))
    return SegmentLayer(result, segment, mask_slices)


def test_seg_mask_lands_on_its_pixels_in_its_colour(viewer: SliceViewer) -> None:
    show(viewer)
    mask = np.zeros((64, 64), np.uint8)
    mask[6:16, 10:20] = 255  # rows 6..15, columns 10..19
    layer = _layer({1: mask})
    viewer.overlays.set_segments([layer])
    viewer.overlays.set_segment_opacity(layer.key, 1.0)
    rgb = viewer.rendered_rgb().astype(int)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    assert_box(box(red), expected_box(viewer, 9.5, 5.5, 19.5, 15.5), tol=2)
    assert red.sum() > 0.8 * np.prod(np.array(box(red))[2:] - np.array(box(red))[:2])
    # half opacity over a black image: half the colour
    viewer.overlays.set_segment_opacity(layer.key, 0.5)
    cx, cy = viewer.world_to_widget(14.5, 10.5)
    r, g, b = viewer.rendered_rgb()[int(cy), int(cx)].astype(int)
    assert 100 <= r <= 155 and g < 30 and b < 30
    # per segment hide, global toggle, other slices
    viewer.overlays.set_segment_visible(layer.key, False)
    assert not coloured(viewer.rendered_rgb()).any()
    viewer.overlays.set_segment_visible(layer.key, True)
    assert viewer.overlays.toggle() is False
    assert not coloured(viewer.rendered_rgb()).any()
    viewer.overlays.toggle()
    assert coloured(viewer.rendered_rgb()).any()
    viewer.set_slice(0)
    assert not coloured(viewer.rendered_rgb()).any()
    viewer.set_slice(1)
    assert coloured(viewer.rendered_rgb()).any()
    viewer.show_volume(make_volume(np.zeros((3, 64, 64))), slice_index=1)  # a new series
    assert viewer.overlays.segments == []


def _finding(uid: str, region: Region, *measures: Measurement) -> Finding:
    return Finding(
        uid,
        Code("1", "SCT", "Bleed"),
        None,
        0.9,
        Urgency.URGENT,
        Algorithm("A", "1"),
        (region,),
        measures,
        "",
    )


def test_labels_hide_and_hover(viewer: SliceViewer) -> None:
    show(viewer)
    square = Region(
        "POLYGON", ((10, 10), (20, 10), (20, 20), (10, 20)), referenced_sop_uid="1.2.3.1"
    )
    other = Region(
        "POLYGON", ((40, 40), (50, 40), (50, 50), (40, 50)), referenced_sop_uid="1.2.3.1"
    )
    volume = Measurement(Code("118565006", "SCT", "Volume"), 12.5, Code("ml", "UCUM", "ml"))
    viewer.set_findings([_finding("a", square, volume), _finding("b", other)])
    (label,) = viewer.overlays.placed_labels
    assert label[0] == "Volume 12.5 ml"
    assert label[1] > 19.5 and 9.0 <= label[2] <= 10.0  # right of the square, at its top
    rgb = viewer.rendered_rgb().astype(int)
    lx, ly = viewer.world_to_widget(label[1], label[2])
    text = coloured(rgb[int(ly) : int(ly) + 20, int(lx) : int(lx) + 80])
    assert text.sum() > 20, "the label is not drawn where it was placed"

    def cyan() -> np.ndarray:
        rgb = viewer.rendered_rgb().astype(int)
        return (rgb[..., 2] > 180) & (rgb[..., 1] > 180) & (rgb[..., 0] < 120)

    assert not cyan().any()
    viewer.overlays.set_hover("b")  # hovering b's card lights b's outline
    x0, y0, x1, y1 = box(cyan())
    assert_box((x0, y0, x1, y1), expected_box(viewer, 39.5, 39.5, 49.5, 49.5), tol=3)
    viewer.overlays.set_hover(None)
    assert not cyan().any()
    viewer.overlays.set_finding_visible("a", False)  # a hidden: its outline and label go
    assert viewer.overlays.placed_labels == []
    assert {o.owner for o in viewer.overlays.outlines} == {"b"}
    viewer.overlays.set_finding_visible("a", True)
    assert {o.owner for o in viewer.overlays.outlines} == {"a", "b"}


def test_center_on_puts_a_point_in_the_middle(viewer: SliceViewer) -> None:
    show(viewer)
    viewer._zoom(3.0)
    viewer.center_on(50.0, 12.0)
    x, y = viewer.world_to_widget(50.0, 12.0)
    w, h = viewer.gl_widget.GetRenderWindow().GetSize()
    assert abs(x - (w - 1) / 2) <= 1.5 and abs(y - (h - 1) / 2) <= 1.5
