"""Benchmark: whole-slide tiles from a real Orthanc on loopback (issue 6).

Measured side by side in one run (these machines are shared and noisy), each
repeated BENCH_REPEATS times (default 3) and printed run by run:
- viewport fill, cold cache: a 1920x1080 field at a mid level, one screen pixel per
  level pixel (about 40 tiles of 256²), asked of a new ``TileSource`` the way the
  viewer asks (one ``request`` of the field's tiles, nearest the centre first), until
  every tile is decoded and cached; against ``curl`` fetching the very same frames
  requests (the URLs our source sent, recorded) with the same concurrency
  (``--parallel --parallel-max`` = the source's fetch workers), bodies to /dev/null.
  Goal: ours / curl <= 1.3. Also printed: curl's own start-up time (one process, no
  request), and the pure decode time of the same frames on the source's decode
  threads, so the ratio can be read against both.
- adjacent-field pan: the real SlideViewer widget, 1920x1080, panned one whole field
  at a time; per pan, the time until every tile of the new field is cached and the
  widget has repainted (the viewer's own prefetch ring included). Goal: median
  <= 0.25 s. At the mid level and at the base level (full resolution).
- cache bound: the viewer pans field by field across the whole base level with a
  cache bound smaller than the level; the cache's byte count after every field and
  its peak, against the bound. The viewer keeps no tile images of its own (it paints
  QImages over the cached arrays), so the cache is the view's whole tile memory; the
  process RSS before and after is printed too.

Size: BENCH_SLIDE (default 6144x4608, 3 levels: mid level 3072x2304) as WxHxLEVELS,
BENCH_CACHE_MB (default 24). The figures in docs/performance.md come from:
    BENCH_SLIDE=20480x15360x5 BENCH_CACHE_MB=64 .venv/bin/python -m pytest \\
        tests/perf/test_slide_tile_bench.py -q -s
The tests assert that every tile arrived and that the cache stayed within its
bound, never a time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.archive.protocol import ImageArchive
from app.archive.slide_pyramid import SlidePyramid, read_pyramid
from app.archive.tiles import TileKey, TileSource, decode_tile, default_decode_workers
from app.demo.slide import SlideSpec, generate_slide
from tests.support import orthanc
from viewers.slide_viewer import SlideViewer
from viewers.slide_viewport import SlideViewport

pytestmark = [
    pytest.mark.perf,
    pytest.mark.orthanc,
    pytest.mark.skipif(
        shutil.which("curl") is None, reason="curl is the baseline; apt install curl"
    ),
]

W, H, LEVELS = (int(v) for v in os.environ.get("BENCH_SLIDE", "6144x4608x3").split("x"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
CACHE_MB = float(os.environ.get("BENCH_CACHE_MB", "24"))
VIEW_W, VIEW_H = 1920, 1080
FETCH_WORKERS = 4  # TileSource's default; curl gets the same
ACCEPT = 'Accept: multipart/related; type="application/octet-stream"; transfer-syntax=*'


class RecordingArchive:
    """The real archive, recording each frames request and the bytes it returned."""

    def __init__(self, archive: ImageArchive) -> None:
        self._archive = archive
        self.requests: list[tuple[str, list[int]]] = []
        self.frames: list[bytes] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        return getattr(self._archive, name)

    def retrieve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> list[bytes]:
        out = self._archive.retrieve_frames(study_uid, series_uid, sop_uid, frames)
        with self._lock:
            self.requests.append((sop_uid, list(frames)))
            self.frames.extend(out)
        return out

    def stream_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> Iterator[bytes | bytearray]:
        with self._lock:
            self.requests.append((sop_uid, list(frames)))
        for data in self._archive.stream_frames(study_uid, series_uid, sop_uid, frames):  # type: ignore[attr-defined]
            with self._lock:
                self.frames.append(bytes(data))
            yield data


@pytest.fixture(scope="module")
def slide_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SlidePyramid]]:
    server = orthanc.start_orthanc(tmp_path_factory.mktemp("orthanc-slide-bench"))
    try:
        slide = generate_slide(SlideSpec(width=W, height=H, levels=LEVELS, seed=21))
        archive = open_dicomweb(server.dicomweb_url)
        for level in slide.levels:
            archive.store([level])
        pyramid = read_pyramid(archive, slide.study_uid, slide.series_uid)
        del slide
        yield server.dicomweb_url, pyramid
    finally:
        server.stop()


def _mid_level(pyramid: SlidePyramid) -> int:
    """The coarsest level below the base still at least a 1920x1080 field."""
    fits = [
        i
        for i, lvl in enumerate(pyramid.levels)
        if i > 0 and lvl.width >= VIEW_W and lvl.height >= VIEW_H
    ]
    assert fits, f"no level below the base of a {W}x{H} slide holds a 1920x1080 field"
    return fits[len(fits) // 2]


def _field(pyramid: SlidePyramid, level: int, fx: float, fy: float) -> SlideViewport:
    """A 1920x1080 viewport at ``level``, 1:1, centred at fraction (fx, fy) of the room."""
    d = pyramid.downsample(level)
    base = pyramid.base
    half_w, half_h = VIEW_W / 2 * d, VIEW_H / 2 * d
    cx = half_w + fx * max(base.width - 2 * half_w, 0)
    cy = half_h + fy * max(base.height - 2 * half_h, 0)
    return SlideViewport(pyramid, width=VIEW_W, height=VIEW_H, cx=cx, cy=cy, scale=d)


def _ours(url: str, pyramid: SlidePyramid, keys: list[TileKey]) -> tuple[float, RecordingArchive]:
    archive = RecordingArchive(open_dicomweb(url))
    archive.search_studies(limit=1)  # a warm connection, as an open viewer has
    source = TileSource(archive, pyramid, cache_mb=256, fetch_workers=FETCH_WORKERS)  # type: ignore[arg-type]
    try:
        left = set(keys)
        done = threading.Event()
        lock = threading.Lock()
        failed: list[TileKey] = []

        def on_tile(key: TileKey, tile: np.ndarray | None) -> None:
            with lock:
                if tile is None:
                    failed.append(key)
                left.discard(key)
                if not left:
                    done.set()

        t0 = time.perf_counter()
        source.request(keys, on_tile)
        assert done.wait(60), f"{len(left)} tiles never arrived"
        elapsed = time.perf_counter() - t0
        assert not failed, failed
        return elapsed, archive
    finally:
        source.close()


def _curl(url: str, pyramid: SlidePyramid, requests: list[tuple[str, list[int]]]) -> float:
    root = f"{url}/studies/{pyramid.study_uid}/series/{pyramid.series_uid}/instances"
    cmd = ["curl", "-sSf", "--no-progress-meter", "--parallel"]
    cmd += ["--parallel-max", str(FETCH_WORKERS), "-H", ACCEPT]
    for sop, frames in requests:
        cmd += ["-o", "/dev/null", f"{root}/{sop}/frames/{','.join(map(str, frames))}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def _curl_startup() -> float:
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(["curl", "-sSf", "-o", "/dev/null", "file:///dev/null"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _decode_only(frames: list[bytes], pyramid: SlidePyramid, level: int) -> float:
    lvl = pyramid.levels[level]
    with ThreadPoolExecutor(default_decode_workers()) as pool:  # as TileSource's
        t0 = time.perf_counter()
        list(pool.map(lambda f: decode_tile(f, lvl), frames))
        return time.perf_counter() - t0


def _write(name: str, result: dict[str, object]) -> None:
    print(
        f"\nslide tile benchmark ({name}, {W}x{H}, {LEVELS} levels):", json.dumps(result, indent=2)
    )


def test_viewport_fill_vs_curl(slide_server: tuple[str, SlidePyramid]) -> None:
    url, pyramid = slide_server
    level = _mid_level(pyramid)
    startup = _curl_startup()
    runs = []
    for run in range(REPEATS):
        vp = _field(pyramid, level, (0.2 + 0.3 * run) % 1.0, (0.7 - 0.25 * run) % 1.0)
        keys = vp.visible_tiles()
        if run % 2:  # alternate who goes first
            ours, rec = _ours(url, pyramid, keys)
            raw = _curl(url, pyramid, rec.requests)
        else:
            _, probe = _ours(url, pyramid, keys)  # to learn the requests curl makes first
            raw = _curl(url, pyramid, probe.requests)
            ours, rec = _ours(url, pyramid, keys)
        decode = _decode_only(rec.frames, pyramid, level)
        runs.append(
            {
                "tiles": len(keys),
                "requests": len(rec.requests),
                "ours_s": round(ours, 4),
                "curl_s": round(raw, 4),
                "ours_over_curl": round(ours / raw, 2),
                "ours_over_curl_less_startup": round(ours / max(raw - startup, 1e-4), 2),
                "decode_only_s": round(decode, 4),
            }
        )
    result = {
        "level": level,
        "level_size": [pyramid.levels[level].width, pyramid.levels[level].height],
        "curl_startup_s": round(startup, 4),
        "runs": runs,
        "median_ours_over_curl": statistics.median(r["ours_over_curl"] for r in runs),
        "best_ours_over_curl": min(r["ours_over_curl"] for r in runs),
    }
    _write("viewport fill, cold cache", result)


def _wait_filled(viewer: SlideViewer, timeout: float = 30.0) -> float:
    """Seconds until the viewer's field is all cached and painted."""
    t0 = time.perf_counter()
    while viewer.pending_tiles():
        QApplication.processEvents()
        time.sleep(0.001)
        assert time.perf_counter() - t0 < timeout, "tiles never arrived"
    viewer.repaint()
    return time.perf_counter() - t0


def _open_viewer(qtbot: QtBot, url: str, pyramid: SlidePyramid, cache_mb: float) -> SlideViewer:
    source = TileSource(open_dicomweb(url), pyramid, cache_mb=cache_mb)
    viewer = SlideViewer(source)
    qtbot.addWidget(viewer)
    viewer.resize(VIEW_W, VIEW_H)
    viewer.show()
    qtbot.waitExposed(viewer)
    assert (viewer.width(), viewer.height()) == (VIEW_W, VIEW_H)
    return viewer


def _fields(pyramid: SlidePyramid, level: int) -> list[tuple[float, float]]:
    """Field centres (base pixels) across the level, row by row, back and forth."""
    d = pyramid.downsample(level)
    fw, fh = VIEW_W * d, VIEW_H * d
    base = pyramid.base
    cols = max(int(base.width // fw), 1)
    rows = max(int(base.height // fh), 1)
    out = []
    for r in range(rows):
        order = range(cols) if r % 2 == 0 else range(cols - 1, -1, -1)
        out += [((c + 0.5) * fw, (r + 0.5) * fh) for c in order]
    return out


def test_adjacent_field_pan(qtbot: QtBot, slide_server: tuple[str, SlidePyramid]) -> None:
    url, pyramid = slide_server
    result: dict[str, object] = {}
    for name, level in (("mid", _mid_level(pyramid)), ("base", 0)):
        d = pyramid.downsample(level)
        fields = _fields(pyramid, level)[: 2 + 8 * REPEATS]
        if len(fields) < 2:
            result[name] = f"level {level} holds one field only: a larger BENCH_SLIDE pans it"
            continue
        viewer = _open_viewer(qtbot, url, pyramid, 256)
        times = []
        try:
            viewer.viewport.scale = d
            viewer.viewport.cx, viewer.viewport.cy = fields[0]
            viewer.pan(0, 0)
            _wait_filled(viewer)
            for cx, cy in fields[1:]:
                vp = viewer.viewport
                t0 = time.perf_counter()
                viewer.pan((cx - vp.cx) / d, (cy - vp.cy) / d)
                _wait_filled(viewer)
                times.append(time.perf_counter() - t0)
        finally:
            viewer.close()
            viewer.source.close()
        result[name] = {
            "level": level,
            "pans": len(times),
            "median_s": round(statistics.median(times), 4),
            "max_s": round(max(times), 4),
            "times_s": [round(t, 4) for t in times],
        }
    _write("adjacent-field pan", result)


def _viewer_image_bytes(viewer: SlideViewer) -> int:
    """Bytes of tile images the viewer holds itself: QImages or arrays in any of its
    attributes (dicts, lists), outside the source's cache."""
    total = 0
    for value in vars(viewer).values():
        items = value.values() if isinstance(value, dict) else value
        if not isinstance(items, (list, tuple, type({}.values()))):
            continue
        for item in items:
            if isinstance(item, QImage):
                total += item.sizeInBytes()
            elif isinstance(item, np.ndarray):
                total += item.nbytes
    return total


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_cache_stays_bounded_panning_the_base(
    qtbot: QtBot, slide_server: tuple[str, SlidePyramid]
) -> None:
    url, pyramid = slide_server
    base = pyramid.base
    level_bytes = base.tiles_across * base.tiles_down * base.tile_width * base.tile_height * 3
    bound = int(CACHE_MB * 2**20)
    assert level_bytes > bound, "the base level must not fit the cache, or nothing is tested"
    rss0 = _rss()
    viewer = _open_viewer(qtbot, url, pyramid, CACHE_MB)
    cache = viewer.source.cache
    after: list[int] = []
    held: list[int] = []
    try:
        viewer.viewport.scale = 1.0
        fields = _fields(pyramid, 0)
        t0 = time.perf_counter()
        for cx, cy in fields:
            vp = viewer.viewport
            viewer.pan(cx - vp.cx, cy - vp.cy)
            _wait_filled(viewer)
            after.append(cache.nbytes)
            held.append(_viewer_image_bytes(viewer))
            assert cache.nbytes <= cache.max_bytes
        elapsed = time.perf_counter() - t0
        rss1 = _rss()
    finally:
        viewer.close()
        viewer.source.close()
    assert cache.peak_bytes <= cache.max_bytes
    assert max(held) + max(after) <= cache.max_bytes
    _write(
        "cache bound, panning the whole base level",
        {
            "fields": len(fields),
            "seconds": round(elapsed, 1),
            "base_level_mb": round(level_bytes / 2**20, 1),
            "bound_mb": round(bound / 2**20, 1),
            "peak_cache_mb": round(cache.peak_bytes / 2**20, 1),
            "max_after_field_mb": round(max(after) / 2**20, 1),
            "max_viewer_tile_images_mb": round(max(held) / 2**20, 1),
            "rss_growth_mb": round((rss1 - rss0) / 2**20, 1),
        },
    )
