"""Retrieve a series' instances concurrently, a bounded number at a time (Qt-free).

Each instance is one WADO-RS request that asks for ``transfer-syntax=*``, so the
server sends what it stores and never transcodes (Orthanc 1.10 / DICOMweb 1.7
honours it for ``application/dicom``). Whole instances, not ``/frames``: the
DICOMweb frames answer does not say a frame's transfer syntax through
dicomweb-client, and Orthanc parses the whole instance for a frame request anyway
(DESIGN.md §5). The local archive answers the same calls from its files.

Requests go out in the order given (the slice the reader will see first, first);
at most ``max_requests`` are in flight, and no more than ``backlog`` received
instances wait for the decoder, so a slow decoder does not pile up memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from pydicom.dataset import Dataset

from app.archive.protocol import ImageArchive
from app.errors import CompanionError

log = logging.getLogger(__name__)

# (SOP Instance UID, the dataset or None, the reason it failed or None)
Deliver = Callable[[str, Dataset | None, str | None], None]


class InstanceFetcher:
    """Fetches instances on a pool; hands each to ``deliver`` on the fetching thread."""

    def __init__(
        self,
        archive: ImageArchive,
        study_uid: str,
        series_uid: str,
        *,
        max_requests: int,
        backlog: int,
        cancel: threading.Event,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, got {max_requests!r}")
        self._archive = archive
        self._study_uid = study_uid
        self._series_uid = series_uid
        self._cancel = cancel
        self._pool = ThreadPoolExecutor(max_workers=max_requests, thread_name_prefix="fetch")
        self._slots = threading.Semaphore(max_requests + max(backlog, 0))

    def start(self, sop_uids: Sequence[str], deliver: Deliver) -> None:
        """Queue one request per instance, in this order."""
        for uid in sop_uids:
            self._pool.submit(self._fetch, uid, deliver)

    def release(self) -> None:
        """An instance handed to ``deliver`` has been decoded: let another request go."""
        self._slots.release()

    def stop(self) -> None:
        """Drop queued requests; one in flight ends at its own pace and is discarded."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _fetch(self, sop_uid: str, deliver: Deliver) -> None:
        while not self._slots.acquire(timeout=0.05):
            if self._cancel.is_set():
                return
        if self._cancel.is_set():
            self._slots.release()
            return
        try:
            ds = self._archive.retrieve_instance(self._study_uid, self._series_uid, sop_uid)
        except CompanionError as exc:
            deliver(sop_uid, None, str(exc))
            return
        except Exception as exc:  # noqa: BLE001  (a failed request is a gap, never a crash)
            log.warning("retrieving an instance failed: %s", type(exc).__name__)
            deliver(sop_uid, None, f"retrieval failed: {type(exc).__name__}: {exc}"[:300])
            return
        if self._cancel.is_set():
            self._slots.release()
            return
        deliver(sop_uid, ds, None)
