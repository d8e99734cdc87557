"""Which models fit a series: the check Run AI, auto-run and ``companion infer`` share."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from app.archive.client import open_local
from app.archive.volume import ImageVolume
from app.demo.generate import DemoSet, DemoStudy
from app.demo.seed import seed_archive
from inference.choose import body_part_of, model_choices, refusal_text, series_body_part
from inference.registry import ModelRegistry


def test_the_head_model_fits_a_head_ct_and_is_refused_on_a_chest_ct(
    ich_volume: ImageVolume,
) -> None:
    registry = ModelRegistry()
    (head,) = [c for c in model_choices(registry, ich_volume, "HEAD") if c.fits]
    assert head.entry.name == "ich_demo_ct" and not head.unverified

    chest = model_choices(registry, ich_volume, "CHEST")
    assert not any(c.fits for c in chest)
    assert "takes body part HEAD/BRAIN, this series is CHEST" in chest[0].refusal
    text = refusal_text(chest, "CT", "CHEST")
    assert text.startswith("No model fits this CT CHEST series: model 'ich_demo_ct' takes")


def test_a_series_without_body_part_fits_unverified_and_other_checks_still_refuse(
    ich_volume: ImageVolume,
) -> None:
    registry = ModelRegistry()
    (choice,) = model_choices(registry, ich_volume, "")
    assert choice.fits and "no Body Part Examined" in choice.unverified
    thin = replace(ich_volume, pixels=ich_volume.pixels[:8], sop_uids=ich_volume.sop_uids[:8])
    (refused,) = model_choices(registry, thin, "HEAD")
    assert not refused.fits and "at least 16 slices" in refused.refusal
    mr = replace(ich_volume, modality="MR")
    assert "takes CT series, this one is MR" in model_choices(registry, mr, "HEAD")[0].refusal
    assert refusal_text([], "CT", "").startswith("No AI models are installed")


def test_body_part_comes_from_the_headers_or_the_archive(
    ich_study: DemoStudy, tmp_path: Path
) -> None:
    assert body_part_of(ich_study.images) == "HEAD"
    assert body_part_of([]) == ""
    archive = open_local(tmp_path / "archive")
    seed_archive(archive, DemoSet(0, ich_study.study_datetime, [ich_study]))
    first = ich_study.images[0]
    assert series_body_part(archive, ich_study.study_uid, str(first.SeriesInstanceUID)) == "HEAD"
