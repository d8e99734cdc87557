"""``companion infer STUDY_UID --server URL --json`` against a real Orthanc, as a user runs it
(a separate process): the findings as JSON, the SR and SEG kept locally; with ``--store``
sent to the archive, where ``companion findings`` reads the same findings back; a study the
model does not fit (a chest CT) is refused before anything runs."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from app.archive.client import open_dicomweb
from app.demo.generate import DemoStudy
from tests.support.orthanc import OrthancServer

pytestmark = pytest.mark.orthanc


def companion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def chest_copy(study: DemoStudy) -> tuple[str, list]:  # type: ignore[type-arg]
    """The head CT's images under new UIDs, with Body Part Examined CHEST."""
    study_uid = generate_uid(entropy_srcs=[study.study_uid, "chest"])
    series_uid = generate_uid(entropy_srcs=[study.study_uid, "chest-series"])
    copies = []
    for ds in study.images:
        ds = copy.deepcopy(ds)  # Dataset.copy() is shallow: it would change the original
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), "chest"])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.BodyPartExamined = "CHEST"
        copies.append(ds)
    return study_uid, copies


def test_infer_on_a_dicomweb_server_keeps_local_stores_and_refuses_a_chest_ct(
    empty_orthanc: OrthancServer, ich_study: DemoStudy
) -> None:
    url = empty_orthanc.dicomweb_url
    archive = open_dicomweb(url)
    chest_uid, chest_images = chest_copy(ich_study)
    archive.store([*ich_study.images, *chest_images])  # the images only: no AI result yet
    study_uid = ich_study.study_uid

    proc = companion("infer", study_uid, "--server", url, "--json")
    assert proc.returncode == 0, proc.stderr
    kept = json.loads(proc.stdout)
    assert len(kept) == 1
    (finding,) = kept
    assert finding["finding"]["meaning"] == "Intracranial hemorrhage"
    assert finding["urgency"] == "critical"
    assert finding["algorithm"]["name"] == "ICH Demo (synthetic)"
    (volume,) = [m for m in finding["measurements"] if m["unit"]["code"] == "ml"]
    assert 20 < volume["value"] < 30  # the demo bleed is about 25 ml
    assert "kept locally" in proc.stderr
    home = Path(os.environ["COMPANION_HOME"])
    kept_files = sorted(p.name.split("-")[0] for p in home.rglob(f"ai-results/{study_uid}/*.dcm"))
    assert kept_files == ["SEG", "SR"]
    assert not [r for r in archive.search_series(study_uid) if r.modality in ("SR", "SEG")]

    proc = companion("infer", study_uid, "--server", url, "--store", "--json")
    assert proc.returncode == 0, proc.stderr
    stored = json.loads(proc.stdout)
    assert "sent" in proc.stderr
    assert sorted(s.modality for s in archive.search_series(study_uid)) == ["CT", "SEG", "SR"]
    # What `companion findings` reads back from the server is what infer printed.
    proc = companion("findings", study_uid, "--server", url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == stored

    proc = companion("infer", chest_uid, "--server", url, "--json")
    assert proc.returncode != 0
    assert "no available model takes CT CHEST series" in proc.stderr
    assert proc.stdout == ""
    assert not list(home.rglob(f"ai-results/{chest_uid}"))
