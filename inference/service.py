"""Run a model on a volume, in a worker process: the API the UI and the CLI call.

    service = InferenceService()
    result = service.run(volume, registry.get("ich_demo_ct"), progress=..., cancel=event)

``run`` blocks (call it from an executor). It refuses a volume the model does not
fit before anything runs (``StudyNotSuitable``), sends the volume to the worker
process (``inference.worker``), relays progress, and turns the probability map
into findings (``inference.findings``). ``cancel`` (a ``threading.Event``) stops it
within a second: the worker stops after the current patch, and a worker that does
not answer is killed. A worker that crashes or hangs raises ``InferenceError``; the
next run starts a fresh one. The worker stays up between runs and keeps the model
loaded, so only the first run pays for starting torch and loading weights.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from multiprocessing import shared_memory
from typing import Any

import numpy as np
from pydicom.uid import generate_uid

from app.archive.volume import ImageVolume
from app.domain import Finding, Region
from app.errors import CompanionError
from inference.bundle import ModelManifest
from inference.findings import Grid, lesions_from_probabilities, upsample_mask
from inference.registry import ModelEntry, ModelRegistry

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
CANCEL_GRACE_S = 0.5  # after this, a worker that has not stopped is killed
START_TIMEOUT_S = 120.0


class InferenceError(CompanionError):
    """The model could not produce a result (crash, out of memory, bad output)."""


class InferenceCancelled(CompanionError):
    """The run was cancelled by the caller."""


class StudyNotSuitable(CompanionError):
    """The study does not fit the model's input filter; nothing was run."""


@dataclass(frozen=True)
class InferenceResult:
    """What one run produced, ready for finding cards, overlays, the SR and the SEG."""

    model: ModelManifest
    findings: tuple[Finding, ...]
    outlines: dict[str, tuple[Region, ...]]  # per tracking UID: the outline on each slice
    lesion_voxels: tuple[np.ndarray, ...]  # per finding: (n, 3) indices on the model grid
    model_shape: tuple[int, int, int]  # the model grid
    image_shape: tuple[int, int, int]  # the image volume
    sr_sop_uid: str  # the AI result SR the findings will live in (their source_sop_uid)
    study_uid: str
    series_uid: str
    sop_uids: tuple[str, ...]
    device: str
    messages: tuple[str, ...] = ()  # e.g. the out-of-memory fallbacks taken
    timings: dict[str, float] = field(default_factory=dict)

    @cached_property
    def lesion_masks(self) -> tuple[np.ndarray, ...]:
        """Per finding, its voxels on the image grid ((z, y, x) bool; for the SEG).
        Computed on first use: the overlay needs only the outlines."""
        out = []
        for idx in self.lesion_voxels:
            one = np.zeros(self.model_shape, dtype=bool)
            one[tuple(idx.T)] = True
            out.append(upsample_mask(one, self.image_shape))
        return tuple(out)

    @cached_property
    def mask(self) -> np.ndarray:
        """All findings' voxels on the image grid."""
        mask = np.zeros(self.image_shape, dtype=bool)
        for m in self.lesion_masks:
            mask |= m
        return mask


def check_fit(manifest: ModelManifest, volume: ImageVolume, body_part: str = "") -> None:
    """Refuse a volume the model was not made for, before running. Raises StudyNotSuitable."""
    f = manifest.input_filter
    name = manifest.name
    modality = (volume.modality or "").upper()
    if f.modalities and modality not in f.modalities:
        raise StudyNotSuitable(
            f"model {name!r} takes {'/'.join(f.modalities)} series, this one is {modality or '?'}"
        )
    part = body_part.upper()
    if f.body_parts and part and part not in f.body_parts:
        raise StudyNotSuitable(
            f"model {name!r} takes body part {'/'.join(f.body_parts)}, this series is {part}"
        )
    if volume.is_color:
        raise StudyNotSuitable(f"model {name!r} takes greyscale images, this series is colour")
    if volume.shape[0] < f.min_slices:
        raise StudyNotSuitable(
            f"model {name!r} needs at least {f.min_slices} slices, this series has "
            f"{volume.shape[0]}"
        )
    if f.needs_spacing and (not volume.has_geometry or any(s <= 0 for s in volume.spacing)):
        raise StudyNotSuitable(
            f"model {name!r} needs the pixel and slice spacing, this series lacks it"
        )
    if volume.gaps:
        raise StudyNotSuitable(
            f"model {name!r}: {len(volume.gaps)} slice(s) of this series could not be loaded"
        )
    if not volume.complete:
        raise StudyNotSuitable(f"model {name!r}: the series has not finished loading")


def target_shape(manifest: ModelManifest, volume: ImageVolume) -> tuple[int, int, int]:
    """The volume's shape on the model's grid (its spacing), at least 1 voxel per axis."""
    return (
        max(1, round(volume.shape[0] * volume.spacing[0] / manifest.spacing[0])),
        max(1, round(volume.shape[1] * volume.spacing[1] / manifest.spacing[1])),
        max(1, round(volume.shape[2] * volume.spacing[2] / manifest.spacing[2])),
    )


class _Worker:
    """One worker process and its pipe."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.cancel = ctx.Event()
        self.conn, child = ctx.Pipe()
        from inference.worker import worker_main

        self.process = ctx.Process(
            target=worker_main, args=(child, self.cancel), name="companion-inference", daemon=True
        )
        self.process.start()
        child.close()
        self.ready = False

    def wait_ready(self, cancel: threading.Event, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready:
            if cancel.is_set():
                raise InferenceCancelled("inference was cancelled")
            if not self.process.is_alive():
                raise InferenceError(
                    f"the inference worker could not start (exit code {self.process.exitcode})"
                )
            if time.monotonic() > deadline:
                raise InferenceError("the inference worker did not start in time")
            if self.conn.poll(0.05):
                message = self.conn.recv()
                self.ready = message[0] == "ready"

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class InferenceService:
    """Runs models in one warm worker process; one run at a time (others wait)."""

    def __init__(
        self,
        registry: ModelRegistry | None = None,
        *,
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        self.registry = registry or ModelRegistry()
        self.device = device  # "auto", "cuda", "mps" or "cpu"
        self.threads = threads  # torch CPU threads in the worker (0: torch's default)
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self._jobs = 0
        self._buffer: shared_memory.SharedMemory | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self, cancel: threading.Event | None = None) -> None:
        """Start the worker (and torch in it) now, e.g. while the reader opens a study."""
        with self._lock:
            self._ensure_worker(cancel or threading.Event())

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                try:
                    self._worker.conn.send(("quit",))
                    self._worker.process.join(timeout=2)
                except OSError:
                    pass
                self._worker.kill()
                self._worker = None
            self._free_buffer()

    def _shared_buffer(self, nbytes: int) -> shared_memory.SharedMemory:
        """Shared memory the volume is handed over in (no copy through a pipe); kept
        between runs, replaced when a bigger volume comes."""
        if self._buffer is None or self._buffer.size < nbytes:
            self._free_buffer()
            self._buffer = shared_memory.SharedMemory(create=True, size=max(1, nbytes))
        return self._buffer

    def _free_buffer(self) -> None:
        if self._buffer is not None:
            self._buffer.close()
            self._buffer.unlink()
            self._buffer = None

    @property
    def worker_pid(self) -> int | None:
        w = self._worker
        return w.process.pid if w is not None and w.alive() else None

    def _ensure_worker(self, cancel: threading.Event) -> _Worker:
        if self._worker is not None and not self._worker.alive():
            self._worker.kill()
            self._worker = None
        if self._worker is None:
            self._worker = _Worker()
        self._worker.wait_ready(cancel, START_TIMEOUT_S)
        return self._worker

    def _drop_worker(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None

    # -- running -------------------------------------------------------------------
    def run(
        self,
        volume: ImageVolume,
        model: ModelEntry | str,
        *,
        body_part: str = "",
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        timeout_s: float = 600.0,
    ) -> InferenceResult:
        """Run ``model`` on ``volume`` (blocking). Raises StudyNotSuitable (nothing ran),
        InferenceCancelled, InferenceError, or ModelUnavailable."""
        entry = self.registry.get(model) if isinstance(model, str) else model
        if not entry.available or entry.manifest is None:
            raise InferenceError(f"model {entry.name!r} is unavailable: {entry.reason}")
        manifest = entry.manifest
        check_fit(manifest, volume, body_part)
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        with self._lock:
            probs, info = self._infer(entry, volume, progress, cancel, timeout_s)
        post = time.perf_counter()
        sr_uid = generate_uid()
        grid = Grid(volume.shape, volume.spacing, volume.sop_uids, _sop_classes(volume))
        lesions = lesions_from_probabilities(probs.astype(np.float32), manifest, grid, sr_uid)
        done = time.perf_counter()
        timings = {k: float(v) for k, v in info.items() if k.endswith("_s")}
        timings["postprocess_s"] = done - post
        timings["end_to_end_s"] = done - started
        notes = tuple(str(n) for n in info.get("notes", []))
        for note in notes:
            log.warning("inference: %s", note)
        return InferenceResult(
            model=manifest,
            findings=tuple(lesion.finding for lesion in lesions),
            outlines={lesion.finding.tracking_uid: lesion.outlines for lesion in lesions},
            lesion_voxels=tuple(lesion.indices for lesion in lesions),
            model_shape=(int(probs.shape[0]), int(probs.shape[1]), int(probs.shape[2])),
            image_shape=volume.shape,
            sr_sop_uid=sr_uid,
            study_uid=volume.study_uid,
            series_uid=volume.series_uid,
            sop_uids=volume.sop_uids,
            device=str(info.get("device", "")),
            messages=notes,
            timings=timings,
        )

    def _infer(
        self,
        entry: ModelEntry,
        volume: ImageVolume,
        progress: Progress | None,
        cancel: threading.Event,
        timeout_s: float,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        assert entry.manifest is not None
        m = entry.manifest
        worker = self._ensure_worker(cancel)
        worker.cancel.clear()
        self._jobs += 1
        job = self._jobs
        pixels = np.ascontiguousarray(volume.pixels, dtype=np.float32)
        request = {
            "weights": str(entry.weights),
            "shape": list(pixels.shape),
            "target_shape": list(target_shape(m, volume)),
            "patch": list(m.patch_size),
            "window": list(m.window),
            "half_precision": m.half_precision,
            "device": self.device,
            "threads": self.threads,
        }
        buffer = self._shared_buffer(pixels.nbytes)
        view: np.ndarray = np.ndarray(pixels.shape, dtype=np.float32, buffer=buffer.buf)
        view[...] = pixels
        del view
        request["shared_memory"] = buffer.name
        try:
            worker.conn.send(("run", job, request))
        except OSError as exc:
            self._drop_worker()
            raise InferenceError(f"the inference worker is gone: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        cancel_at: float | None = None
        while True:
            if cancel.is_set() and cancel_at is None:
                cancel_at = time.monotonic()
                worker.cancel.set()
            if cancel_at is not None and time.monotonic() - cancel_at > CANCEL_GRACE_S:
                log.warning("inference worker did not stop when asked; killing it")
                self._drop_worker()
                raise InferenceCancelled("inference was cancelled")
            if time.monotonic() > deadline:
                self._drop_worker()
                raise InferenceError(f"the model did not finish within {timeout_s:g} s")
            try:
                ready = worker.conn.poll(0.05)
                message = worker.conn.recv() if ready else None
            except (EOFError, OSError):
                message = None
                ready = True
            if ready and message is None or not worker.alive() and not worker.conn.poll(0):
                code = worker.process.exitcode
                self._drop_worker()
                raise InferenceError(f"the inference worker stopped unexpectedly (exit {code})")
            if message is None or message[1] != job:
                continue
            kind = message[0]
            if kind == "progress" and progress is not None:
                progress(int(message[2]), int(message[3]))
            elif kind == "done":
                return message[2], dict(message[3])
            elif kind == "cancelled":
                raise InferenceCancelled("inference was cancelled")
            elif kind == "error":
                log.error("model %s failed: %s", entry.name, message[3])
                raise InferenceError(f"model {entry.name!r} failed: {message[3]}")


def _sop_classes(volume: ImageVolume) -> tuple[str, ...]:
    if len(volume.sop_class_uids) == volume.shape[0]:
        return volume.sop_class_uids
    return tuple("1.2.840.10008.5.1.4.1.1.2" for _ in range(volume.shape[0]))  # CT Image
