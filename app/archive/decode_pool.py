"""Compressed frames decoded in worker processes, off the app's GIL.

The JPEG, JPEG-LS, JPEG 2000 and RLE decoders pydicom uses (pylibjpeg's plugins,
pyjpegls) hold the GIL for the whole of each frame. Decoded on the loader's threads,
they ran one at a time and starved the GUI thread (event-loop lag p95 ~250 ms while a
JPEG-LS series loaded, docs/performance.md). Here each frame's compressed bytes go to
a small pool of *spawned* processes (never forked: the app has Qt and threads) that
return the decoded array; the loader thread only waits, with the GIL released.

The pool starts in the background when the first loader is made; until its workers
have answered once, and for anything it cannot do, ``decode`` returns None and the
caller decodes in its own thread as before, so nothing depends on the pool.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame

log = logging.getLogger(__name__)

# The Image Pixel attributes a decoder needs, as pydicom's DecodeOptions name them.
_OPTIONS = {
    "Rows": "rows",
    "Columns": "columns",
    "SamplesPerPixel": "samples_per_pixel",
    "BitsAllocated": "bits_allocated",
    "BitsStored": "bits_stored",
    "PixelRepresentation": "pixel_representation",
    "PhotometricInterpretation": "photometric_interpretation",
    "PlanarConfiguration": "planar_configuration",
}
WARM_TIMEOUT_S = 60.0


def _warm() -> int:
    """Import the decoders in a worker (its first real frame then decodes at once)."""
    import pydicom.pixels  # noqa: F401

    return os.getpid()


def _decode(frame: bytes, syntax: str, options: dict[str, Any]) -> np.ndarray:
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder

    # a buffer is read as encapsulated Pixel Data: the one frame, in its own item
    array, _ = get_decoder(syntax).as_array(encapsulate([frame]), index=0, **options)
    return array


def frame_job(ds: Dataset, frame_index: int) -> tuple[bytes, str, dict[str, Any]] | None:
    """The compressed bytes of frame ``frame_index`` of ``ds`` and how to decode them;
    None when ``ds`` is not encapsulated (native and deflated data stay in-process)."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is None or not syntax.is_encapsulated or "PixelData" not in ds:
        return None
    options: dict[str, Any] = {"number_of_frames": 1, "transfer_syntax_uid": syntax}
    for keyword, name in _OPTIONS.items():
        value = ds.get(keyword)
        if value is not None:
            options[name] = value if isinstance(value, str) else int(value)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        frame = get_frame(ds.PixelData, frame_index, number_of_frames=frames)
    except Exception:  # noqa: BLE001  (odd encapsulation: pydicom's own reader copes or says why)
        return None
    return frame, str(syntax), options


class DecodePool:
    """A few spawned processes that decode compressed frames."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._failed = False
        self.worker_pids: set[int] = set()
        self.decoded = 0  # frames decoded by the workers (for tests and logs)

    def start(self) -> None:
        """Start the workers in the background (idempotent)."""
        with self._lock:
            if self._executor is not None or self._failed:
                return
            try:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
                )
                warming = [self._executor.submit(_warm) for _ in range(self.workers)]
            except Exception as exc:  # noqa: BLE001  (no pool: frames decode in-thread)
                log.warning("no decode processes (%s); decoding in threads", type(exc).__name__)
                self._failed = True
                return
        threading.Thread(target=self._wait_warm, args=(warming,), daemon=True).start()

    def _wait_warm(self, warming: list[Future[int]]) -> None:
        try:
            self.worker_pids.update(f.result(WARM_TIMEOUT_S) for f in warming)
            self._ready.set()
        except Exception as exc:  # noqa: BLE001
            log.warning("decode processes did not start (%s)", type(exc).__name__)
            self._failed = True

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._failed

    def wait_ready(self, timeout: float = WARM_TIMEOUT_S) -> bool:
        self.start()
        return self._ready.wait(timeout) and not self._failed

    def decode(self, ds: Dataset, frame_index: int) -> np.ndarray | None:
        """Frame ``frame_index`` of ``ds`` decoded in a worker; None: decode it yourself
        (the pool is not ready, the data set is not encapsulated, or a worker died).
        A frame the decoder rejects raises its error, as an in-thread decode would."""
        executor = self._executor
        if executor is None or not self.ready:
            return None
        job = frame_job(ds, frame_index)
        if job is None:
            return None
        try:
            future = executor.submit(_decode, *job)
        except RuntimeError:  # shut down (the app is closing): decode here
            return None
        try:
            frame = future.result()  # a decoder's own error is raised here, as in-thread
        except BrokenProcessPool as exc:  # a worker died (e.g. a decoder crashed on a frame)
            log.warning("decode process lost (%s); decoding in threads", type(exc).__name__)
            self._failed = True
            return None
        with self._lock:
            self.decoded += 1
        return frame

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._ready.clear()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


_shared: DecodePool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> DecodePool:
    """The process's one decode pool, started on first use and closed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DecodePool()
            atexit.register(_shared.close)
        _shared.start()
        return _shared
