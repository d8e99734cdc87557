"""The series switcher's thumbnail: the middle slice, windowed, with its pixel aspect."""

from __future__ import annotations

import numpy as np

from tests.ui.test_slice_viewer import make_volume
from viewers.thumbnail import series_thumbnail


def test_thumbnail_is_the_windowed_middle_slice_with_its_aspect() -> None:
    pixels = np.full((5, 40, 80), -1000.0)
    pixels[2, :, 40:] = 1000.0  # middle slice: right half bright
    pixels[0] = 1000.0  # another slice, all bright: not the one shown
    vol = make_volume(pixels, spacing=(2.0, 1.0, 0.5), window=(0.0, 400.0))
    vol.loaded = np.array([True, True, False, True, True])
    assert series_thumbnail(vol, 32) is None  # the middle slice is still loading
    vol.loaded[2] = True
    picture = series_thumbnail(vol, 32)
    assert picture is not None
    assert (picture.width(), picture.height()) == (32, 32)  # 80 x 0.5 mm by 40 x 1 mm: square
    assert picture.pixelColor(4, 16).lightness() < 30
    assert picture.pixelColor(28, 16).lightness() > 220
