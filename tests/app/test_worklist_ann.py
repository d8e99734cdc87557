"""A slide study whose AI result is a bulk annotations object (ANN) ranks like one with an SR."""

from __future__ import annotations

import pytest

from app.archive.client import open_dicomweb, open_local
from app.demo.slide_annotations import build_slide_annotations
from app.domain import AIStatus
from app.settings import WorklistWeights
from app.worklist.service import WorklistService
from tests.app.test_worklist_orthanc import CountingArchive
from tests.pathology.slide_data import small_slide
from tests.support.orthanc import OrthancServer


@pytest.mark.orthanc
def test_ann_results_rank_and_are_polled(empty_orthanc: OrthancServer) -> None:
    slide = small_slide()
    archive = CountingArchive(open_dicomweb(empty_orthanc.dicomweb_url))
    archive.store(slide.levels)
    service = WorklistService(archive, WorklistWeights(), full_resync_seconds=3600)

    before = service.build()
    (item,) = before.items
    assert item.study.modality == "SM"  # shown like any other study
    assert item.ai_status is AIStatus.NONE and not item.findings

    # the AI's annotations arrive: the next (probing, not full) refresh finds them
    ann = build_slide_annotations(slide)
    archive.store([ann])
    after = service.build()
    (item,) = after.items
    assert item.ai_status is AIStatus.DONE
    tumors = len(slide.content.tumor_polygons)
    assert len(item.findings) == tumors + 2  # one per tumor region, one per group of nuclei
    assert item.score > before.items[0].score
    assert item.reason.startswith("Routine AI finding: malignant neoplasm")
    assert archive.retrieved == [ann.SOPInstanceUID]

    # unchanged: the parsed result is reused, nothing is retrieved again
    again = service.build()
    assert again.items[0].findings == item.findings
    assert archive.retrieved == [ann.SOPInstanceUID]


def test_ann_results_in_the_local_archive(tmp_path) -> None:  # type: ignore[no-untyped-def]
    slide = small_slide()
    archive = open_local(tmp_path / "archive")
    archive.store([*slide.levels, build_slide_annotations(slide)])
    worklist = WorklistService(archive, WorklistWeights()).build(full=True)
    (item,) = worklist.items
    assert item.ai_status is AIStatus.DONE
    assert {f.template for f in item.findings} == {"ANN"}
    assert item.rank == 1 and item.score > 0
