"""Build the prioritized worklist: studies joined with their AI results.

One full build is three QIDO-RS searches (all studies; all SR instances; all
Microscopy Bulk Simple Annotations instances, modality ANN, which are a slide's AI
results) plus one WADO-RS retrieve per AI result not seen before. Parsed results are cached
by SOP Instance UID — a DICOM object never changes under its UID.

A refresh first probes whether either list changed: one page of one result at
``offset = known count - 1`` (standard QIDO-RS paging) costs a few ms where a
full study search of a large archive costs seconds (Orthanc's DICOMweb plugin
spends ~3.5 ms per study). An unchanged probe reuses the known list. A probe
cannot see one study deleted and another added in the same interval, so a full
search runs at least every ``full_resync_seconds`` anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeAlias

from app.archive.protocol import ImageArchive, InstanceRef
from app.domain import (
    AIResult,
    AIStatus,
    Finding,
    ReviewState,
    StudyRef,
    WorklistItem,
)
from app.domain.review import AssessmentRecord
from app.errors import ArchiveError, ArchiveHTTPError, ResultParseError
from app.results.ann_reader import ANN_SOP_CLASS, is_bulk_annotations, read_bulk_annotations
from app.results.assessment_reader import is_assessment_sr, read_assessment
from app.results.sr_reader import SR_SOP_CLASSES, read_ai_result
from app.settings import WorklistWeights
from app.worklist.priority import score_study

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
RESULT_MODALITIES = ("SR", "ANN")  # AI results: SR TID 1500 / assessments, and bulk annotations


@dataclass(frozen=True)
class Worklist:
    items: tuple[WorklistItem, ...]
    refreshed_at: datetime
    errors: tuple[str, ...]
    archive_description: str

    def item(self, study_uid: str) -> WorklistItem | None:
        return next((i for i in self.items if i.study.study_uid == study_uid), None)


Parsed: TypeAlias = AIResult | AssessmentRecord


class ResultCache:
    """Parsed SRs (AI results and readers' assessments) by SOP Instance UID (thread-safe,
    in memory)."""

    def __init__(self) -> None:
        self._results: dict[str, Parsed] = {}
        self._lock = threading.Lock()

    def get(self, sop_uid: str) -> Parsed | None:
        with self._lock:
            return self._results.get(sop_uid)

    def put(self, result: Parsed) -> None:
        with self._lock:
            self._results[result.sop_instance_uid] = result

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)


@dataclass(frozen=True)
class _Fetched:
    ref: InstanceRef
    parsed: Parsed | None  # None: could not be retrieved (pending)
    error: str = ""

    @property
    def result(self) -> AIResult | None:
        return self.parsed if isinstance(self.parsed, AIResult) else None

    @property
    def assessment(self) -> AssessmentRecord | None:
        return self.parsed if isinstance(self.parsed, AssessmentRecord) else None


def current_results(results: Sequence[AIResult]) -> list[AIResult]:
    """The results not superseded by a newer version: an edited SR names the SR it
    replaces in its Predecessor Documents Sequence, and only the newest is shown."""
    replaced = {uid for r in results for uid in r.predecessor_uids}
    return [r for r in results if r.sop_instance_uid not in replaced]


def newest_assessment(assessments: Sequence[AssessmentRecord]) -> AssessmentRecord | None:
    dated = [a for a in assessments if a.completed_at is not None]
    if dated:
        return max(dated, key=lambda a: a.completed_at)  # type: ignore[arg-type, return-value]
    return assessments[-1] if assessments else None


class WorklistService:
    """Ranks the archive's studies by what AI found in them."""

    def __init__(
        self,
        archive: ImageArchive,
        weights: WorklistWeights,
        *,
        cache: ResultCache | None = None,
        now: Callable[[], datetime] = datetime.now,
        max_workers: int = 4,
        full_resync_seconds: float = 300.0,
    ) -> None:
        self.archive = archive
        self.weights = weights
        self.cache = cache or ResultCache()
        self._now = now
        self._max_workers = 1 if archive.is_local else max_workers
        self._full_resync_seconds = full_resync_seconds
        self._study_results: dict[str, tuple[AIResult, ...]] = {}
        self._known_studies: list[StudyRef] | None = None
        self._known_srs: list[InstanceRef] | None = None
        self._last_full = 0.0
        self._build_lock = threading.Lock()
        # Study UIDs reviewed here whose assessment may not be in the archive yet
        # (``ReviewStore.submitted_studies``); set by the composition root.
        self.locally_submitted: Callable[[], set[str]] | None = None

    # -- public -------------------------------------------------------------
    def build(self, progress: Progress | None = None, *, full: bool = False) -> Worklist:
        """Query the archive and rank every study. Raises ``ArchiveError`` if it cannot list studies.

        ``full`` skips the change probes and searches everything again."""
        with self._build_lock:
            return self._build(progress, full)

    def _build(self, progress: Progress | None, full: bool) -> Worklist:
        due = time.monotonic() - self._last_full >= self._full_resync_seconds
        full = full or due or self._known_studies is None or self._known_srs is None
        errors: list[str] = []
        if not full and self._unchanged():
            studies, sr_refs = list(self._known_studies or []), list(self._known_srs or [])
            fetched = self._fetch(sr_refs, progress)
        else:
            # The study search is the slow, server-bound part of a full build: run it
            # beside the SR search and fetches instead of before them.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qido") as pool:
                pending_studies = pool.submit(self.archive.search_studies)
                try:
                    sr_refs = self._root_sr_instances()
                except ArchiveHTTPError as exc:
                    log.info("root-level instance search refused (%s); per study", exc.status)
                    sr_refs = None
                fetched = self._fetch(sr_refs, progress) if sr_refs is not None else []
                studies = pending_studies.result()
            if sr_refs is None:
                sr_refs, errors = self._per_study_sr_instances(studies)
                fetched = self._fetch(sr_refs, progress)
            self._known_studies, self._known_srs = studies, sr_refs
            self._last_full = time.monotonic()
        by_study: dict[str, list[_Fetched]] = defaultdict(list)
        for f in fetched:
            by_study[f.ref.study_uid].append(f)
            if f.error:
                errors.append(f.error)
        self._study_results = {
            uid: tuple(current_results([f.result for f in group if f.result is not None]))
            for uid, group in by_study.items()
            if all(f.parsed is not None for f in group)
        }
        now = self._now()
        submitted = self._locally_submitted()
        unranked: list[WorklistItem] = []
        for study in studies:
            item = self._item(study, by_study.get(study.study_uid, []), now)
            if item.review is ReviewState.NONE and study.study_uid in submitted:
                item = replace(item, review=ReviewState.SUBMITTED)
            unranked.append(item)
        # Reviewed studies go after the ones still to read, in their own score order.
        unranked.sort(
            key=lambda i: (
                i.review is not ReviewState.NONE,
                -i.score,
                -(i.waiting_minutes or 0.0),
                i.study.study_uid,
            )
        )
        items = tuple(replace(item, rank=n) for n, item in enumerate(unranked, start=1))
        return Worklist(items, now, tuple(errors), self.archive.description)

    def results_for(self, study_uid: str) -> list[AIResult]:
        """The AI results of one study (from the last build, else fetched now)."""
        known = self._study_results.get(study_uid)
        if known is not None:
            return list(known)
        refs = [
            r
            for r in self.archive.search_instances(study_uid=study_uid, modality="SR")
            if _is_sr(r)
        ]
        # slide studies: Microscopy Bulk Simple Annotations (modality ANN) are AI results too
        refs += self.archive.search_instances(study_uid=study_uid, modality="ANN")
        fetched = self._fetch(refs, None)
        errors = [f.error for f in fetched if f.error]
        if errors and not any(f.parsed for f in fetched):
            raise ArchiveError(errors[0])
        results = tuple(current_results([f.result for f in fetched if f.result is not None]))
        if not errors:
            self._study_results[study_uid] = results
        return list(results)

    def findings_for(self, study_uid: str) -> list[Finding]:
        return [f for r in self.results_for(study_uid) if r.readable for f in r.findings]

    # -- steps ----------------------------------------------------------------
    def _unchanged(self) -> bool:
        """True when a one-result page at the end of each known list shows no change."""
        studies, srs = self._known_studies or [], self._known_srs or []
        try:
            page = self.archive.search_studies(limit=2, offset=max(len(studies) - 1, 0))
            if not _same_tail(page, {s.study_uid for s in studies}, len(studies), "study_uid"):
                return False
            for modality in RESULT_MODALITIES:
                known = [r for r in srs if _modality_of(r) == modality]
                page_srs = self.archive.search_instances(
                    modality=modality, limit=2, offset=max(len(known) - 1, 0)
                )
                if not _same_tail(page_srs, {r.sop_uid for r in known}, len(known), "sop_uid"):
                    return False
            return True
        except ArchiveError as exc:
            log.info("change probe failed (%s); searching everything", exc)
            return False

    def _root_sr_instances(self) -> list[InstanceRef]:
        """All AI result instances of the archive: one search for SR, one for ANN."""
        refs = [r for r in self.archive.search_instances(modality="SR") if _is_sr(r)]
        return refs + self._ann_instances(self.archive.search_instances(modality="ANN"))

    def _per_study_sr_instances(
        self, studies: Sequence[StudyRef]
    ) -> tuple[list[InstanceRef], list[str]]:
        """For archives that refuse a root-level instance search."""
        errors: list[str] = []
        refs: list[InstanceRef] = []
        anns: list[InstanceRef] = []
        for study in studies:
            for modality, found in (("SR", refs), ("ANN", anns)):
                if study.modalities and modality not in study.modalities:
                    continue
                try:
                    found.extend(self.archive.search_instances(study.study_uid, modality=modality))
                except ArchiveError as err:
                    errors.append(str(err))
        return [r for r in refs if _is_sr(r)] + self._ann_instances(anns), errors

    @staticmethod
    def _ann_instances(refs: Sequence[InstanceRef]) -> list[InstanceRef]:
        """Bulk annotations found by modality ANN, labelled so (the probe counts them apart)."""
        return [replace(r, modality="ANN") for r in refs if r.sop_class_uid in ("", ANN_SOP_CLASS)]

    def _fetch(self, refs: Sequence[InstanceRef], progress: Progress | None) -> list[_Fetched]:
        done: list[_Fetched] = []
        todo: list[InstanceRef] = []
        for ref in refs:
            cached = self.cache.get(ref.sop_uid)
            if cached is not None:
                done.append(_Fetched(ref, cached))
            else:
                todo.append(ref)
        total = len(todo)
        if progress:
            progress(0, total)
        if todo:
            workers = min(self._max_workers, total)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sr-fetch") as pool:
                for n, fetched in enumerate(pool.map(self._fetch_one, todo), start=1):
                    done.append(fetched)
                    if progress:
                        progress(n, total)
        return done

    def _fetch_one(self, ref: InstanceRef) -> _Fetched:
        try:
            ds = self.archive.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid)
        except ArchiveError as exc:
            return _Fetched(ref, None, f"AI result {ref.sop_uid} not retrieved: {exc}")
        parsed: Parsed
        if is_bulk_annotations(ds):
            try:
                parsed = read_bulk_annotations(ds).result
            except ResultParseError as exc:
                parsed = AIResult(
                    ref.sop_uid,
                    ref.series_uid,
                    ref.study_uid,
                    "ANN",
                    None,
                    (),
                    readable=False,
                    problem=str(exc),
                )
        elif is_assessment_sr(ds):
            try:
                parsed = read_assessment(ds)
            except ResultParseError as exc:
                log.info("assessment SR %s unreadable: %s", ref.sop_uid, exc)
                parsed = replace(
                    read_ai_result(ds), readable=False, problem=f"assessment SR: {exc}"
                )
        else:
            parsed = read_ai_result(ds)
        self.cache.put(parsed)
        return _Fetched(ref, parsed)

    def _item(self, study: StudyRef, fetched: list[_Fetched], now: datetime) -> WorklistItem:
        assessments = [f.assessment for f in fetched if f.assessment is not None]
        fetched = [f for f in fetched if f.assessment is None]
        results = current_results([f.result for f in fetched if f.result is not None])
        problems = tuple(f.error for f in fetched if f.error) + tuple(
            f"AI result {r.sop_instance_uid}: {r.problem}" for r in results if not r.readable
        )
        if not fetched:
            status = AIStatus.NONE
        elif any(f.parsed is None for f in fetched):
            status = AIStatus.PENDING
        elif any(not r.readable for r in results):
            status = AIStatus.UNREADABLE
        else:
            status = AIStatus.DONE
        score = score_study(study, status, results, self.weights, now)
        findings = tuple(f for r in results if r.readable for f in r.findings)
        newest = newest_assessment(assessments)
        return WorklistItem(
            study=study,
            rank=0,
            score=score.total,
            reason=score.reason,
            ai_status=status,
            critical=score.critical,
            findings=findings,
            terms=score.terms,
            problems=problems,
            waiting_minutes=score.waiting_minutes,
            review=ReviewState.REVIEWED if newest else ReviewState.NONE,
            reviewed_by=newest.reader_name if newest else "",
        )

    def _locally_submitted(self) -> set[str]:
        if self.locally_submitted is None:
            return set()
        try:
            return set(self.locally_submitted())
        except Exception:
            log.exception("reviews submitted here could not be listed")
            return set()


def _same_tail(page: Sequence[object], known: set[str], count: int, attr: str) -> bool:
    """A probe at offset count-1 must return exactly the one last known item (none if empty).

    A server that ignores limit/offset returns more and so is never taken as unchanged."""
    if count == 0:
        return len(page) == 0
    return len(page) == 1 and getattr(page[0], attr) in known


def _modality_of(ref: InstanceRef) -> str:
    return "ANN" if ref.modality == "ANN" or ref.sop_class_uid == ANN_SOP_CLASS else "SR"


def _is_sr(ref: InstanceRef) -> bool:
    return ref.sop_class_uid in SR_SOP_CLASSES or (not ref.sop_class_uid and ref.modality == "SR")
