"""The demo data set's pathology study: which slide, how big, and when it was scanned.

The slide (``app.demo.slide``) and its AI bulk annotations are seeded with the
radiology studies. Its size is the base level in pixels: full size by default
(``DEFAULT_SIZE``, a 40x scan of a core biopsy, four levels), or what ``--slide-size``
or the ``COMPANION_DEMO_SLIDE_SIZE`` environment variable (``WxH``) asks for; the
tests set a small one. The number of levels follows the size: each level halves the
one above, down to an overview of about ``OVERVIEW_PX`` pixels, never fewer than three.
"""

from __future__ import annotations

import math
import os
import re
from datetime import datetime, timedelta

from app.demo.slide import TILE, SlideSpec
from app.errors import DemoDataError

SLIDE_KEY = "sm-ki67"
DEFAULT_SIZE = (20_480, 15_360)
MIN_LEVELS = 3
OVERVIEW_PX = 2_560
WAITING_MINUTES = 150  # the slide was scanned this long before the demo was seeded
SIZE_ENV = "COMPANION_DEMO_SLIDE_SIZE"
_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """``"20480x15360"`` as (width, height); ``DemoDataError`` naming the value otherwise."""
    m = _SIZE.match(text or "")
    if not m:
        raise DemoDataError(f"slide size must be WIDTHxHEIGHT in pixels, got {text!r}")
    width, height = int(m.group(1)), int(m.group(2))
    if width < TILE or height < TILE:
        raise DemoDataError(f"slide size must be at least {TILE}x{TILE} pixels, got {text!r}")
    return width, height


def configured_size(size: str | None = None) -> tuple[int, int]:
    """``size`` if given, else the environment's ``COMPANION_DEMO_SLIDE_SIZE``, else full size."""
    text = size or os.environ.get(SIZE_ENV, "")
    return parse_size(text) if text.strip() else DEFAULT_SIZE


def level_count(width: int, height: int) -> int:
    """Levels down to an overview of about ``OVERVIEW_PX`` (at least ``MIN_LEVELS``)."""
    longest = max(width, height)
    return max(MIN_LEVELS, 1 + math.ceil(math.log2(max(longest / OVERVIEW_PX, 1.0))))


def demo_slide_spec(
    seed: int = 0, reference_time: datetime | None = None, size: str | None = None
) -> SlideSpec:
    """The demo slide for this seed and size, scanned ``WAITING_MINUTES`` before
    ``reference_time`` (so it waits in the worklist like the other studies)."""
    width, height = configured_size(size)
    now = reference_time or datetime.now().replace(second=0, microsecond=0)
    return SlideSpec(
        width=width,
        height=height,
        levels=level_count(width, height),
        seed=seed,
        study_datetime=now - timedelta(minutes=WAITING_MINUTES),
    )
