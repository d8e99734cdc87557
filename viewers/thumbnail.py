"""A small picture of a series (its middle slice) for the series switcher.

Made from pixels the loader already holds, so it costs no request; None until the
middle slice is in.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.archive.volume import ImageVolume


def series_thumbnail(volume: ImageVolume, size: int = 64) -> QImage | None:
    """The middle slice, in its default window, fitted into ``size`` x ``size`` with its
    pixel aspect; None while that slice is still loading (or is a gap)."""
    index = volume.shape[0] // 2
    if not volume.is_loaded(index):
        return None
    _, rows, cols = volume.shape
    step = max(1, max(rows, cols) // (2 * size))  # subsample, then let Qt smooth the rest
    image = volume.pixels[index, ::step, ::step]
    if volume.is_color:
        data = np.ascontiguousarray(image, dtype=np.uint8)
        fmt = QImage.Format.Format_RGB888
    else:
        low = volume.window_center - volume.window_width / 2.0
        scaled = (image.astype(np.float32) - low) * (255.0 / max(volume.window_width, 1.0))
        data = np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8))
        fmt = QImage.Format.Format_Grayscale8
    h, w = data.shape[:2]
    picture = QImage(data.data, w, h, data.strides[0], fmt).copy()  # copy: own the bytes
    _, dy, dx = volume.spacing
    width, height = w * dx, h * dy
    ratio = size / max(width, height, 1e-6)
    return picture.scaled(
        max(1, round(width * ratio)),
        max(1, round(height * ratio)),
        Qt.AspectRatioMode.IgnoreAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
