"""A local inference result as the DICOM objects a server would store: an AI result SR
(TID 1500 + TID 4019) and a SEG; and where they go (the archive via the outbox, or a
local folder), as the ``ai_results_to_archive`` setting says.

The SR is built by ``app.results.sr_writer`` (the same writer as the demo's server
results), so ``app.results.sr_reader`` reads its findings back unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.archive.protocol import ImageArchive
from app.errors import CompanionError
from app.results.seg_writer import build_ai_result_seg
from app.results.sr_writer import build_ai_result_sr
from inference.service import InferenceResult

log = logging.getLogger(__name__)

SR_SERIES_NUMBER = 950
SEG_SERIES_NUMBER = 951


class OutputError(CompanionError):
    """The AI result objects could not be built or stored."""


@dataclass(frozen=True)
class ResultObjects:
    sr: Dataset
    seg: Dataset | None  # None when there are no findings (nothing to segment)

    @property
    def datasets(self) -> list[Dataset]:
        return [self.sr] + ([self.seg] if self.seg is not None else [])


def evidence_headers(archive: ImageArchive, study_uid: str, series_uid: str) -> list[Dataset]:
    """The series' instances as header-only datasets (no pixel data), from WADO-RS metadata."""
    out = []
    for item in archive.retrieve_series_metadata(study_uid, series_uid):
        wanted = {k: v for k, v in item.items() if k.upper() not in ("7FE00010", "7FE00008")}
        wanted = {k: v for k, v in wanted.items() if "BulkDataURI" not in v}
        out.append(Dataset.from_json(wanted))
    return out


def _ordered(evidence: Sequence[Dataset], sop_uids: Sequence[str]) -> list[Dataset]:
    by_uid = {str(ds.SOPInstanceUID): ds for ds in evidence}
    missing = [uid for uid in sop_uids if uid not in by_uid]
    if missing:
        raise OutputError(f"{len(missing)} image(s) of the series are not in the evidence")
    return [by_uid[uid] for uid in sop_uids]


def build_objects(result: InferenceResult, evidence: Sequence[Dataset]) -> ResultObjects:
    """The SR (always: "ran and found nothing" is a result too) and the SEG (with findings)."""
    images = _ordered(evidence, result.sop_uids)
    algorithm = result.model.algorithm
    try:
        sr = build_ai_result_sr(
            images,
            algorithm,
            result.findings,
            series_instance_uid=generate_uid(),
            sop_instance_uid=result.sr_sop_uid,
            series_number=SR_SERIES_NUMBER,
        )
        seg = None
        if result.findings:
            seg = build_ai_result_seg(
                images,
                result.lesion_masks,
                result.findings,
                algorithm,
                series_instance_uid=generate_uid(),
                sop_instance_uid=generate_uid(),
                series_number=SEG_SERIES_NUMBER,
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise OutputError(f"the AI result objects could not be built: {exc}") from exc
    return ResultObjects(sr, seg)


def keep_local(objects: ResultObjects, folder: Path) -> list[Path]:
    """Write the objects as DICOM files under ``folder/STUDY_UID/``."""
    paths = []
    for ds in objects.datasets:
        target = folder / str(ds.StudyInstanceUID) / f"{ds.Modality}-{ds.SOPInstanceUID}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        paths.append(target)
    return paths


def store_via_outbox(objects: ResultObjects, outbox: Any, destination: str) -> list[int]:
    """Commit the objects to the durable outbox (``app.delivery.outbox.Outbox``) for
    ``destination``; the sender stores them over STOW-RS. Returns the outbox ids."""
    from app.delivery.outbox import OutgoingObject

    items = [OutgoingObject(objects.sr, "AI result SR (local inference)")]
    if objects.seg is not None:
        items.append(OutgoingObject(objects.seg, "AI result SEG (local inference)"))
    return list(outbox.submit(items, destination=destination))


def local_results_dir() -> Path:
    """Where results kept local are written: ``ai-results`` in the app's data folder
    (read back by ``app.results.local_store``)."""
    from app.results.local_store import local_results_dir as folder

    return folder()
