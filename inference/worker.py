"""The inference worker process: loads TorchScript models, runs them, keeps them warm.

Started by ``inference.service`` with multiprocessing's *spawn* context, so a model
that crashes, hangs or leaks cannot take the app down: the app kills the process
and starts a new one. Messages over one ``Connection`` (tuples, first item the kind):

    app -> worker   ("run", job_id, request: dict)  the volume (float32) is in the shared
                    memory block the request names
                    ("quit",)
    worker -> app   ("ready", info) once; ("progress", job_id, done, total, text)
                    ("done", job_id, probabilities: ndarray (z, y, x) float16, info)
                    ("error", job_id, kind, message)   kind: "oom", "model", "input"
                    ("cancelled", job_id)

A shared ``Event`` asks the running job to stop; it is checked after every
sliding-window patch. Loaded models stay cached by bundle path and file time, on
their device, between jobs. torch is imported here, in the worker only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from multiprocessing import shared_memory
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    pass


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is a GPU (or MPS) out-of-memory error."""
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def pick_device(preference: str = "auto") -> str:
    """CUDA when there is one, then Apple MPS, then the CPU (``preference`` may force one)."""
    import torch

    if preference not in ("", "auto"):
        return preference
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def smaller_patch(patch: tuple[int, int, int], floor: int = 16) -> tuple[int, int, int] | None:
    """The patch halved in-plane (not below ``floor``), or None when it cannot shrink."""
    z, y, x = patch
    ny, nx = max(floor, y // 2), max(floor, x // 2)
    if (ny, nx) == (y, x):
        return None
    return z, ny, nx


def run_with_fallback(
    attempt: Callable[[str, tuple[int, int, int]], Any],
    device: str,
    patch: tuple[int, int, int],
    note: Callable[[str], None],
    free: Callable[[], None] = lambda: None,
) -> tuple[Any, str, tuple[int, int, int]]:
    """``attempt(device, patch)``; on out-of-memory retry with smaller windows, then on
    the CPU. Returns (result, device used, patch used); ``note`` gets a message per step."""
    current = patch
    while True:
        try:
            return attempt(device, current), device, current
        except JobCancelled:
            raise
        except Exception as exc:
            if not is_oom(exc) or device == "cpu":
                raise
            free()
            smaller = smaller_patch(current)
            if smaller is not None:
                note(
                    f"{device} ran out of memory with {current[1]}x{current[2]} windows; "
                    f"retrying with {smaller[1]}x{smaller[2]}"
                )
                current = smaller
            else:
                note(f"{device} ran out of memory; running on the CPU instead")
                device, current = "cpu", patch


class _Models:
    """Loaded TorchScript models, by (path, mtime, device, half)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, float, str, bool], Any] = {}

    def get(self, path: str, device: str, half: bool) -> tuple[Any, bool]:
        import torch

        key = (path, os.path.getmtime(path), device, half)
        model = self._cache.get(key)
        if model is not None:
            return model, True
        model = torch.jit.load(path, map_location=device)
        model.eval()
        if half:
            model = model.half()
        self._cache = {k: v for k, v in self._cache.items() if k[0] != path}  # one per bundle
        self._cache[key] = model
        return model, False

    def drop(self, device: str) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k[2] != device}


def _run_job(
    request: dict[str, Any],
    models: _Models,
    cancel: Any,
    report: Callable[[int, int, str], None],
) -> tuple[np.ndarray, dict[str, Any]]:
    started = time.perf_counter()
    shape = tuple(int(v) for v in request["shape"])
    # Attaching registers the block with the resource tracker the app shares (a set: the
    # app's unlink unregisters it once for both); the app owns and unlinks it.
    block = shared_memory.SharedMemory(name=str(request["shared_memory"]))
    volume = np.ndarray(shape, dtype=np.float32, buffer=block.buf)
    try:
        return _run_on(volume, request, models, cancel, report, started)
    finally:
        del volume
        try:
            block.close()
        except BufferError:  # a view still alive (an exception's traceback): freed with it
            pass


def _run_on(
    volume: np.ndarray,
    request: dict[str, Any],
    models: _Models,
    cancel: Any,
    report: Callable[[int, int, str], None],
    started: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    import torch
    import torch.nn.functional as F

    from inference.sliding_window import sliding_window

    low, high = (float(v) for v in request["window"])
    target = tuple(int(v) for v in request["target_shape"])
    pz, py, px = (int(v) for v in request["patch"])
    patch = (pz, py, px)
    notes: list[str] = []
    device = pick_device(str(request.get("device", "auto")))
    half_allowed = bool(request.get("half_precision", False))
    threads = int(request.get("threads", 0))
    if threads > 0:
        torch.set_num_threads(threads)
    timings: dict[str, float] = {}

    def check(done: int, total: int) -> None:
        report(done, total, "")
        if cancel.is_set():
            raise JobCancelled()

    def attempt(dev: str, window: tuple[int, int, int]) -> Any:
        half = half_allowed and dev == "cuda"
        t0 = time.perf_counter()
        model, warm = models.get(str(request["weights"]), dev, half)
        timings["load_s"] = 0.0 if warm else time.perf_counter() - t0
        with torch.inference_mode():
            x = torch.from_numpy(volume).to(dev).clamp(low, high)  # a copy: the app's stays
            x = x.sub_(low).div_(high - low)[None, None]
            if tuple(x.shape[2:]) != target:
                x = F.interpolate(x, size=target, mode="area")
            if half:
                x = x.half()
            t1 = time.perf_counter()
            out = sliding_window(x, window, model, overlap=0.25, on_patch=check)
            timings["forward_s"] = time.perf_counter() - t1
            probs = torch.sigmoid(out[:, 0]) if out.shape[1] == 1 else out.softmax(1)[:, 1]
            return probs[0].to("cpu", torch.float32).numpy()

    def free() -> None:
        models.drop(device)
        if device == "cuda":
            torch.cuda.empty_cache()

    probs, used, window = run_with_fallback(attempt, device, patch, notes.append, free)
    info = {
        "device": used,
        "half": bool(half_allowed and used == "cuda"),
        "patch": list(window),
        "notes": notes,
        "total_s": time.perf_counter() - started,
        "torch": str(torch.__version__),
        **timings,
    }
    return probs.astype(np.float16), info


def worker_main(conn: Any, cancel: Any) -> None:
    """The worker process's loop (the target of the spawned process)."""
    import torch

    models = _Models()
    conn.send(("ready", {"pid": os.getpid(), "torch": str(torch.__version__)}))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "quit":
            return
        if message[0] != "run":
            continue
        _, job_id, request = message

        def report(done: int, total: int, text: str, job_id: int = job_id) -> None:
            conn.send(("progress", job_id, done, total, text))

        try:
            probs, info = _run_job(request, models, cancel, report)
        except JobCancelled:
            conn.send(("cancelled", job_id))
        except Exception as exc:  # noqa: BLE001 - every model failure goes back as a message
            kind = "oom" if is_oom(exc) else "model"
            conn.send(("error", job_id, kind, f"{type(exc).__name__}: {exc}"[:2000]))
        else:
            conn.send(("done", job_id, probs, info))
