"""Whole-slide tiles from an archive: batched WADO-RS frames, decoded in a pool, cached (Qt-free).

``TileSource.request`` never blocks and never raises into the caller: it groups the
tiles not yet cached by level into requests of several frames each (Orthanc's
DICOMweb plugin parses the whole instance for every frames request, DESIGN.md §5),
fetches them on a small pool, decodes each frame on another pool as soon as it has
arrived (the rest of the answer still streaming in), keeps the result
in an LRU cache bounded in bytes, and calls ``on_tile(key, rgb or None)`` on a worker
thread. None means blank: a tile outside the slide, one no frame covers
(TILED_SPARSE), or one that failed to arrive or decode (logged, and asked for again
only on a request at least ``retry_after_s`` later, so a view that repaints and
re-requests what it lacks does not hammer a failing server). ``is_blank`` says which
tiles a view should stop waiting for. The view adapts this to its own thread.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import simplejpeg
from PIL import Image

from app.archive.protocol import ImageArchive, StreamingArchive
from app.archive.slide_pyramid import SlideLevel, SlidePyramid

log = logging.getLogger(__name__)

# Orthanc's DICOMweb plugin parses the whole instance for every frames request, and
# one such parse at a time: ~100 ms for a 4,800-frame (52 MB) base level, ~4 ms for a
# 300-frame one, whatever the number of frames asked (docs/performance.md, "Slide
# tiles"). So a request() call asks a level in at most PARSE_BUDGET_FRAMES // frames
# requests (at least one, at most one per fetch worker): small levels are split so
# decoding starts sooner and runs in parallel, large ones go in one request.
PARSE_BUDGET_FRAMES = 2000
MAX_FRAMES_PER_REQUEST = 256  # keeps the frame list of the URL short


@dataclass(frozen=True, order=True)
class TileKey:
    level: int
    col: int
    row: int


OnTile = Callable[[TileKey, "np.ndarray | None"], None]


class TileCache:
    """RGB tiles by key, least recently used dropped first once over ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self._items: OrderedDict[TileKey, np.ndarray] = OrderedDict()
        self._bytes = 0
        self.peak_bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: TileKey) -> np.ndarray | None:
        with self._lock:
            tile = self._items.get(key)
            if tile is not None:
                self._items.move_to_end(key)
            return tile

    def put(self, key: TileKey, tile: np.ndarray) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = tile
            self._bytes += tile.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes
            self.peak_bytes = max(self.peak_bytes, self._bytes)


def decode_tile(data: bytes | bytearray, level: SlideLevel) -> np.ndarray:
    """One frame's bytes as an RGB uint8 array (tile_height x tile_width x 3).

    8-bit JPEG goes through libjpeg-turbo (simplejpeg: no Python in the loop, and it
    lets go of the GIL, so the decode threads run side by side); what it does not
    take (lossless or 12-bit JPEG) and JPEG 2000 go through Pillow. YCbCr is
    converted to RGB. Anything else must be native interleaved 8-bit samples.
    """
    h, w = level.tile_height, level.tile_width
    head = bytes(data[:4])
    rgb = _turbo_jpeg(data) if head[:2] == b"\xff\xd8" else None
    if rgb is None and (
        head[:2] == b"\xff\xd8" or head[:4] in (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0c")
    ):
        formats = ("JPEG",) if head[:2] == b"\xff\xd8" else ("JPEG2000",)
        with Image.open(io.BytesIO(data), formats=formats) as img:
            rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    elif rgb is None:
        n = len(data)
        if n >= h * w * 3:
            rgb = np.frombuffer(data, np.uint8, h * w * 3).reshape(h, w, 3)
        elif n >= h * w:
            grey = np.frombuffer(data, np.uint8, h * w).reshape(h, w)
            rgb = np.repeat(grey[..., None], 3, axis=2)
        else:
            raise ValueError(f"frame of {n} bytes is neither JPEG nor {w}x{h} native pixels")
    if rgb.shape[:2] != (h, w):
        raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the level's tiles are {w}x{h}")
    return rgb


def default_decode_workers() -> int:
    """JPEG decoding lets go of the GIL: one decode thread per core, two to four."""
    return max(2, min(4, os.cpu_count() or 2))


def _turbo_jpeg(data: bytes | bytearray) -> np.ndarray | None:
    """8-bit JPEG through libjpeg-turbo; None for one it does not decode."""
    try:
        return np.asarray(simplejpeg.decode_jpeg(data, colorspace="RGB"))
    except ValueError:
        return None


class TileSource:
    """Tiles of one slide pyramid, fetched several frames per request and cached."""

    def __init__(
        self,
        archive: ImageArchive,
        pyramid: SlidePyramid,
        *,
        cache_mb: float = 256.0,
        batch: int = 16,
        fetch_workers: int = 4,
        decode_workers: int | None = None,
        retry_after_s: float = 5.0,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch!r}")
        self.archive = archive
        self.pyramid = pyramid
        self.cache = TileCache(int(cache_mb * 1024 * 1024))
        self.batch = batch
        self.fetch_workers = fetch_workers
        self._fetch = ThreadPoolExecutor(fetch_workers, thread_name_prefix="tile-fetch")
        workers = decode_workers or default_decode_workers()
        self._decode = ThreadPoolExecutor(workers, thread_name_prefix="tile-decode")
        self._lock = threading.Lock()
        self._in_flight: set[TileKey] = set()
        self._failed: dict[TileKey, float] = {}  # when it last failed (monotonic)
        self.retry_after_s = retry_after_s
        self._generation = 0
        self.requests_made = 0
        self.frames_fetched = 0

    def cached(self, key: TileKey) -> np.ndarray | None:
        return self.cache.get(key)

    def is_blank(self, key: TileKey) -> bool:
        """True for a tile that shows blank for now: no frame holds it, or it failed
        less than ``retry_after_s`` ago (a view need not wait for it)."""
        if self._location(key) is None:
            return True
        failed = self._failed.get(key)
        return failed is not None and time.monotonic() - failed < self.retry_after_s

    def has_failed(self, key: TileKey) -> bool:
        """True for a tile whose last fetch or decode failed (shown blank; a gap in a
        sparse slide is not a failure)."""
        return key in self._failed and self.cache.get(key) is None

    def _location(self, key: TileKey) -> tuple[str, int] | None:
        if not 0 <= key.level < len(self.pyramid.levels):
            return None
        lvl = self.pyramid.levels[key.level]
        number = lvl.frame_number(key.col, key.row)
        return None if number is None else (lvl.sop_for(key.col, key.row), number)

    def cancel_pending(self) -> None:
        """Requests queued but not yet sent are dropped (the view moved on)."""
        with self._lock:
            self._generation += 1

    def request(
        self, keys: Iterable[TileKey], on_tile: OnTile, *, limit_to_cache: bool = True
    ) -> int:
        """Fetch the tiles not cached or in flight; returns how many were queued.

        With ``limit_to_cache``, no more tiles of a level than ``capacity`` are queued
        (the first ones given: a view lists the nearest first); the rest are neither
        fetched nor reported."""
        wanted: dict[tuple[int, str], list[tuple[TileKey, int]]] = {}
        blank: list[TileKey] = []
        now = time.monotonic()
        with self._lock:
            generation = self._generation
            for key in keys:
                if key in self._in_flight or self.cache.get(key) is not None:
                    continue
                where = self._location(key)
                failed = self._failed.get(key)
                if where is None or (failed is not None and now - failed < self.retry_after_s):
                    blank.append(key)
                    continue
                items = wanted.setdefault((key.level, where[0]), [])
                if limit_to_cache and len(items) >= self.capacity(key.level):
                    continue  # more than the cache holds: the first (nearest) ones only
                self._in_flight.add(key)
                items.append((key, where[1]))
        for key in blank:
            on_tile(key, None)
        queued = 0
        for (level, sop_uid), items in wanted.items():
            size = self.frames_per_request(level, len(items))
            for i in range(0, len(items), size):
                chunk = items[i : i + size]
                queued += len(chunk)
                self._fetch.submit(self._fetch_batch, level, sop_uid, chunk, on_tile, generation)
        return queued

    def capacity(self, level: int) -> int:
        """How many decoded tiles of ``level`` fit in three quarters of the cache."""
        lvl = self.pyramid.levels[level] if 0 <= level < len(self.pyramid.levels) else None
        tile_bytes = lvl.tile_width * lvl.tile_height * 3 if lvl else 1
        return max(1, self.cache.max_bytes * 3 // 4 // tile_bytes)

    def fits(self, count: int, level: int) -> bool:
        """Whether ``count`` tiles of ``level`` fit in the cache with room to spare: a
        view that asks for more evicts its own tiles as they arrive, and asks again."""
        return count <= self.capacity(level)

    def frames_per_request(self, level: int, count: int) -> int:
        """How many of ``count`` wanted frames of ``level`` go in one request: at least
        ``batch``; more for a large instance, which the server parses per request."""
        frames = max(self.pyramid.levels[level].frames, 1)
        requests = max(1, min(self.fetch_workers, PARSE_BUDGET_FRAMES // frames))
        return min(max(self.batch, -(-count // requests)), MAX_FRAMES_PER_REQUEST)

    def fetch(
        self, keys: Sequence[TileKey], timeout: float = 60.0
    ) -> dict[TileKey, np.ndarray | None]:
        """Blocking: the tiles, fetched as ``request`` would (for tests and benchmarks)."""
        out: dict[TileKey, np.ndarray | None] = {}
        done = threading.Event()
        want = set(keys)
        lock = threading.Lock()

        def got(key: TileKey, tile: np.ndarray | None) -> None:
            with lock:
                out[key] = tile
                if want <= out.keys():
                    done.set()

        for key in want:
            tile = self.cache.get(key)
            if tile is not None:
                got(key, tile)
        if not want <= out.keys():
            self.request([k for k in keys if k not in out], got, limit_to_cache=False)
            done.wait(timeout)
        return {k: out.get(k) for k in keys}

    def close(self) -> None:
        self.cancel_pending()
        self._fetch.shutdown(wait=False, cancel_futures=True)
        self._decode.shutdown(wait=False, cancel_futures=True)

    def _fetch_batch(
        self,
        level: int,
        sop_uid: str,
        chunk: list[tuple[TileKey, int]],
        on_tile: OnTile,
        generation: int,
    ) -> None:
        if generation != self._generation:
            self._forget([k for k, _ in chunk])
            return
        lvl = self.pyramid.levels[level]
        numbers = [n for _, n in chunk]
        arrived = 0
        try:
            for data in self._frames(sop_uid, numbers):
                if arrived == len(chunk):
                    raise ValueError(f"asked for {len(chunk)} frames, got more")
                # each frame is decoded as soon as it is in, while the rest still arrives
                self._decode.submit(self._decode_one, chunk[arrived][0], lvl, data, on_tile)
                arrived += 1
            if arrived != len(chunk):
                raise ValueError(f"asked for {len(chunk)} frames, got {arrived}")
        except Exception as exc:  # noqa: BLE001  (a failed request is blank tiles, never a crash)
            log.warning("tiles of level %d not fetched: %s", level, exc)
            lost = [k for k, _ in chunk[arrived:]]
            self._forget(lost, failed=True)
            for key in lost:
                self._deliver(on_tile, key, None)
            return
        finally:
            with self._lock:
                self.requests_made += 1
                self.frames_fetched += arrived

    def _frames(self, sop_uid: str, numbers: list[int]) -> Iterable[bytes | bytearray]:
        """The frames asked for, in order: streamed part by part where the archive can
        (a DICOMweb one), else its ``retrieve_frames`` list."""
        archive = self.archive
        study, series = self.pyramid.study_uid, self.pyramid.series_uid
        if isinstance(archive, StreamingArchive) and archive.can_stream:
            return archive.stream_frames(study, series, sop_uid, numbers)
        return archive.retrieve_frames(study, series, sop_uid, numbers)

    def _decode_one(
        self, key: TileKey, lvl: SlideLevel, data: bytes | bytearray, on_tile: OnTile
    ) -> None:
        tile: np.ndarray | None
        try:
            tile = decode_tile(data, lvl)
            self.cache.put(key, tile)
        except Exception as exc:  # noqa: BLE001
            log.warning("tile %s not decoded: %s", key, exc)
            tile = None
        self._forget([key], failed=tile is None)
        self._deliver(on_tile, key, tile)

    def _forget(self, keys: Sequence[TileKey], *, failed: bool = False) -> None:
        with self._lock:
            self._in_flight.difference_update(keys)
            now = time.monotonic()
            for key in keys:
                if failed:
                    self._failed[key] = now
                else:
                    self._failed.pop(key, None)

    @staticmethod
    def _deliver(on_tile: OnTile, key: TileKey, tile: np.ndarray | None) -> None:
        try:
            on_tile(key, tile)
        except Exception:  # the view's callback must not kill the pool
            log.exception("tile callback failed for %s", key)
