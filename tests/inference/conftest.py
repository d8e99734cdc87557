"""Shared fixtures: one warm inference service per module (starting torch costs seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.archive.series_loader import volume_from_datasets
from app.archive.volume import ImageVolume
from app.demo.generate import DemoStudy, generate_demo_set
from inference.registry import ModelRegistry
from inference.service import InferenceService


@pytest.fixture(scope="module")
def service() -> Iterator[InferenceService]:
    svc = InferenceService(ModelRegistry(), device="cpu")
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def ich_study() -> DemoStudy:
    return generate_demo_set(seed=0, only=["ct-ich-critical"]).study("ct-ich-critical")


@pytest.fixture(scope="session")
def ich_volume(ich_study: DemoStudy) -> ImageVolume:
    return volume_from_datasets(ich_study.images)
