"""Cancel stops a run within a second; a crashing, stuck or killed model never takes the
caller down, and the next run works."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from app.archive.volume import ImageVolume
from inference.registry import (
    ModelRegistry,
    check_bundle,
    installed_torch_version,
    shipped_models_dir,
)
from inference.service import InferenceCancelled, InferenceError, InferenceService


class Raises(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 0:
            raise RuntimeError("this model always fails")
        return x


class Stuck(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.ones(256, 256)
        for _ in range(1000000):
            a = torch.tanh(a @ a)
        return x[:, :1] * a[0, 0]


def _bundle(tmp: Path, name: str, module: torch.nn.Module):  # type: ignore[no-untyped-def]
    target = tmp / name
    shutil.copytree(shipped_models_dir() / "ich_demo_ct", target)
    torch.jit.script(module).save(str(target / "models" / "model.ts"))
    return check_bundle(target, "user", torch_version=installed_torch_version())


def test_cancel_stops_within_a_second(service: InferenceService, ich_volume: ImageVolume) -> None:
    cancel = threading.Event()
    asked: list[float] = []

    def progress(done: int, total: int) -> None:
        if not asked:
            asked.append(time.monotonic())
            cancel.set()

    with pytest.raises(InferenceCancelled):
        service.run(ich_volume, "ich_demo_ct", progress=progress, cancel=cancel)
    assert time.monotonic() - asked[0] < 1.0
    assert service.run(ich_volume, "ich_demo_ct").findings  # and it still works


def test_crashing_model_reports_an_error_and_the_worker_survives(
    service: InferenceService, ich_volume: ImageVolume, tmp_path: Path
) -> None:
    entry = _bundle(tmp_path, "raises", Raises())
    service.start()
    pid = service.worker_pid
    with pytest.raises(InferenceError, match="always fails"):
        service.run(ich_volume, entry)
    assert service.worker_pid == pid


def test_stuck_model_is_killed_on_cancel_within_a_second(
    ich_volume: ImageVolume, tmp_path: Path
) -> None:
    entry = _bundle(tmp_path, "stuck", Stuck())
    svc = InferenceService(ModelRegistry([]), device="cpu")
    try:
        svc.start()
        pid = svc.worker_pid
        cancel = threading.Event()
        set_at: list[float] = []

        def fire() -> None:
            set_at.append(time.monotonic())
            cancel.set()

        threading.Timer(1.0, fire).start()
        with pytest.raises(InferenceCancelled):
            svc.run(ich_volume, entry, cancel=cancel)
        assert time.monotonic() - set_at[0] < 1.0
        assert svc.worker_pid is None and pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        svc.close()


def test_killed_worker_raises_and_the_next_run_starts_a_new_one(
    ich_volume: ImageVolume, tmp_path: Path
) -> None:
    entry = _bundle(tmp_path, "stuck", Stuck())
    real = check_bundle(
        shipped_models_dir() / "ich_demo_ct", "shipped", torch_version=installed_torch_version()
    )
    svc = InferenceService(ModelRegistry([]), device="cpu")
    try:
        svc.start()
        pid = svc.worker_pid
        assert pid is not None
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(InferenceError, match="stopped unexpectedly"):
            svc.run(ich_volume, entry)
        result = svc.run(ich_volume, real)  # a fresh worker
        assert svc.worker_pid not in (None, pid)
        assert result.findings
    finally:
        svc.close()
