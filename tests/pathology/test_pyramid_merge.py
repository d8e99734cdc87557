"""Levels split over several instances are one level, each tile mapped to its instance."""

from __future__ import annotations

import copy

from pydicom.dataset import Dataset

from app.archive.slide_pyramid import SlideLevel, level_from_json, merge_instances
from tests.pathology.slide_data import small_slide

SPACING = (0.00025, 0.00025)


def test_tiled_full_concatenation_maps_tiles_by_frame_offset() -> None:
    # a 5 x 3 tiling (15 frames) in two instances: frames 1-8, then 9-15 (offset 8)
    first = SlideLevel("1.2.1", 1280, 768, 256, 256, 8, SPACING)
    second = SlideLevel("1.2.2", 1280, 768, 256, 256, 7, SPACING, frame_offset=8)
    label = SlideLevel("1.2.9", 640, 384, 256, 256, 6, SPACING)
    levels = merge_instances([second, label, first])
    assert len(levels) == 2
    level = next(lvl for lvl in levels if lvl.width == 1280)
    assert level.frames == 15
    assert (level.frame_number(0, 0), level.sop_for(0, 0)) == (1, "1.2.1")
    assert (level.frame_number(2, 1), level.sop_for(2, 1)) == (8, "1.2.1")  # 8th tile
    assert (level.frame_number(3, 1), level.sop_for(3, 1)) == (1, "1.2.2")  # 9th tile
    assert (level.frame_number(4, 2), level.sop_for(4, 2)) == (7, "1.2.2")
    assert level.frame_number(5, 0) is None


def test_sparse_instances_of_one_level_are_joined() -> None:
    a = SlideLevel("1.2.1", 512, 512, 256, 256, 2, SPACING, sparse={(0, 0): 1, (1, 1): 2})
    b = SlideLevel("1.2.2", 512, 512, 256, 256, 1, SPACING, sparse={(1, 0): 1})
    (level,) = merge_instances([a, b])
    assert level.sparse == {(0, 0): 1, (1, 1): 2, (1, 0): 1}
    assert [level.sop_for(c, r) for c, r in ((0, 0), (1, 1), (1, 0))] == ["1.2.1", "1.2.1", "1.2.2"]
    assert level.frame_number(0, 1) is None  # a gap


def test_per_frame_positions_are_read_from_the_json() -> None:
    """Per-frame positions (read from the DICOM JSON without building datasets) place
    each frame, whatever the organization type says; a frame without one is skipped."""
    ds = copy.deepcopy(small_slide().levels[0])
    del ds.PixelData
    del ds.DimensionOrganizationType
    items = []
    for place in ((2, 0), (0, 1), None, (1, 1)):
        item = Dataset()
        if place is not None:
            pos = Dataset()
            pos.ColumnPositionInTotalImagePixelMatrix = place[0] * 256 + 1
            pos.RowPositionInTotalImagePixelMatrix = place[1] * 256 + 1
            item.PlanePositionSlideSequence = [pos]
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = items
    ds.NumberOfFrames = len(items)
    level = level_from_json(ds.to_json_dict())
    assert level is not None and level.sparse == {(2, 0): 1, (0, 1): 2, (1, 1): 4}
    assert level.frame_number(0, 0) is None


def test_pixel_spacing_given_per_frame_is_read() -> None:
    """Pixel Spacing only in the per-frame groups (no shared one, no Imaged Volume Width)
    is read from the first frame; the slide's origin and orientation are kept."""
    ds = copy.deepcopy(small_slide().levels[0])
    del ds.PixelData
    del ds.SharedFunctionalGroupsSequence
    del ds.ImagedVolumeWidth
    items = []
    for _ in range(int(ds.NumberOfFrames)):
        measures = Dataset()
        measures.PixelSpacing = [0.0005, 0.0004]
        item = Dataset()
        item.PixelMeasuresSequence = [measures]
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = items
    level = level_from_json(ds.to_json_dict())
    assert level is not None and level.spacing_mm == (0.0005, 0.0004)
    assert level.origin_mm == (20.0, 40.0, 0.0)
    assert level.orientation == (0.0, -1.0, 0.0, -1.0, 0.0, 0.0)
    del ds.PerFrameFunctionalGroupsSequence
    assert level_from_json(ds.to_json_dict()).spacing_mm == (0.0, 0.0)  # type: ignore[union-attr]
