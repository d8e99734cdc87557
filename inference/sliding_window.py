"""Sliding-window inference: run a network patch by patch over a volume bigger than its patch.

Patches overlap by a fraction; overlapping outputs are averaged. A volume smaller
than the patch along an axis is padded with zeros there (the windowed input's
minimum) and the output cropped back. ``on_patch(done, total)`` runs after each
patch: progress, and the place a cancel is noticed (it may raise).

torch is imported by the caller (this module is only used inside the worker).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start indices along one axis so that patches of ``patch`` cover ``size``."""
    if size <= patch:
        return [0]
    step = max(1, int(patch * (1.0 - overlap)))
    starts = list(range(0, size - patch + 1, step))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def sliding_window(
    volume: Any,  # torch.Tensor (1, C, Z, Y, X)
    patch: tuple[int, int, int],
    forward: Callable[[Any], Any],
    *,
    overlap: float = 0.25,
    on_patch: Callable[[int, int], None] | None = None,
) -> Any:
    """The network's output (1, K, Z, Y, X) over the whole volume, float32 on its device."""
    import torch
    import torch.nn.functional as F

    _, _, z, y, x = volume.shape
    pz, py, px = patch
    pad = (0, max(0, px - x), 0, max(0, py - y), 0, max(0, pz - z))
    padded = F.pad(volume, pad) if any(pad) else volume
    _, _, zz, yy, xx = padded.shape
    positions = [
        (a, b, c)
        for a in window_starts(zz, pz, overlap)
        for b in window_starts(yy, py, overlap)
        for c in window_starts(xx, px, overlap)
    ]
    out: Any = None
    counts = torch.zeros((1, 1, zz, yy, xx), dtype=torch.float32, device=volume.device)
    for n, (a, b, c) in enumerate(positions):
        tile = padded[:, :, a : a + pz, b : b + py, c : c + px]
        pred = forward(tile).float()
        if out is None:
            out = torch.zeros(
                (1, pred.shape[1], zz, yy, xx), dtype=torch.float32, device=volume.device
            )
        out[:, :, a : a + pz, b : b + py, c : c + px] += pred
        counts[:, :, a : a + pz, b : b + py, c : c + px] += 1.0
        if on_patch is not None:
            on_patch(n + 1, len(positions))
    assert out is not None
    return (out / counts)[:, :, :z, :y, :x]
