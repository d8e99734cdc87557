"""A small two-level 3D U-Net (~12k weights): enough for hyperdense blobs in a head CT.

It works on a coarse grid (3.6 mm in-plane, 3 mm slices) so that a whole head runs in
about a second on two CPU cores. It halves in-plane once, so a patch must be a multiple
of 2 in-plane. Output: one channel of logits (sigmoid -> probability of a
hemorrhage-like hyperdensity).
"""

from __future__ import annotations

import torch
from torch import nn


class SmallUNet3D(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        act = nn.LeakyReLU(0.1)
        self.enc1 = nn.Sequential(
            nn.Conv3d(1, w, (1, 3, 3), padding=(0, 1, 1)), act,
            nn.Conv3d(w, w, 3, padding=1), act,
        )  # fmt: skip
        self.down = nn.MaxPool3d((1, 2, 2))
        self.enc2 = nn.Sequential(
            nn.Conv3d(w, 2 * w, 3, padding=1), act,
            nn.Conv3d(2 * w, 2 * w, 3, padding=1), act,
        )  # fmt: skip
        self.up = nn.Upsample(scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        self.dec = nn.Sequential(nn.Conv3d(3 * w, w, (1, 3, 3), padding=(0, 1, 1)), act)
        self.head = nn.Conv3d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.down(e1))
        return self.head(self.dec(torch.cat([self.up(e2), e1], 1)))
