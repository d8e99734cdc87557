"""Find a study's DICOM Segmentations in the archive and put them on a displayed series.

The SEGs of a study are found beside its AI SRs (QIDO-RS, modality SEG), retrieved
whole (WADO-RS) and read by ``app.results.seg_reader``. Only those with frames on the
series on screen become overlays; one that cannot be read or retrieved is a problem
to show, not a failure of the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from app.archive.protocol import ImageArchive
from app.archive.volume import ImageVolume
from app.domain import Segment, SegmentationResult
from app.errors import CompanionError
from app.results.local_store import read_local_segs
from app.results.seg_reader import (
    SEG_SOP_CLASS_UIDS,
    SliceMasks,
    masks_for_volume,
    read_segmentation,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentLayer:
    """One segment's masks on the slices of one displayed series."""

    result: SegmentationResult
    segment: Segment
    masks: dict[int, np.ndarray]  # slice index -> (rows, columns) uint8, 0..255

    @property
    def key(self) -> str:
        return self.result.segment_key(self.segment)


@dataclass
class SeriesSegmentations:
    """The overlays for one series, and what could not be shown."""

    layers: list[SegmentLayer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def segmentations_for_volume(
    archive: ImageArchive, volume: ImageVolume, local_folder: Path | None = None
) -> SeriesSegmentations:
    """Blocking: every segment of the study's SEGs that has pixels on ``volume``'s slices:
    the archive's, and those local inference kept on this machine (``local_folder``, by
    default the app's) that the archive does not hold."""
    out = SeriesSegmentations()
    refs = [
        r
        for r in archive.search_instances(study_uid=volume.study_uid, modality="SEG")
        if not r.sop_class_uid or r.sop_class_uid in SEG_SOP_CLASS_UIDS
    ]
    for ref in refs:
        try:
            ds = archive.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid)
        except CompanionError as exc:
            log.info("SEG %s not shown: %s", ref.sop_uid, exc)
            out.problems.append(str(exc))
            continue
        _add_layers(out, ds, volume)
    stored = {r.sop_uid for r in refs}
    for ds in read_local_segs(volume.study_uid, local_folder):
        if str(ds.SOPInstanceUID) not in stored:
            _add_layers(out, ds, volume)
    return out


def _add_layers(out: SeriesSegmentations, ds: Dataset, volume: ImageVolume) -> None:
    sop_uid = str(ds.get("SOPInstanceUID", ""))
    try:
        source = read_segmentation(ds)
        masks: SliceMasks = masks_for_volume(source, volume)
    except CompanionError as exc:
        log.info("SEG %s not shown: %s", sop_uid, exc)
        out.problems.append(str(exc))
        return
    except (ValueError, KeyError, AttributeError, IndexError) as exc:  # odd pixel data
        log.info("SEG %s not shown: %s", sop_uid, exc)
        out.problems.append(f"SEG {sop_uid} could not be decoded: {exc}")
        return
    for segment in source.result.segments:
        if masks.get(segment.number):
            out.layers.append(SegmentLayer(source.result, segment, dict(masks[segment.number])))
