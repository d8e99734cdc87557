"""The value under the cursor, as the corner text shows it.

The loader applies Rescale Slope/Intercept once, so a CT volume already holds
Hounsfield units; other modalities show the rescaled value, colour images the
RGB triplet. Coordinates are the acquired image's column (x) and row (y), plus the
acquired slice (z) in a reformatted plane.
"""

from __future__ import annotations

import numpy as np

from viewers.reformat import Plane


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def pixel_readout(plane: Plane, index: int, world_x: float, world_y: float) -> str:
    """Text for world point (``world_x``, ``world_y``) mm on image ``index`` of ``plane``;
    "" when the point is outside the image or its slice has no pixels yet."""
    dc, dr = plane.spacing
    column, row = int(np.floor(world_x / dc + 0.5)), int(np.floor(world_y / dr + 0.5))
    voxel = plane.voxel(index, column, row)
    volume = plane.volume
    if voxel is None or not volume.is_loaded(voxel[0]):
        return ""
    z, y, x = voxel
    value = volume.pixels[z, y, x]
    where = f"(x {x}, y {y})" if not plane.reformatted else f"(x {x}, y {y}, z {z + 1})"
    if volume.is_color:
        r, g, b = (int(v) for v in value)
        return f"RGB {r}, {g}, {b} {where}"
    label = "HU" if volume.modality.upper() == "CT" else "Value"
    return f"{label} {_number(float(value))} {where}"
