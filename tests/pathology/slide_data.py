"""A small demo slide shared by the pathology tests (seconds to build)."""

from __future__ import annotations

from functools import cache

from app.demo.slide import DemoSlide, SlideSpec, generate_slide

SMALL = SlideSpec(width=1500, height=1100, levels=3, seed=7)


@cache
def small_slide() -> DemoSlide:
    return generate_slide(SMALL)
