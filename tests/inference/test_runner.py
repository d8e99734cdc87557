"""The runner on the CPU, end to end on a demo head CT: findings, SR + SEG that validate,
an SR that reads back identically; refusal of studies that do not fit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from app.archive.volume import ImageVolume, slice_index_for_sop
from app.demo.generate import DemoStudy
from app.domain import Urgency
from app.results import codes
from app.results.sr_reader import read_ai_result
from inference.outputs import build_objects
from inference.service import InferenceService, StudyNotSuitable
from tests.support import validators


def test_demo_head_ct_end_to_end(
    service: InferenceService, ich_study: DemoStudy, ich_volume: ImageVolume, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    result = service.run(
        ich_volume, "ich_demo_ct", body_part="HEAD", progress=lambda d, n: seen.append((d, n))
    )
    assert seen and seen[-1][0] == seen[-1][1] > 1  # several sliding windows, all reported
    assert result.device == "cpu"
    assert len(result.findings) >= 1
    top = result.findings[0]
    assert top.finding == codes.INTRACRANIAL_HEMORRHAGE and top.site == codes.BRAIN
    assert top.algorithm.name == "ICH Demo (synthetic)" and top.algorithm.version == "0.1.0"
    assert top.urgency == Urgency.CRITICAL  # the demo bleed is about 25 ml
    assert top.certainty is not None and 0.5 <= top.certainty <= 1.0
    volume_ml = top.measurements[0].value
    assert 12.0 < volume_ml < 40.0, volume_ml
    # The outline lies on a slice of the lesion (centre z = 21 mm, semi-axis 15 mm).
    region = top.regions[0]
    z = slice_index_for_sop(ich_volume, str(region.referenced_sop_uid))
    assert z is not None and abs(ich_volume.positions[z][2] - 21.0) <= 15.0
    assert len(result.outlines[top.tracking_uid]) >= 5
    assert result.mask.shape == ich_volume.shape and result.mask.any()

    objects = build_objects(result, ich_study.images)
    assert objects.seg is not None
    sr_path = validators.write(objects.sr, tmp_path / "sr.dcm")
    seg_path = validators.write(objects.seg, tmp_path / "seg.dcm")
    assert validators.dciodvfy(sr_path) == []
    assert validators.dciodvfy(seg_path) == []
    assert validators.pixelmed(sr_path) == []  # TID 1500 content, too
    back = read_ai_result(objects.sr)
    assert back.readable and back.template == "TID1500"
    assert [f.to_json() for f in back.findings] == [f.to_json() for f in result.findings]
    assert back.algorithm is not None and back.algorithm.name == "ICH Demo (synthetic)"
    seg_uids = [str(s.TrackingUID) for s in objects.seg.SegmentSequence]
    assert seg_uids == [f.tracking_uid for f in result.findings]


def test_second_run_reuses_the_warm_worker(
    service: InferenceService, ich_volume: ImageVolume
) -> None:
    service.start()
    pid = service.worker_pid
    result = service.run(ich_volume, "ich_demo_ct")
    assert service.worker_pid == pid
    assert result.timings["load_s"] == 0.0  # the model stayed loaded
    print("timings:", {k: round(v, 3) for k, v in result.timings.items()})


def test_study_that_does_not_fit_is_refused_before_running(
    service: InferenceService, ich_volume: ImageVolume
) -> None:
    mr = dataclasses.replace(ich_volume, modality="MR")
    with pytest.raises(StudyNotSuitable, match="takes CT"):
        service.run(mr, "ich_demo_ct")
    few = dataclasses.replace(
        ich_volume,
        pixels=ich_volume.pixels[:5],
        sop_uids=ich_volume.sop_uids[:5],
        positions=ich_volume.positions[:5],
    )
    with pytest.raises(StudyNotSuitable, match="at least 16 slices"):
        service.run(few, "ich_demo_ct")
    flat = dataclasses.replace(ich_volume, has_geometry=False)
    with pytest.raises(StudyNotSuitable, match="spacing"):
        service.run(flat, "ich_demo_ct")
    with pytest.raises(StudyNotSuitable, match="body part"):
        service.run(ich_volume, "ich_demo_ct", body_part="CHEST")


def test_no_findings_on_a_head_without_a_bleed(service: InferenceService) -> None:
    from app.archive.series_loader import volume_from_datasets
    from app.demo.generate import generate_demo_set

    study = generate_demo_set(seed=0, only=["ct-no-finding"]).study("ct-no-finding")
    result = service.run(volume_from_datasets(study.images), "ich_demo_ct", body_part="HEAD")
    assert result.findings == ()
    assert not np.any(result.mask)
    objects = build_objects(result, study.images)  # "ran and found nothing" is a result
    assert objects.seg is None and read_ai_result(objects.sr).findings == ()
