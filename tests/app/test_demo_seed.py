"""Seeding the demo set into the embedded local archive and into a real Orthanc."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.archive.client import DicomClientArchive, open_dicomweb, open_local
from app.demo import ensure_demo_archive, seed_target
from app.demo import seed as seed_module
from app.demo.catalog import STUDIES
from app.demo.generate import demo_uid
from app.domain import Urgency
from app.errors import DemoDataError
from app.results.sr_reader import read_ai_result
from app.results.sr_writer import name_based_uid
from tests.support.orthanc import OrthancServer

EXPECTED_STUDIES = {demo_uid(0, s.key, "study"): s for s in STUDIES}
EXPECTED_SRS = {demo_uid(0, s.key, "sr") for s in STUDIES if s.ai is not None}
# the head CTs with an AI-found bleed also carry the AI's SEG of it
EXPECTED_SEGS = {
    demo_uid(0, s.key, "seg") for s in STUDIES if s.ai is not None and s.modality == "CT"
    and s.lesions
}
SLIDE_LEVELS = 3  # the tests' demo slide (tests/conftest.py: 1024x768)
SLIDE_STUDY = name_based_uid("demo-slide-0-study")
EXPECTED_INSTANCES = sum(
    44 if s.modality == "CT" else 24 if s.modality == "MR" else 1 for s in STUDIES
) + len(EXPECTED_SRS) + len(EXPECTED_SEGS) + SLIDE_LEVELS + 1  # the slide's levels and its ANN


def _check_contents(archive: DicomClientArchive) -> None:
    studies = {s.study_uid: s for s in archive.search_studies()}
    assert set(studies) == set(EXPECTED_STUDIES) | {SLIDE_STUDY}
    assert {"SM", "ANN"} <= set(studies[SLIDE_STUDY].modalities)
    for uid, spec in EXPECTED_STUDIES.items():
        ref = studies[uid]
        assert ref.description == spec.description
        assert ref.order_priority == spec.priority
        assert ref.patient_id == spec.patient_id
        assert spec.modality in ref.modalities
    srs = archive.search_instances(modality="SR")
    assert {i.sop_uid for i in srs} == EXPECTED_SRS
    # The critical result reads back from the archive as it was written.
    key = "ct-ich-critical"
    sr = archive.retrieve_instance(
        demo_uid(0, key, "study"), demo_uid(0, key, "sr-series"), demo_uid(0, key, "sr")
    )
    (finding,) = read_ai_result(sr).findings
    assert finding.tracking_uid == demo_uid(0, key, "finding", "0")
    assert finding.urgency is Urgency.CRITICAL and finding.certainty == pytest.approx(0.93)


def test_ensure_demo_archive_seeds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "demo-archive"
    progress: list[tuple[int, int]] = []
    archive = ensure_demo_archive(folder, seed=0, progress=lambda d, t: progress.append((d, t)))
    assert progress[-1] == (EXPECTED_INSTANCES, EXPECTED_INSTANCES)
    marker = seed_module.read_marker(folder)
    assert marker is not None and marker["seed"] == 0
    assert marker["instances"] == EXPECTED_INSTANCES
    _check_contents(archive)

    def must_not_generate(*args: object, **kwargs: object) -> None:
        raise AssertionError("a seeded archive was generated again")

    monkeypatch.setattr(seed_module, "generate_demo_set", must_not_generate)
    started = time.perf_counter()
    again = ensure_demo_archive(folder, seed=0)
    assert time.perf_counter() - started < 10
    assert len(again.search_studies()) == len(STUDIES) + 1
    # Another seed does not replace the user's demo data either.
    ensure_demo_archive(folder, seed=7)
    assert seed_module.read_marker(folder) == marker


def test_default_folder_is_the_settings_demo_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a folder the archive lives under app.settings.demo_archive_dir() (here the
    test's COMPANION_HOME); seeding itself is stubbed, the test above covers it."""
    from app.settings import demo_archive_dir

    calls: list[tuple[Path, int]] = []
    monkeypatch.setattr(
        seed_module,
        "_seed_folder",
        lambda archive, folder, seed, progress, size: calls.append((folder, seed)),
    )
    ensure_demo_archive(seed=3)
    assert calls == [(demo_archive_dir(), 3)]


def test_seed_target_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "not-a-folder.txt"
    target.write_text("x")
    with pytest.raises(DemoDataError, match="folder or an http"):
        seed_target(str(target))


@pytest.mark.orthanc
def test_seed_target_orthanc(empty_orthanc: OrthancServer) -> None:
    progress: list[tuple[int, int]] = []
    count = seed_target(
        empty_orthanc.dicomweb_url, seed=0, progress=lambda d, t: progress.append((d, t))
    )
    assert count == EXPECTED_INSTANCES
    # the slide's tiles as they are made, then the instances as they are stored
    stored = progress[progress.index((0, count)) :]
    assert progress[0][0] == 0 and progress[-1] == (count, count)
    assert len(stored) == 2 + (count - 1) // seed_module.BATCH_SIZE
    _check_contents(open_dicomweb(empty_orthanc.dicomweb_url))


def test_seed_demo_cli_into_a_folder(tmp_path: Path) -> None:
    """`companion seed-demo FOLDER` stores the set; a bad target is one line and non-zero."""
    from tests.app.test_worklist_orthanc import run_cli

    target = tmp_path / "archive"
    proc = run_cli("seed-demo", str(target))
    assert proc.returncode == 0, proc.stderr
    assert f"Stored {EXPECTED_INSTANCES} demo instances" in proc.stdout
    _check_contents(open_local(target))
    proc = run_cli("seed-demo", "http://127.0.0.1:9/dicom-web")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
