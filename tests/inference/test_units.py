"""Pieces of the runner that need no worker: windows, OOM fallback, components, outlines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.findings import components, outline, upsample_mask
from inference.sliding_window import sliding_window, window_starts
from inference.worker import JobCancelled, run_with_fallback


def test_window_starts_cover_the_axis() -> None:
    assert window_starts(44, 16, 0.25) == [0, 12, 24, 28]
    assert window_starts(10, 16, 0.25) == [0]


def test_sliding_window_equals_the_whole_volume_for_a_pointwise_model() -> None:
    x = torch.rand(1, 1, 21, 40, 37)
    calls: list[tuple[int, int]] = []
    out = sliding_window(
        x, (8, 16, 16), lambda t: t * 2.0, on_patch=lambda d, n: calls.append((d, n))
    )
    assert out.shape == x.shape and torch.allclose(out, x * 2.0)
    assert calls[-1][0] == calls[-1][1] == len(calls) > 1
    small = torch.rand(1, 1, 4, 8, 8)  # smaller than the patch: padded, then cropped
    assert torch.allclose(sliding_window(small, (8, 16, 16), lambda t: t + 1.0), small + 1.0)


def test_oom_falls_back_to_smaller_windows_then_cpu() -> None:
    tried: list[tuple[str, tuple[int, int, int]]] = []

    def attempt(device: str, patch: tuple[int, int, int]) -> str:
        tried.append((device, patch))
        if device == "cuda":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "ok"

    notes: list[str] = []
    result, device, patch = run_with_fallback(attempt, "cuda", (16, 64, 64), notes.append)
    assert (result, device, patch) == ("ok", "cpu", (16, 64, 64))
    assert [p for _, p in tried] == [(16, 64, 64), (16, 32, 32), (16, 16, 16), (16, 64, 64)]
    assert "CPU" in notes[-1] and len(notes) == 3

    def fails(device: str, patch: tuple[int, int, int]) -> str:
        raise ValueError("a real bug")

    with pytest.raises(ValueError):
        run_with_fallback(fails, "cuda", (16, 64, 64), notes.append)

    def cancelled(device: str, patch: tuple[int, int, int]) -> str:
        raise JobCancelled()

    with pytest.raises(JobCancelled):
        run_with_fallback(cancelled, "cuda", (16, 64, 64), notes.append)


def test_components_and_outline() -> None:
    m = np.zeros((5, 6, 7), dtype=bool)
    m[1:3, 1:3, 1:3] = True
    m[4, 5, 6] = True
    m[0, 5, 0] = m[1, 5, 0] = True
    assert sorted(len(c) for c in components(m)) == [1, 2, 8]
    plane = np.zeros((6, 6), dtype=bool)
    plane[1:4, 2:5] = True
    assert outline(plane) == [(2.0, 1.0), (5.0, 1.0), (5.0, 4.0), (2.0, 4.0), (2.0, 1.0)]
    up = upsample_mask(m, (5, 12, 14))
    assert up.shape == (5, 12, 14) and up.sum() == m.sum() * 4
