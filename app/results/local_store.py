"""AI results made on this machine and kept here (local inference without write-back).

``inference.outputs.keep_local`` writes them as DICOM files in ``ai-results/STUDY_UID/``
in the data folder; the window reads a study's back when it opens, so they survive a
restart like the archive's results do.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from app.domain import AIResult
from app.results.sr_reader import read_ai_result
from app.settings import data_dir

log = logging.getLogger(__name__)


def local_results_dir() -> Path:
    return data_dir() / "ai-results"


def read_local_results(
    study_uid: str, folder: Path | None = None
) -> list[tuple[AIResult, Dataset]]:
    """The AI result SRs kept locally for ``study_uid``, each with its dataset."""
    study_folder = (folder or local_results_dir()) / study_uid
    found: list[tuple[AIResult, Dataset]] = []
    for path in sorted(study_folder.glob("SR-*.dcm")):
        try:
            ds = pydicom.dcmread(path)
        except (OSError, InvalidDicomError) as exc:
            log.warning("a locally kept AI result could not be read: %s", type(exc).__name__)
            continue
        found.append((read_ai_result(ds), ds))
    return found


def read_local_segs(study_uid: str, folder: Path | None = None) -> list[Dataset]:
    """The SEGs kept locally for ``study_uid`` (local inference's masks), shown like an
    archive's SEGs."""
    found: list[Dataset] = []
    for path in sorted(((folder or local_results_dir()) / study_uid).glob("SEG-*.dcm")):
        try:
            found.append(pydicom.dcmread(path))
        except (OSError, InvalidDicomError) as exc:
            log.warning("a locally kept SEG could not be read: %s", type(exc).__name__)
    return found
