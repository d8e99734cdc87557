"""Benchmarks of the viewer a reader feels: scrolling, and the UI's responsiveness while
a series streams in (issue 4). Real widgets under Xvfb (pytest-xvfb), real Orthanc.

- scroll: page through every slice with the Down key in a 1024x1024 SliceViewer with a
  finding's regions drawn on every slice; per key press, the time until the frame is
  drawn (the key event, the slice and overlay update, Render and glFinish). Goal:
  p95 <= 33 ms, and no slice dropped (every slice stepped to was rendered). The
  OpenGL renderer is printed (on Xvfb: Mesa llvmpipe, a CPU rasteriser).
- event-loop lag: a 10 ms QTimer measures its own lateness while StudyView opens a
  study and streams its series (uncompressed and JPEG-LS, whose decode holds the
  CPUs). Goal: p95 <= 100 ms.

Size: BENCH_SLICES (default 16) slices of BENCH_SIZE (default 256) pixels square. The
figures in docs/performance.md come from:
    BENCH_SLICES=300 BENCH_SIZE=512 .venv/bin/python -m pytest tests/perf/test_viewer_bench.py -q -s
The tests assert that nothing was dropped and everything loaded, never a time.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator

import numpy as np
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.archive.volume import ImageVolume
from app.domain import Algorithm, Code, Finding, Region, Urgency
from tests.perf.test_series_load_bench import _make, _phantom
from tests.support.orthanc import OrthancServer
from tests.ui.conftest import loop  # noqa: F401  (the qasync loop fixture of the UI tests)
from tests.ui.qt_helpers import LoopDriver, dispose
from ui.async_ops import AsyncOps
from ui.study_view import StudyView
from viewers.slice_viewer import SliceViewer

pytestmark = [pytest.mark.perf, pytest.mark.gui]

N_SLICES = int(os.environ.get("BENCH_SLICES", "16"))
SIZE = int(os.environ.get("BENCH_SIZE", "256"))
VIEW = 1024


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000.0
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
    }


def _volume(n: int, size: int) -> ImageVolume:
    return ImageVolume(
        pixels=_phantom(n, size),
        sop_uids=tuple(f"1.2.826.0.1.99.{k}" for k in range(n)),
        frames=(None,) * n,
        positions=np.array([[0.0, 0.0, 1.0 * k] for k in range(n)]),
        spacing=(1.0, 0.8, 0.8),
        origin=(0.0, 0.0, 0.0),
        row_cosines=(1.0, 0.0, 0.0),
        col_cosines=(0.0, 1.0, 0.0),
        frame_of_reference_uid="1.2.826.0.1.99",
        modality="CT",
        window_center=40.0,
        window_width=400.0,
        description="Scroll benchmark",
    )


def _finding_on_every_slice(volume: ImageVolume) -> Finding:
    """One finding whose region (a 64-point polygon) is drawn on each slice."""
    size = volume.shape[1]
    angle = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    outline = tuple(
        (float(size / 2 + size / 5 * np.cos(a)), float(size / 2 + size / 7 * np.sin(a)))
        for a in angle
    )
    regions = tuple(Region("POLYGON", outline, referenced_sop_uid=uid) for uid in volume.sop_uids)
    return Finding(
        tracking_uid="1.2.826.0.1.99.1000",
        finding=Code("1386000", "SCT", "Intracranial hemorrhage"),
        site=None,
        certainty=0.9,
        urgency=Urgency.CRITICAL,
        algorithm=Algorithm("Bench", "1", "Bench"),
        regions=regions,
        measurements=(),
        source_sop_uid="1.2.826.0.1.99.2000",
    )


@pytest.fixture()
def viewer(qtbot: QtBot) -> Iterator[SliceViewer]:
    widget = SliceViewer()
    widget.resize(VIEW, VIEW)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    dispose(widget)


def _renderer_name(viewer: SliceViewer) -> str:
    report = viewer.gl_widget.GetRenderWindow().ReportCapabilities()
    found = re.search(r"OpenGL renderer string:\s*(.+)", report)
    return found.group(1).strip() if found else "unknown"


def test_scroll_frame_time(viewer: SliceViewer) -> None:
    volume = _volume(N_SLICES, SIZE)
    finding = _finding_on_every_slice(volume)
    viewer.show_volume(volume, 0)
    viewer.set_findings([finding], finding.tracking_uid)
    window = viewer.gl_widget.GetRenderWindow()
    rendered: list[int] = []
    window.AddObserver("EndEvent", lambda *_: rendered.append(viewer.slice_index))
    QApplication.processEvents()
    rendered.clear()
    times: list[float] = []
    for _ in range(N_SLICES - 1):
        t0 = time.perf_counter()
        QApplication.sendEvent(
            viewer.gl_widget,
            QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Down, Qt.KeyboardModifier.NoModifier),
        )
        QApplication.processEvents()
        window.WaitForCompletion()
        times.append(time.perf_counter() - t0)
    stepped = list(range(1, N_SLICES))
    dropped = sorted(set(stepped) - set(rendered))
    outlined = viewer.regions and len(viewer.regions) == N_SLICES
    result = {
        "slices": N_SLICES,
        "size": SIZE,
        "view": [viewer.gl_widget.width(), viewer.gl_widget.height()],
        "renderer": _renderer_name(viewer),
        "dropped": len(dropped),
        **_percentiles(times),
    }
    print("\nscroll benchmark:", json.dumps(result, indent=2))
    assert viewer.slice_index == N_SLICES - 1 and outlined
    assert not dropped, f"slices stepped to but never rendered: {dropped[:10]}"


@pytest.mark.orthanc
@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, JPEGLSLossless], ids=["uncompressed", "jpeg-ls"]
)
def test_event_loop_lag_while_a_series_loads(
    syntax: str,
    empty_orthanc: OrthancServer,
    loop: LoopDriver,  # noqa: F811  (the fixture imported above)
    qtbot: QtBot,
) -> None:
    hu = _phantom(N_SLICES, SIZE)
    slices = _make(syntax, hu)
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    for i in range(0, len(slices), 25):
        archive.store(slices[i : i + 25])
    view = StudyView(archive, AsyncOps())
    view.resize(VIEW, VIEW)
    view.show()
    qtbot.waitExposed(view)
    lateness: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - 0.010))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    try:
        t0 = time.perf_counter()
        last[0] = t0
        timer.start()
        shown = loop.run(view.open_study(slices[0].StudyInstanceUID, "Lag benchmark", []), 600)
        elapsed = time.perf_counter() - t0
        timer.stop()
        volume = view.viewer.volume
        assert shown and volume is not None and volume.complete and not volume.gaps
        assert np.array_equal(volume.pixels, hu)
        result = {
            "syntax": syntax,
            "slices": N_SLICES,
            "size": SIZE,
            "load_s": elapsed,
            "ticks": len(lateness),
            **_percentiles(lateness),
        }
        print("\nevent-loop lag while loading:", json.dumps(result, indent=2))
    finally:
        timer.stop()
        dispose(view)
