"""Benchmark: build the worklist from a real Orthanc, against raw curl of the same requests.

Ratios, measured side by side in one run (these machines are shared and noisy):
- first build / raw HTTP: the same QIDO-RS searches and WADO-RS retrieves, fetched by
  curl with the same concurrency (goal <= 2.0);
- no-change refresh / first build (goal <= 0.1);
- and, for the record, a periodic full resync (results cached) / first build.

Size: BENCH_STUDIES (default 60) studies, BENCH_SRS (default 24) of them with an AI SR.
The figures in docs/performance.md come from:
    BENCH_STUDIES=500 BENCH_SRS=200 .venv/bin/python -m pytest tests/perf -s -p no:xvfb
The test asserts only that the builds are right, never a time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pydicom
import pytest

from app.archive import dicomjson
from app.archive.client import open_dicomweb
from app.domain import Measurement, Urgency
from app.results import codes
from app.settings import WorklistWeights
from app.worklist.service import WorklistService
from tests.support import dicom_data, orthanc

pytestmark = pytest.mark.perf

N_STUDIES = int(os.environ.get("BENCH_STUDIES", "60"))
N_SRS = int(os.environ.get("BENCH_SRS", "24"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
WORKERS = 4


def _datasets(n_studies: int, n_srs: int) -> list[pydicom.Dataset]:
    out: list[pydicom.Dataset] = []
    start = datetime(2026, 11, 28, 8, 0)
    for i in range(n_studies):
        img = dicom_data.image(str(i), prefix="bench")
        img.AccessionNumber = f"B{i:06d}"
        img.StudyDescription = "CT HEAD WO CONTRAST"
        img.StudyDate = (start - timedelta(minutes=i)).strftime("%Y%m%d")
        img.StudyTime = (start - timedelta(minutes=i)).strftime("%H%M%S")
        out.append(img)
        if i < n_srs:
            urgency = [Urgency.CRITICAL, Urgency.URGENT, Urgency.ROUTINE][i % 3]
            volume = (Measurement(codes.VOLUME, 4.2, codes.MILLILITER),)
            out.append(
                dicom_data.sr(
                    str(i),
                    img,
                    prefix="bench",
                    urgency=urgency,
                    certainty=0.5 + (i % 50) / 100,
                    measurements=volume,
                )
            )
    return out


def _curl_raw(server: orthanc.OrthancServer, sr_paths: list[str], tmp: Path) -> float:
    """The same requests the build makes, fetched by curl (QIDO x2 sequential, WADO in parallel)."""
    root = server.dicomweb_url
    fields = "&".join(f"includefield={f}" for f in dicomjson.STUDY_FIELDS)
    qido_studies = f"{root}/studies?{fields}"
    qido_srs = (
        f"{root}/instances?Modality=SR&includefield={dicomjson.MODALITY}"
        f"&includefield={dicomjson.STUDY_UID}&includefield={dicomjson.SERIES_UID}"
    )
    config = tmp / "curl.cfg"
    lines = []
    for n, path in enumerate(sr_paths):
        lines.append(f'url = "{root}/{path}"')
        lines.append(f'output = "{tmp}/sr{n}.bin"')
    config.write_text("\n".join(lines) + "\n")
    accept = 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*'
    t0 = time.perf_counter()
    for url in (qido_studies, qido_srs):
        subprocess.run(
            [
                "curl",
                "-sf",
                "-o",
                str(tmp / "qido.json"),
                "-H",
                "Accept: application/dicom+json",
                url,
            ],
            check=True,
        )
    if sr_paths:
        subprocess.run(
            [
                "curl",
                "-sf",
                "--no-progress-meter",
                "--parallel",
                "--parallel-max",
                str(WORKERS),
                "-H",
                accept,
                "-K",
                str(config),
            ],
            check=True,
        )
    return time.perf_counter() - t0


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is the baseline; apt install curl")
def test_worklist_build_vs_raw_http(tmp_path: Path) -> None:
    server = orthanc.start_orthanc(tmp_path / "orthanc")
    try:
        archive = open_dicomweb(server.dicomweb_url)
        datasets = _datasets(N_STUDIES, N_SRS)
        for i in range(0, len(datasets), 50):
            archive.store(datasets[i : i + 50])
        srs = archive.search_instances(modality="SR")
        assert len(srs) == N_SRS
        sr_paths = [
            f"studies/{r.study_uid}/series/{r.series_uid}/instances/{r.sop_uid}" for r in srs
        ]
        raw, first, refresh, resync = [], [], [], []
        for _ in range(REPEATS):
            raw.append(_curl_raw(server, sr_paths, tmp_path))
            service = WorklistService(archive, WorklistWeights(), max_workers=WORKERS)
            t0 = time.perf_counter()
            worklist = service.build()
            first.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            again = service.build()
            refresh.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            service.build(full=True)  # the periodic full search, results still cached
            resync.append(time.perf_counter() - t0)
            assert len(worklist.items) == N_STUDIES and not worklist.errors
            assert sum(1 for i in worklist.items if i.ai_status.value == "done") == N_SRS
            assert [i.study.study_uid for i in again.items] == [
                i.study.study_uid for i in worklist.items
            ]
            assert worklist.items[0].critical
        figures = {
            "studies": N_STUDIES,
            "ai_srs": N_SRS,
            "raw_http_s": statistics.median(raw),
            "first_build_s": statistics.median(first),
            "refresh_s": statistics.median(refresh),
            "full_resync_s": statistics.median(resync),
        }
        figures["first_over_raw"] = figures["first_build_s"] / figures["raw_http_s"]
        figures["refresh_over_first"] = figures["refresh_s"] / figures["first_build_s"]
        figures["full_resync_over_first"] = figures["full_resync_s"] / figures["first_build_s"]
        print("\nworklist benchmark:", json.dumps(figures, indent=2))
        (tmp_path / "worklist_bench.json").write_text(json.dumps(figures, indent=2))
    finally:
        server.stop()
