"""The demo set in a real Orthanc: ranking, reasons, and findings that round-trip exactly."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from app.archive.client import open_dicomweb
from app.demo.generate import DemoSet, generate_demo_set
from app.domain import AIStatus, Urgency
from app.settings import WorklistWeights
from app.worklist.priority import format_waiting
from app.worklist.service import WorklistService
from tests.app.test_worklist_orthanc import run_cli
from tests.support.orthanc import OrthancServer

pytestmark = pytest.mark.orthanc

NOW = datetime(2026, 11, 28, 9, 30)


@pytest.fixture(scope="module")
def demo() -> DemoSet:
    return generate_demo_set(seed=0, reference_time=NOW)


@pytest.fixture()
def seeded(empty_orthanc: OrthancServer, demo: DemoSet) -> OrthancServer:
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    for study in demo.studies:
        archive.store(study.images + ([study.ai_sr] if study.ai_sr is not None else []))
    return empty_orthanc


def test_worklist_ranks_critical_first_with_reasons(seeded: OrthancServer, demo: DemoSet) -> None:
    service = WorklistService(
        open_dicomweb(seeded.dicomweb_url), WorklistWeights(), now=lambda: NOW
    )
    worklist = service.build()
    assert not worklist.errors
    by_uid = {s.study_uid: s for s in demo.studies}
    assert {i.study.study_uid for i in worklist.items} == set(by_uid)
    flags = [i.critical for i in worklist.items]
    assert any(flags) and flags == sorted(flags, reverse=True), "critical studies come first"
    for item in worklist.items:
        study = by_uid[item.study.study_uid]
        expected = study.expected_findings
        waited = format_waiting((NOW - study.study_datetime).total_seconds() / 60)
        assert item.reason.endswith(waited), item.reason
        if study.ai_sr is None:
            assert item.ai_status is AIStatus.NONE and item.reason.startswith("No AI result")
        elif not expected:
            assert item.ai_status is AIStatus.DONE and item.reason.startswith("AI: no finding")
        else:
            top = max(expected, key=lambda f: (f.urgency, f.certainty or 0))
            meaning = top.finding.meaning[0].lower() + top.finding.meaning[1:]
            assert item.reason.startswith(
                f"{top.urgency.label.capitalize()} AI finding: {meaning}, {top.certainty:.2f}"
            ), item.reason
            assert item.critical == any(f.urgency is Urgency.CRITICAL for f in expected)
        assert item.study.accession == study.accession
        assert item.study.description == study.description
    assert [i.rank for i in worklist.items] == list(range(1, len(worklist.items) + 1))


def test_findings_round_trip_exactly(seeded: OrthancServer, demo: DemoSet) -> None:
    service = WorklistService(open_dicomweb(seeded.dicomweb_url), WorklistWeights())
    for study in demo.studies:
        assert service.findings_for(study.study_uid) == study.expected_findings, study.key


def test_findings_cli_json(seeded: OrthancServer, demo: DemoSet) -> None:
    study = next(s for s in demo.studies if len(s.expected_findings) >= 1)
    proc = run_cli("findings", study.study_uid, "--server", seeded.dicomweb_url, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows == [json.loads(json.dumps(f.to_json())) for f in study.expected_findings]
    for row in rows:
        assert set(row) >= {
            "tracking_uid",
            "finding",
            "site",
            "certainty",
            "urgency",
            "algorithm",
            "regions",
            "measurements",
            "source_sop_uid",
            "template",
            "editable",
        }
        assert row["template"] == "TID1500" and row["editable"] is True
    proc = run_cli("worklist", "--server", seeded.dicomweb_url, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == len(demo.studies)
    for row in rows:
        assert set(row) >= {
            "study_uid",
            "accession",
            "modality",
            "description",
            "study_datetime",
            "rank",
            "score",
            "reason",
            "ai_status",
            "critical",
            "findings",
        }
    assert rows[0]["critical"] is True
