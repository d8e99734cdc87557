"""Levels split over several instances are one level, each tile mapped to its instance."""

from __future__ import annotations

from app.archive.slide_pyramid import SlideLevel, merge_instances

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
