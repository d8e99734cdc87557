"""Benchmark: streaming a CT series from a real Orthanc into the volume, against raw HTTP.

Ratios, measured side by side in one run (these machines are shared and noisy), for
the series stored uncompressed, as JPEG-LS lossless and as JPEG 2000 lossless:
- time to first image / raw: curl making the loader's first requests, the series
  metadata then the preferred (middle) slice's instance;
- time to full series / raw: the same, then the loader's last request, the whole series
  as one multipart answer (curl writes it to /dev/null) (goal <= 1.25 uncompressed;
  compressed <= 1.25 x max(raw, pure decode time of the same bytes on the same threads));
- naive path (dicomweb-client retrieve_series, then pixel_array per instance) / ours
  (goal >= 3);
- peak RSS while holding the series, in a subprocess: (peak - idle) / pixel bytes
  (goal <= 1.3). The series is stored as most CT is (12 bits, intercept -1024), so the
  volume is int16 and its bytes are the stored pixel bytes.

Size: BENCH_SLICES (default 16) slices of BENCH_SIZE (default 256) pixels square. The
figures in docs/performance.md come from:
    BENCH_SLICES=300 BENCH_SIZE=512 .venv/bin/python -m pytest \
        tests/perf/test_series_load_bench.py -q -s -p no:xvfb
The test asserts only that the volumes are right, never a time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, generate_uid

from app.archive.client import open_dicomweb
from app.archive.pixel_decode import write_frame
from app.archive.series_loader import SeriesLoader
from tests.app.test_volume import make_ct_series
from tests.support import orthanc

pytestmark = pytest.mark.perf

N_SLICES = int(os.environ.get("BENCH_SLICES", "16"))
SIZE = int(os.environ.get("BENCH_SIZE", "256"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "1"))
WORKERS = 4  # concurrent requests, ours and curl's
DECODERS = max(2, os.cpu_count() or 2)
ROOT = Path(__file__).resolve().parents[2]
ACCEPT = 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*'


def _phantom(n: int, size: int) -> np.ndarray:
    """A body-like CT: air, a water ellipse with noise, a bone ring; HU as int16."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    r = (x / 0.42) ** 2 + (y / 0.32) ** 2
    base = np.where(r < 1.0, 40.0, -1000.0) + np.where((r > 0.8) & (r < 1.0), 800.0, 0.0)
    out = np.empty((n, size, size), dtype=np.int16)
    for k in range(n):
        out[k] = base + rng.normal(0, 12, (size, size)) * (r < 1.0) + 5 * np.sin(k / 9)
    return out


def _make(syntax: str, hu: np.ndarray) -> list[pydicom.Dataset]:
    slices = make_ct_series(generate_uid(), n=len(hu), size=hu.shape[1], volume=hu)
    for ds in slices:
        # 12 bits stored, unsigned, intercept -1024: how most CT scanners store HU
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
        if syntax != ExplicitVRLittleEndian:
            ds.compress(syntax)
    return slices


def _curl(
    server: orthanc.OrthancServer, study: str, series: str, first_uid: str, tmp: Path
) -> tuple[float, float]:
    """The loader's requests, by curl: the series metadata, the preferred slice's instance,
    then the whole series in one multipart answer (to /dev/null: nothing is parsed).
    Returns (metadata + instance, all three), seconds."""
    root = f"{server.dicomweb_url}/studies/{study}/series/{series}"
    t0 = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "-sf",
            "-o",
            str(tmp / "meta.json"),
            "-H",
            "Accept: application/dicom+json",
            f"{root}/metadata",
        ],
        check=True,
    )
    subprocess.run(
        [
            "curl",
            "-sf",
            "-o",
            str(tmp / "first.bin"),
            "-H",
            ACCEPT,
            f"{root}/instances/{first_uid}",
        ],
        check=True,
    )
    first = time.perf_counter() - t0
    subprocess.run(["curl", "-sf", "-o", "/dev/null", "-H", ACCEPT, root], check=True)
    return first, time.perf_counter() - t0


def _decode_only(slices: list[pydicom.Dataset]) -> float:
    """Pure decode (and rescale) of the same bytes on the loader's decode threads."""
    parsed = [pydicom.dcmread(_as_file(ds)) for ds in slices]
    target = np.zeros((len(parsed), SIZE, SIZE), dtype=np.int16)  # as the loader's volume
    t0 = time.perf_counter()
    with ThreadPoolExecutor(DECODERS) as pool:
        list(
            pool.map(
                lambda i: write_frame(parsed[i], 0, target[i], 1.0, -1024.0), range(len(parsed))
            )
        )
    return time.perf_counter() - t0


def _as_file(ds: pydicom.Dataset) -> object:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return buffer


def _ours(url: str, study: str, series: str) -> tuple[float, float, np.ndarray]:
    loader = SeriesLoader(open_dicomweb(url), max_requests=WORKERS, decode_threads=DECODERS)
    first: list[float] = []
    lock = threading.Lock()

    def on_slice(_z: int) -> None:
        with lock:
            if not first:
                first.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    volume = loader.load(study, series, on_slice=on_slice)
    return first[0], time.perf_counter() - t0, volume.pixels


def _naive(url: str, study: str, series: str) -> float:
    client = DICOMwebClient(url)
    t0 = time.perf_counter()
    datasets = client.retrieve_series(study, series, media_types=(("application/dicom", "*"),))
    for ds in datasets:
        _ = ds.pixel_array
    return time.perf_counter() - t0


_MEMORY_PROBE = """
import json, sys
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
from app.archive.client import open_dicomweb
from app.archive.series_loader import SeriesLoader
import numpy, pydicom.pixels, pylibjpeg
archive = open_dicomweb(sys.argv[1])
archive.search_instances(sys.argv[2], sys.argv[3], limit=1)  # warm the session
idle = rss("VmRSS:")
volume = SeriesLoader(archive, max_requests=int(sys.argv[4])).load(sys.argv[2], sys.argv[3])
print(json.dumps({"idle": idle, "peak": rss("VmHWM:"), "held": rss("VmRSS:"), "pixels": volume.pixels.nbytes}))
"""


def _memory(url: str, study: str, series: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, url, study, series, str(WORKERS)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    m["peak_over_pixels"] = (m["peak"] - m["idle"]) / m["pixels"]
    return m


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is the baseline; apt install curl")
def test_series_load_vs_raw_http(tmp_path: Path) -> None:
    server = orthanc.start_orthanc(tmp_path / "orthanc")
    try:
        archive = open_dicomweb(server.dicomweb_url)
        hu = _phantom(N_SLICES, SIZE)
        expected = hu  # slice k lies at position k; int16: 12 bits stored, intercept -1024
        results: dict[str, dict[str, float]] = {}
        for name, syntax in (
            ("uncompressed", ExplicitVRLittleEndian),
            ("jpeg-ls", JPEGLSLossless),
            ("jpeg2000", JPEG2000Lossless),
        ):
            slices = _make(syntax, hu)
            for i in range(0, len(slices), 25):
                archive.store(slices[i : i + 25])
            study, series = slices[0].StudyInstanceUID, slices[0].SeriesInstanceUID
            # the loader's first slice: the middle one along the normal (slice k at k)
            by_position = sorted(slices, key=lambda d: float(d.ImagePositionPatient[2]))
            first_uid = by_position[len(slices) // 2].SOPInstanceUID
            stored = sum(len(ds.PixelData) for ds in slices)
            raw_first, raw_full, ours_first, ours_full, naive = [], [], [], [], []
            for _ in range(REPEATS):
                a, b = _curl(server, study, series, first_uid, tmp_path)
                raw_first.append(a)
                raw_full.append(b)
                first, full, pixels = _ours(server.dicomweb_url, study, series)
                assert pixels.dtype == np.int16 and np.array_equal(pixels, expected), name
                del pixels
                ours_first.append(first)
                ours_full.append(full)
                naive.append(_naive(server.dicomweb_url, study, series))
            decode = _decode_only(slices) if syntax != ExplicitVRLittleEndian else 0.0
            r = {
                "stored_mb": stored / 1e6,
                "raw_first_s": statistics.median(raw_first),
                "raw_full_s": statistics.median(raw_full),
                "decode_only_s": decode,
                "first_image_s": statistics.median(ours_first),
                "full_series_s": statistics.median(ours_full),
                "naive_s": statistics.median(naive),
            }
            r["first_over_raw"] = r["first_image_s"] / r["raw_first_s"]
            r["full_over_raw"] = r["full_series_s"] / r["raw_full_s"]
            r["full_over_max_raw_decode"] = r["full_series_s"] / max(r["raw_full_s"], decode)
            r["naive_over_ours"] = r["naive_s"] / r["full_series_s"]
            if name == "uncompressed":
                r.update(_memory(server.dicomweb_url, study, series))
            results[name] = r
            print(
                f"\nseries load benchmark ({name}, {N_SLICES}x{SIZE}x{SIZE}):",
                json.dumps(r, indent=2),
            )
        (tmp_path / "series_load_bench.json").write_text(json.dumps(results, indent=2))
    finally:
        server.stop()
