"""Stream a series into one volume, the reader's slice first (Qt-free).

1. The series metadata (WADO-RS) gives the plan: slice order along the normal,
   the volume allocated once, the rescale of every frame (``series_plan``).
2. From a DICOMweb archive, the instance of the preferred slice (an AI finding's,
   else the middle) comes first, in its own request; then the whole series in one
   multipart answer, read part by part as it arrives (``multipart``). Native pixels
   are copied straight from each part's bytes (``part10``): ~0.3 ms per CT slice,
   against ~7 ms for one request per instance through dicomweb-client. Whatever the
   stream did not bring, and every instance of an archive that cannot stream (the
   local one), is retrieved one request per instance, a bounded number at a time,
   nearest the preferred slice first (``frame_fetch``).
3. Compressed frames are decoded on a thread pool straight into their slice
   (``pixel_decode``); ``on_slice(z)`` says a slice is there, so a viewer can show
   the first image long before the series is complete.
4. A frame that cannot be retrieved or decoded becomes a gap with its reason;
   the rest still loads. Setting ``cancel`` stops it within a fraction of a second.

Callbacks run on worker threads: a UI must hand them to its own thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset

from app.archive.decode_pool import DecodePool, shared_pool
from app.archive.frame_fetch import InstanceFetcher
from app.archive.part10 import FileMeta, native_pixel_offset, read_file_meta
from app.archive.pixel_decode import FrameDecodeError, native_layout, write_frame, write_native
from app.archive.protocol import ImageArchive, StreamingArchive
from app.archive.series_cache import SeriesCache
from app.archive.series_plan import (
    SeriesPlan,
    data_window,
    fetch_order,
    header_from_json,
    plan_series,
)
from app.archive.volume import ImageVolume, LoadCancelled, Progress, VolumeLoadError

log = logging.getLogger(__name__)

Prefer = Callable[[ImageVolume], int | None]
DEFAULT_MAX_REQUESTS = 6


class SeriesLoader:
    """Loads series from one archive; shares a recently-viewed cache between loads."""

    def __init__(
        self,
        archive: ImageArchive,
        cache: SeriesCache | None = None,
        *,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        decode_threads: int | None = None,
        decode_pool: DecodePool | None | bool = True,
    ) -> None:
        """``decode_pool``: where compressed frames are decoded (True: the process's shared
        pool, started now in the background; None/False: in the loader's threads)."""
        self.archive = archive
        self.cache = cache
        self.max_requests = max_requests
        self.decode_threads = decode_threads or max(2, os.cpu_count() or 2)
        if decode_pool is True:
            decode_pool = shared_pool()
        self.decode_pool: DecodePool | None = decode_pool or None

    def load(
        self,
        study_uid: str,
        series_uid: str,
        *,
        prefer: Prefer | None = None,
        on_volume: Callable[[ImageVolume], None] | None = None,
        on_slice: Callable[[int], None] | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> ImageVolume:
        """Load a series (blocking: run it in an executor) and return its volume.

        ``prefer(volume)`` names the slice to load first (the volume has its geometry
        and SOP UIDs then, no pixels). ``on_volume`` gets the allocated volume before
        any pixel; ``on_slice(z)`` fires as each slice lands or becomes a gap.
        Raises ``LoadCancelled``, ``VolumeLoadError`` (nothing decodable) or the
        archive's ``ArchiveError`` (the metadata could not be retrieved).
        """
        cancel = cancel or threading.Event()
        if cancel.is_set():
            raise LoadCancelled("loading the series was cancelled")
        cached = self.cache.get(study_uid, series_uid) if self.cache is not None else None
        if cached is not None:
            return _replay(cached, prefer, on_volume, on_slice, progress)
        metadata = self.archive.retrieve_series_metadata(study_uid, series_uid)
        if cancel.is_set():
            raise LoadCancelled("loading the series was cancelled")
        plan = plan_series([header_from_json(m) for m in metadata], study_uid, series_uid)
        volume = plan.volume
        first = _preferred(volume, prefer)
        if on_volume is not None:
            on_volume(volume)
        run = _Run(plan, cancel, on_slice, progress, self.decode_pool)
        run.execute(self.archive, first, self.max_requests, self.decode_threads)
        if self.cache is not None:
            self.cache.put(volume)
        return volume


def volume_from_datasets(
    datasets: Sequence[Dataset],
    study_uid: str = "",
    series_uid: str = "",
    *,
    decode_pool: DecodePool | None = None,
) -> ImageVolume:
    """Build a volume from datasets already in memory (files opened from disk), with the
    same plan and decoder as a streamed series. Raises ``VolumeLoadError`` when no frame
    decodes; frames that fail are gaps with their reason."""
    if datasets:
        study_uid = study_uid or str(datasets[0].get("StudyInstanceUID", ""))
        series_uid = series_uid or str(datasets[0].get("SeriesInstanceUID", ""))
    plan = plan_series(datasets, study_uid, series_uid)
    run = _Run(plan, threading.Event(), None, None, decode_pool)
    for z in range(len(plan.slots)):
        ds = plan.headers[plan.slots[z].sop_uid]
        assert isinstance(ds, Dataset)  # the plan's headers are these datasets
        run.decode(ds, z)
    run.finish()
    return plan.volume


class _Run:
    """The state of one load: which slices are in, which are gaps, callbacks."""

    def __init__(
        self,
        plan: SeriesPlan,
        cancel: threading.Event,
        on_slice: Callable[[int], None] | None,
        progress: Progress | None,
        decode_pool: DecodePool | None = None,
    ) -> None:
        self.plan = plan
        self.decode_pool = decode_pool
        self.cancel = cancel
        self.on_slice = on_slice
        self.progress = progress
        self.total = len(plan.slots)
        self.done = 0
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.window_known = plan.window_known
        self.wanted: dict[str, list[int]] = {}  # SOP Instance UID -> its slices
        self.received: set[str] = set()  # instances already taken from a stream
        self.backlog = threading.Semaphore(1)
        self.decoders: ThreadPoolExecutor | None = None
        self.first_slices: set[int] = set()  # the preferred instance's slices not yet in
        self.first_done = threading.Event()

    def execute(
        self, archive: ImageArchive, first: int, max_requests: int, decode_threads: int
    ) -> None:
        plan = self.plan
        if self.progress is not None:
            self.progress(0, self.total)
        order = fetch_order(self.total, first)
        # per instance, in the order of its nearest slice, the slices its frames fill
        for z in order:
            self.wanted.setdefault(plan.slots[z].sop_uid, []).append(z)
        self.first_slices = set(self.wanted[plan.slots[first].sop_uid])
        self.backlog = threading.Semaphore(2 * decode_threads)
        decoders = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="decode")
        self.decoders = decoders
        fetcher = InstanceFetcher(
            archive,
            plan.volume.study_uid,
            plan.volume.series_uid,
            max_requests=max_requests,
            backlog=2 * decode_threads,
            cancel=self.cancel,
        )

        def per_instance(uids: list[str]) -> None:
            fetcher.start(
                uids, lambda uid, ds, error: self.dispatch(uid, ds, error, fetcher.release)
            )

        streamer = archive if isinstance(archive, StreamingArchive) else None
        stream_thread = None
        try:
            if streamer is not None and streamer.can_stream:
                stream_thread = threading.Thread(
                    target=self.stream, args=(streamer, per_instance), name="series-stream"
                )
                stream_thread.daemon = True
                stream_thread.start()
            else:
                instances = list(self.wanted)
                per_instance(instances[:1])  # the preferred slice's, alone: it lands first
                while not self.first_done.wait(0.05):
                    if self.cancel.is_set():
                        raise LoadCancelled("loading the series was cancelled")
                per_instance(instances[1:])
            while not self.finished.wait(0.05):
                if self.cancel.is_set():
                    raise LoadCancelled("loading the series was cancelled")
        finally:
            fetcher.stop()
            decoders.shutdown(wait=False, cancel_futures=True)
        if self.cancel.is_set():
            raise LoadCancelled("loading the series was cancelled")
        self.finish()

    def stream(self, archive: StreamingArchive, per_instance: Callable[[list[str]], None]) -> None:
        """The preferred slice's instance in one request, then the whole series in one
        multipart answer read part by part (the instance already in is skipped); what
        the stream did not bring (it failed, or the server left an instance out) is then
        fetched one request per instance, where a failure becomes a gap."""
        volume = self.plan.volume
        first = next(iter(self.wanted))
        taken: list[Future[None]] = []
        for sop_uid in (first, None):
            try:
                for data in archive.stream_instance_files(
                    volume.study_uid, volume.series_uid, sop_uid, cancel=self.cancel
                ):
                    if sop_uid is not None:  # the preferred slice's: taken now, it lands first
                        self.take(data)
                        continue
                    # parts are taken on the pool while the next ones are read; at most
                    # ``backlog`` wait, so a slow decoder holds back the socket, not memory
                    while not self.backlog.acquire(timeout=0.05):
                        if self.cancel.is_set():
                            return
                    assert self.decoders is not None
                    taken.append(self.decoders.submit(self.take_then_release, data))
            except RuntimeError:  # the pool was shut down: cancelled or finished
                return
            except Exception as exc:  # noqa: BLE001  (fall back to one request per instance)
                log.info(
                    "streaming the series failed (%s); per-instance requests", type(exc).__name__
                )
        wait(taken)
        if self.cancel.is_set():
            return
        with self.lock:
            left = [uid for uid in self.wanted if uid not in self.received]
        if left:
            per_instance(left)

    def take_then_release(self, data: bytes | bytearray) -> None:
        try:
            if not self.cancel.is_set():
                self.take(data)
        finally:
            self.backlog.release()

    def take(self, data: bytes | bytearray) -> None:
        """One received Part 10 file: native pixels straight from its bytes; anything
        else parsed by pydicom, then its frames decoded."""
        meta = read_file_meta(data)
        claimed = None
        if meta is not None and meta.sop_uid in self.wanted:
            if not self.claim(meta.sop_uid):
                return
            claimed = meta.sop_uid
            self.plan.volume.transfer_syntaxes.add(meta.syntax)
            if self.take_native(meta, data):
                return
        try:
            ds = dcmread(BytesIO(data), force=True)
            uid = str(ds.get("SOPInstanceUID", ""))
        except Exception as exc:  # noqa: BLE001  (its instance is fetched again, alone)
            log.info("a streamed instance is not readable: %s", type(exc).__name__)
            if claimed is not None:
                self.unclaim(claimed)
            return
        if uid != claimed:  # the file meta was odd: trust the data set
            if claimed is not None:
                self.unclaim(claimed)
            if uid not in self.wanted or not self.claim(uid):
                return
        self.plan.volume.transfer_syntaxes.add(_syntax(ds))
        for z in self.wanted[uid]:
            if self.cancel.is_set():
                return
            self.decode(ds, z)

    def take_native(self, meta: FileMeta, data: bytes | bytearray) -> bool:
        """Write the native frames of ``data`` into their slices; False if it is not that."""
        plan = self.plan
        header = plan.headers[meta.sop_uid]
        slices = self.wanted[meta.sop_uid]
        layout = None if plan.volume.is_color else native_layout(header)
        if layout is None:
            return False
        rows, cols, _, _ = layout
        frames = int(header.get("NumberOfFrames", 1) or 1)
        offset = native_pixel_offset(data, meta, rows * cols * 2 * frames)
        if offset is None:
            return False
        for z in slices:
            slot = plan.slots[z]
            try:
                write_native(
                    header,
                    data,
                    offset,
                    slot.frame_index,
                    plan.volume.pixels[z],
                    slot.slope,
                    slot.intercept,
                )
            except FrameDecodeError as exc:
                self.mark_gap(z, str(exc))
                continue
            self.mark_loaded(z)
        return True

    def claim(self, uid: str) -> bool:
        """True the first time an instance arrives (a stream may repeat the first one)."""
        with self.lock:
            if uid in self.received:
                return False
            self.received.add(uid)
            return True

    def unclaim(self, uid: str) -> None:
        with self.lock:
            self.received.discard(uid)

    def dispatch(
        self, uid: str, ds: Dataset | None, error: str | None, release: Callable[[], None]
    ) -> None:
        """Decode a received instance's frames on the pool (or mark them gaps); call
        ``release`` once all are done, so the next instance may come in."""
        slices = self.wanted[uid]
        if ds is None:
            for z in slices:
                self.mark_gap(z, error or "not retrieved")
            release()
            return
        self.plan.volume.transfer_syntaxes.add(_syntax(ds))
        pending = [len(slices)]
        pending_lock = threading.Lock()

        def decode_one(z: int) -> None:
            try:
                if not self.cancel.is_set():
                    self.decode(ds, z)
            finally:
                with pending_lock:
                    pending[0] -= 1
                    last = pending[0] == 0
                if last:
                    release()

        assert self.decoders is not None
        for z in slices:
            try:
                self.decoders.submit(decode_one, z)
            except RuntimeError:  # the pool was shut down: cancelled
                release()
                return

    def decode(self, ds: Dataset, z: int) -> None:
        slot = self.plan.slots[z]
        target = self.plan.volume.pixels[z]
        try:
            write_frame(
                ds,
                slot.frame_index,
                target,
                slot.slope,
                slot.intercept,
                decode_elsewhere=self.decode_pool.decode if self.decode_pool else None,
            )
        except FrameDecodeError as exc:
            self.mark_gap(z, str(exc))
            return
        except Exception as exc:  # noqa: BLE001  (one bad frame must not stop the series)
            self.mark_gap(z, f"cannot decode: {type(exc).__name__}: {exc}"[:300])
            return
        self.mark_loaded(z)

    def mark_loaded(self, z: int) -> None:
        volume = self.plan.volume
        with self.lock:
            if not self.window_known and not volume.is_color:
                volume.window_center, volume.window_width = data_window(volume.pixels[z])
                self.window_known = True
            assert volume.loaded is not None
            volume.loaded[z] = True
        self._count(z)

    def mark_gap(self, z: int, reason: str) -> None:
        volume = self.plan.volume
        with self.lock:
            volume.gaps[z] = reason
        self._count(z)

    def _count(self, z: int) -> None:
        with self.lock:
            self.done += 1
            done = self.done
            self.first_slices.discard(z)
            if not self.first_slices:
                self.first_done.set()
        if self.on_slice is not None:
            self.on_slice(z)
        if self.progress is not None:
            self.progress(done, self.total)
        if done >= self.total:
            self.finished.set()

    def finish(self) -> None:
        """Record the gaps as problems; fail when no slice could be shown at all."""
        volume = self.plan.volume
        for z in sorted(volume.gaps):
            where = volume.sop_uids[z] + (f" frame {volume.frames[z]}" if volume.frames[z] else "")
            volume.problems.append(f"instance {where}: {volume.gaps[z]}")
        if len(volume.gaps) == self.total:
            why = "; ".join(sorted(set(volume.gaps.values()))[:3])
            raise VolumeLoadError(f"series {volume.series_uid} has no displayable image: {why}")
        if volume.gaps:
            log.info("series loaded with %d gap(s) of %d slices", len(volume.gaps), self.total)


def _preferred(volume: ImageVolume, prefer: Prefer | None) -> int:
    z = volume.shape[0]
    index = prefer(volume) if prefer is not None else None
    return z // 2 if index is None else max(0, min(int(index), z - 1))


def _replay(
    volume: ImageVolume,
    prefer: Prefer | None,
    on_volume: Callable[[ImageVolume], None] | None,
    on_slice: Callable[[int], None] | None,
    progress: Progress | None,
) -> ImageVolume:
    """A cached volume: the same callbacks a load would make, at once."""
    if on_volume is not None:
        on_volume(volume)
    if on_slice is not None:
        on_slice(_preferred(volume, prefer))
    if progress is not None:
        progress(volume.shape[0], volume.shape[0])
    return volume


def _syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
