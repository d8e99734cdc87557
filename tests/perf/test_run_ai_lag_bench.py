"""Benchmark: the window's event-loop lag while "Run AI" runs, on a real Qt event loop.

The main window (real widgets under Xvfb, the qasync loop the app runs on) shows the
demo's critical head CT (44 x 512 x 512) from the offline demo archive; "Run AI"
(``RunAi.run``, what Ctrl+I does) runs the shipped ``ich_demo_ct`` on the CPU: the
series header is read, the model runs in the worker process reached from the window's
pool, the SR and SEG are written and kept, and the study reopens with the new finding
drawn. A 10 ms QTimer (PreciseTimer) on the GUI thread records how late each tick
comes. Ticks are counted as "inference" while the window's "Running ich_demo_ct" job is
in flight (worker run, SR/SEG writing) and as "reopen" otherwise (header read, reading
the SR back, reopening the study: series load, render). Goal: p95 <= 100 ms.

The first run (cold: it spawns the worker, imports torch and loads the model) is
reported apart from BENCH_RUNAI_REPEAT (default 3) warm runs.
    .venv/bin/python -m pytest tests/perf/test_run_ai_lag_bench.py -q -s
Asserts only that each run showed its finding, never a time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.demo import ensure_demo_archive
from app.review.services import ReviewServices, open_review_services
from app.settings import Settings
from app.worklist.service import WorklistService
from tests.ui.conftest import loop  # noqa: F401  (the qasync loop fixture of the UI tests)
from tests.ui.qt_helpers import LoopDriver, dispose
from ui.app import window_size
from ui.main_window import MainWindow
from ui.run_ai import RunAi
from ui.theme import apply_theme

pytestmark = [pytest.mark.perf, pytest.mark.gui]

REPEAT = int(os.environ.get("BENCH_RUNAI_REPEAT", "3"))
SETTINGS = Settings(reader_id="dr.bench", reader_name="BENCH^AI", inference_device="cpu")


@pytest.fixture()
def services(memory_keyring: object) -> Iterator[ReviewServices]:
    review = open_review_services(SETTINGS, destination="demo", demo=True)
    yield review
    review.close()


def _stats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"ticks": 0}
    ms = np.asarray(values) * 1000.0
    return {
        "ticks": len(values),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def test_event_loop_lag_while_run_ai_runs_in_the_window(
    tmp_path: Path,
    services: ReviewServices,
    qtbot: QtBot,
    loop: LoopDriver,  # noqa: F811
) -> None:
    archive = ensure_demo_archive(tmp_path / "demo")
    apply_theme(QApplication.instance())  # type: ignore[arg-type]
    window = MainWindow(
        archive,
        WorklistService(archive, SETTINGS.weights),
        SETTINGS,
        mode_label="Offline demo",
        review=services,
    )
    window.resize(*window_size())
    run_ai = RunAi(window, SETTINGS)
    window.show()
    qtbot.waitExposed(window)
    ticks: list[tuple[str, float]] = []  # (phase, lateness s)
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        running = window.ops._running  # the labels of the jobs in flight
        phase = "inference" if any(r.startswith("Running ich") for r in running) else "reopen"
        ticks.append((phase, max(0.0, now - last[0] - 0.010)))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    try:
        built = loop.run(window.refresh())
        assert built is not None
        head = next(i for i in built.items if "HEAD" in i.study.description.upper() and i.critical)
        assert loop.run(window.open_study(head.study.study_uid), 120)
        runs: list[dict[str, object]] = []
        for n in range(REPEAT + 1):
            ticks.clear()
            last[0] = time.perf_counter()
            timer.start()
            started = time.perf_counter()
            assert loop.run(run_ai.run(), 300)
            took = time.perf_counter() - started
            timer.stop()
            assert run_ai.last_where == "kept on this computer"
            runs.append(
                {
                    "run": "cold" if n == 0 else "warm",
                    "seconds": round(took, 2),
                    "all": [t for _p, t in ticks],
                    "inference": [t for p, t in ticks if p == "inference"],
                    "reopen": [t for p, t in ticks if p == "reopen"],
                }
            )
    finally:
        timer.stop()
        dispose(window)
    warm = [r for r in runs if r["run"] == "warm"]

    def pooled(runs_: list[dict[str, object]], key: str) -> list[float]:
        return [t for r in runs_ for t in r[key]]  # type: ignore[attr-defined]

    report = {
        "volume": "44 x 512 x 512 (demo ct-ich-critical)",
        "cold_run": {
            "seconds": runs[0]["seconds"],
            "all": _stats(pooled(runs[:1], "all")),
            "inference": _stats(pooled(runs[:1], "inference")),
        },
        "warm_runs": {
            "count": len(warm),
            "seconds_median": float(np.median([r["seconds"] for r in warm])) if warm else None,
            "all": _stats(pooled(warm, "all")),
            "inference": _stats(pooled(warm, "inference")),
            "reopen": _stats(pooled(warm, "reopen")),
        },
        "goal": "p95 <= 100 ms",
    }
    print("\nevent-loop lag while Run AI runs:", json.dumps(report, indent=2))
