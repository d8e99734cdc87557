"""Synthetic training and test cases from the demo's head CT phantom (``app.demo.phantoms``).

A case is one seeded head CT, with or without a random ellipsoidal bleed, and its
ground-truth mask. The mask comes from drawing the same head twice from the same seed,
with and without the lesion: the phantom's random stream does not depend on the lesion,
so the two differ exactly where the lesion (and its edema rim) was drawn; blood is the
part above 46 HU (edema is drawn at 20 HU, blood at 72 +- texture).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.demo.phantoms import Lesion, Volume, head_ct

HU_OFFSET = 1024.0  # the phantom stores HU + 1024


@dataclass(frozen=True)
class Case:
    hu: np.ndarray  # (z, y, x) float32 HU on the phantom's grid
    truth: np.ndarray  # (z, y, x) bool, blood voxels
    volume: Volume  # the phantom (pixels as stored, geometry)


def random_lesion(rng: np.random.Generator) -> Lesion:
    """A bleed somewhere inside the brain, 4-22 mm semi-axes."""
    a, b = rng.uniform(4.0, 20.0), rng.uniform(4.0, 22.0)
    c = rng.uniform(4.0, 14.0)
    center = (rng.uniform(-38.0, 38.0), rng.uniform(-45.0, 50.0), rng.uniform(-12.0, 48.0))
    return Lesion((round(center[0], 1), round(center[1], 1), round(center[2], 1)), (a, b, c))


def make_case(seed: int, lesion: bool) -> Case:
    """One case; ``seed`` fixes both the head and the lesion."""
    lesion_rng = np.random.default_rng([seed, 1])
    spec = random_lesion(lesion_rng) if lesion else None
    vol = head_ct(np.random.default_rng([seed, 0]), spec)
    hu = vol.pixels.astype(np.float32) - HU_OFFSET
    if spec is None:
        return Case(hu, np.zeros(hu.shape, dtype=bool), vol)
    plain = head_ct(np.random.default_rng([seed, 0]), None)
    truth = (vol.pixels != plain.pixels) & (hu > 46.0)
    return Case(hu, truth, vol)
