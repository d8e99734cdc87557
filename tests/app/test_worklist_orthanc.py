"""The worklist and the CLI against a real Orthanc: bad input, caching, unreadable results."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

import pytest
from pydicom.dataset import Dataset

from app.archive.client import open_dicomweb
from app.domain import AIStatus
from app.settings import WorklistWeights
from app.worklist.service import WorklistService
from tests.app.test_sr_reader import _third_party_sr
from tests.support import dicom_data
from tests.support.orthanc import OrthancServer, free_port

pytestmark = pytest.mark.orthanc


def _ct(tag: str) -> Dataset:
    ds = dicom_data.image(tag, prefix="worklist")
    ds.AccessionNumber = f"ACC-{tag}"
    ds.StudyDescription = f"study {tag}"
    return ds


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300, check=False
    )


class CountingArchive:
    """The real archive, counting WADO-RS retrieves (a wrapper, not a double)."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.retrieved: list[str] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        self.retrieved.append(sop_uid)
        return self.inner.retrieve_instance(study_uid, series_uid, sop_uid)


def _store(server: OrthancServer, datasets: Sequence[Dataset]) -> None:
    open_dicomweb(server.dicomweb_url).store(datasets)


def test_empty_archive(empty_orthanc: OrthancServer) -> None:
    worklist = WorklistService(open_dicomweb(empty_orthanc.dicomweb_url), WorklistWeights()).build()
    assert worklist.items == () and worklist.errors == ()
    proc = run_cli("worklist", "--server", empty_orthanc.dicomweb_url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_refresh_fetches_only_new_results(empty_orthanc: OrthancServer) -> None:
    a, b = _ct("a"), _ct("b")
    sr_a = _third_party_sr(a)
    _store(empty_orthanc, [a, b, sr_a])
    archive = CountingArchive(open_dicomweb(empty_orthanc.dicomweb_url))
    service = WorklistService(archive, WorklistWeights())  # type: ignore[arg-type]
    first = service.build()
    assert archive.retrieved == [sr_a.SOPInstanceUID]
    assert [i.ai_status for i in first.items] == [AIStatus.DONE, AIStatus.NONE]
    assert first.items[0].critical  # the vendor SR's nodule is marked critical
    service.build()
    assert archive.retrieved == [sr_a.SOPInstanceUID]  # nothing new: nothing fetched
    sr_b = _third_party_sr(b)
    _store(empty_orthanc, [sr_b])
    third = service.build()
    assert archive.retrieved == [sr_a.SOPInstanceUID, sr_b.SOPInstanceUID]
    assert all(i.ai_status is AIStatus.DONE for i in third.items)
    # A new study is seen by the refresh's change probe.
    c = _ct("c")
    _store(empty_orthanc, [c])
    assert len(service.build().items) == 3


def test_probe_blind_spot_is_closed_by_full_resync(empty_orthanc: OrthancServer) -> None:
    """One study deleted and another added between refreshes keeps the count; the
    probe may miss it, the periodic full search may not."""
    a, b = _ct("swap-a"), _ct("swap-b")
    _store(empty_orthanc, [a])
    service = WorklistService(open_dicomweb(empty_orthanc.dicomweb_url), WorklistWeights())
    assert [i.study.accession for i in service.build().items] == ["ACC-swap-a"]
    empty_orthanc.clear()
    _store(empty_orthanc, [b])
    assert [i.study.accession for i in service.build().items] in (["ACC-swap-a"], ["ACC-swap-b"])
    assert [i.study.accession for i in service.build(full=True).items] == ["ACC-swap-b"]
    eager = WorklistService(
        open_dicomweb(empty_orthanc.dicomweb_url), WorklistWeights(), full_resync_seconds=0
    )
    eager.build()
    empty_orthanc.clear()
    _store(empty_orthanc, [a])
    assert [i.study.accession for i in eager.build().items] == ["ACC-swap-a"]


def test_unreadable_and_non_tid1500_results_are_listed(empty_orthanc: OrthancServer) -> None:
    good, bad, other, bare = _ct("good"), _ct("bad"), _ct("other"), _ct("bare")
    broken = _third_party_sr(bad)
    group = broken.ContentSequence[-1].ContentSequence[0]
    num = next(i for i in group.ContentSequence if i.ValueType == "NUM")
    del num.MeasuredValueSequence[0].NumericValue
    not_1500 = _third_party_sr(other)
    not_1500.ContentTemplateSequence[0].TemplateIdentifier = "2000"
    # A study with no pixel data at all: only an SR.
    del bare.PixelData
    _store(empty_orthanc, [good, bad, broken, other, not_1500, bare, _third_party_sr(good)])
    service = WorklistService(open_dicomweb(empty_orthanc.dicomweb_url), WorklistWeights())
    worklist = service.build()
    by_acc = {i.study.accession: i for i in worklist.items}
    assert set(by_acc) == {"ACC-good", "ACC-bad", "ACC-other", "ACC-bare"}
    assert by_acc["ACC-bad"].ai_status is AIStatus.UNREADABLE
    assert by_acc["ACC-bad"].reason.startswith("AI result unreadable")
    assert by_acc["ACC-bad"].problems
    assert by_acc["ACC-other"].ai_status is AIStatus.DONE
    assert by_acc["ACC-bare"].ai_status is AIStatus.NONE
    findings = service.findings_for(other.StudyInstanceUID)
    assert findings and not any(f.editable for f in findings)
    assert {f.template for f in findings} == {"TID2000"}
    # The CLI shows the same, and a read-only finding says so.
    proc = run_cli("findings", other.StudyInstanceUID, "--server", empty_orthanc.dicomweb_url, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and all(r["editable"] is False and r["template"] == "TID2000" for r in rows)
    proc = run_cli("worklist", "--server", empty_orthanc.dicomweb_url, "--json")
    listed = {r["accession"]: r for r in json.loads(proc.stdout)}
    assert listed["ACC-bad"]["ai_status"] == "unreadable"


def test_unreachable_server_is_one_line_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    proc = run_cli("worklist", "--server", url, "--json")
    assert proc.returncode != 0 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Cannot reach the archive" in lines[0], proc.stderr


def test_wrong_url_and_unknown_study(orthanc_server: OrthancServer) -> None:
    proc = run_cli("worklist", "--server", f"{orthanc_server.base_url}/not-dicom-web", "--json")
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "HTTP 404" not in proc.stdout
    proc = run_cli("findings", "1.2.3.4.5.6", "--server", orthanc_server.dicomweb_url, "--json")
    assert proc.returncode != 0
    assert "not in" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("worklist", "--server", "ftp://example", "--json")
    assert proc.returncode == 2 and "http://" in proc.stderr
