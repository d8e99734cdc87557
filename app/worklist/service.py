"""Build the prioritized worklist: studies joined with their AI results.

One full build is two QIDO-RS searches (all studies; all SR instances) plus
one WADO-RS retrieve per AI result not seen before. Parsed results are cached
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

from app.archive.protocol import ImageArchive, InstanceRef
from app.domain import AIResult, AIStatus, Finding, StudyRef, WorklistItem
from app.errors import ArchiveError, ArchiveHTTPError
from app.results.sr_reader import SR_SOP_CLASSES, read_ai_result
from app.settings import WorklistWeights
from app.worklist.priority import score_study

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Worklist:
    items: tuple[WorklistItem, ...]
    refreshed_at: datetime
    errors: tuple[str, ...]
    archive_description: str

    def item(self, study_uid: str) -> WorklistItem | None:
        return next((i for i in self.items if i.study.study_uid == study_uid), None)


class ResultCache:
    """Parsed AI results by SOP Instance UID (thread-safe, in memory)."""

    def __init__(self) -> None:
        self._results: dict[str, AIResult] = {}
        self._lock = threading.Lock()

    def get(self, sop_uid: str) -> AIResult | None:
        with self._lock:
            return self._results.get(sop_uid)

    def put(self, result: AIResult) -> None:
        with self._lock:
            self._results[result.sop_instance_uid] = result

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)


@dataclass(frozen=True)
class _Fetched:
    ref: InstanceRef
    result: AIResult | None  # None: could not be retrieved (pending)
    error: str = ""


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
            uid: tuple(f.result for f in group if f.result is not None)
            for uid, group in by_study.items()
            if all(f.result is not None for f in group)
        }
        now = self._now()
        unranked: list[WorklistItem] = []
        for study in studies:
            unranked.append(self._item(study, by_study.get(study.study_uid, []), now))
        unranked.sort(
            key=lambda i: (-i.score, -(i.waiting_minutes or 0.0), i.study.study_uid)
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
        fetched = self._fetch(refs, None)
        errors = [f.error for f in fetched if f.error]
        if errors and not any(f.result for f in fetched):
            raise ArchiveError(errors[0])
        results = tuple(f.result for f in fetched if f.result is not None)
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
            page_srs = self.archive.search_instances(
                modality="SR", limit=2, offset=max(len(srs) - 1, 0)
            )
            return _same_tail(page_srs, {r.sop_uid for r in srs}, len(srs), "sop_uid")
        except ArchiveError as exc:
            log.info("change probe failed (%s); searching everything", exc)
            return False

    def _root_sr_instances(self) -> list[InstanceRef]:
        """All SR instances of the archive in one search."""
        return [r for r in self.archive.search_instances(modality="SR") if _is_sr(r)]

    def _per_study_sr_instances(
        self, studies: Sequence[StudyRef]
    ) -> tuple[list[InstanceRef], list[str]]:
        """For archives that refuse a root-level instance search."""
        errors: list[str] = []
        refs: list[InstanceRef] = []
        for study in studies:
            if study.modalities and "SR" not in study.modalities:
                continue
            try:
                refs.extend(self.archive.search_instances(study.study_uid, modality="SR"))
            except ArchiveError as err:
                errors.append(str(err))
        return [r for r in refs if _is_sr(r)], errors

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
        result = read_ai_result(ds)
        self.cache.put(result)
        return _Fetched(ref, result)

    def _item(self, study: StudyRef, fetched: list[_Fetched], now: datetime) -> WorklistItem:
        results = [f.result for f in fetched if f.result is not None]
        problems = tuple(f.error for f in fetched if f.error) + tuple(
            f"AI result {r.sop_instance_uid}: {r.problem}" for r in results if not r.readable
        )
        if not fetched:
            status = AIStatus.NONE
        elif any(f.result is None for f in fetched):
            status = AIStatus.PENDING
        elif any(not r.readable for r in results):
            status = AIStatus.UNREADABLE
        else:
            status = AIStatus.DONE
        score = score_study(study, status, results, self.weights, now)
        findings = tuple(f for r in results if r.readable for f in r.findings)
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
        )


def _same_tail(page: Sequence[object], known: set[str], count: int, attr: str) -> bool:
    """A probe at offset count-1 must return exactly the one last known item (none if empty).

    A server that ignores limit/offset returns more and so is never taken as unchanged."""
    if count == 0:
        return len(page) == 0
    return len(page) == 1 and getattr(page[0], attr) in known


def _is_sr(ref: InstanceRef) -> bool:
    return ref.sop_class_uid in SR_SOP_CLASSES or (not ref.sop_class_uid and ref.modality == "SR")
