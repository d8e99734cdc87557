"""A slide made by another converter opens: a tiled JPEG TIFF (libtiff's ``tiffcp``),
converted by Orthanc's own ``OrthancWSIDicomizer`` and uploaded by it to a real
Orthanc, read into our pyramid and shown by the SlideViewer (issue 6). Twice: the
TIFF's JPEG tiles copied as they are, and re-encoded as JPEG 2000 (lossless, which the
Dicomizer labels YBR_FULL_422 although the code stream holds RGB).

What the Dicomizer (orthanc-wsi 1.1) writes differently from our demo slide: no
ImageType, no Dimension Organization Type, per-frame Plane Position (Slide) items,
lower levels it resamples itself, and a level larger than ``--max-size`` MB split
over several instances (a concatenation).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.archive.protocol import ImageArchive
from app.archive.slide_pyramid import SlidePyramid, read_pyramid
from app.archive.tiles import TileKey, TileSource
from app.demo.slide_texture import make_content, render_tile
from tests.pathology.slide_data import show_filled
from tests.support.orthanc import OrthancServer
from viewers.slide_viewer import SlideViewer

pytestmark = [
    pytest.mark.orthanc,
    pytest.mark.skipif(
        shutil.which("OrthancWSIDicomizer") is None or shutil.which("tiffcp") is None,
        reason="needs OrthancWSIDicomizer and tiffcp (apt: orthanc-wsi libtiff-tools)",
    ),
]

WIDTH, HEIGHT, TILE, LEVELS = 3000, 2200, 256, 3
ThirdParty = tuple[ImageArchive, SlidePyramid, np.ndarray]


def source_image() -> np.ndarray:
    """A tissue-like RGB image (the demo slide's texture), HEIGHT x WIDTH x 3."""
    content = make_content(WIDTH, HEIGHT, 5)
    out = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for y in range(0, HEIGHT, TILE):
        for x in range(0, WIDTH, TILE):
            tile = render_tile(content, 1, x, y, TILE)
            h, w = min(TILE, HEIGHT - y), min(TILE, WIDTH - x)
            out[y : y + h, x : x + w] = tile[:h, :w]
    return out


def dicomize(image: np.ndarray, folder: Path, orthanc_url: str, compression: str) -> None:
    """The image as a tiled JPEG TIFF, then through OrthancWSIDicomizer into Orthanc:
    its JPEG tiles copied as they are, or re-encoded as ``compression``."""
    strip, tiled = folder / "strip.tif", folder / "tiled.tif"
    Image.fromarray(image).save(strip)
    subprocess.run(
        ["tiffcp", "-t", "-w", str(TILE), "-l", str(TILE), "-c", "jpeg:90", str(strip), str(tiled)],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [
            "OrthancWSIDicomizer",
            "--orthanc",
            orthanc_url + "/",
            "--pyramid",
            "1",
            "--levels",
            str(LEVELS),
            "--max-size",
            "1",  # MB per instance: the base level is split over several
            "--threads",
            "2",
            *(["--compression", compression, "--reencode", "1"] if compression != "jpeg" else []),
            str(tiled),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.fixture(params=["jpeg", "jpeg2000"])
def third_party(
    empty_orthanc: OrthancServer, tmp_path: Path, request: pytest.FixtureRequest
) -> ThirdParty:
    image = source_image()
    dicomize(image, tmp_path, empty_orthanc.base_url, request.param)
    series = requests.get(f"{empty_orthanc.base_url}/series?expand", timeout=30).json()
    assert len(series) == 1
    series_uid = series[0]["MainDicomTags"]["SeriesInstanceUID"]
    study = requests.get(
        f"{empty_orthanc.base_url}/studies/{series[0]['ParentStudy']}", timeout=30
    ).json()
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    pyramid = read_pyramid(archive, study["MainDicomTags"]["StudyInstanceUID"], series_uid)
    return archive, pyramid, image


def _region(image: np.ndarray, level: int, col: int, row: int) -> np.ndarray:
    """What tile (col, row) of ``level`` should show: the source, downsampled 2**level."""
    d = 2**level
    x0, y0 = col * TILE * d, row * TILE * d
    part = image[y0 : y0 + TILE * d, x0 : x0 + TILE * d].astype(np.float64)
    h, w = part.shape[0] // d, part.shape[1] // d
    return part[: h * d, : w * d].reshape(h, d, w, d, 3).mean(axis=(1, 3))


def test_dicomizer_pyramid_and_tiles_match_the_source(third_party: ThirdParty) -> None:
    archive, pyramid, image = third_party
    assert [(lvl.width, lvl.height) for lvl in pyramid.levels] == [
        (-(-WIDTH // 2**k), -(-HEIGHT // 2**k)) for k in range(LEVELS)
    ]
    base = pyramid.base
    assert base.tile_sops is not None and len(set(base.tile_sops.values())) > 1  # split level
    assert base.spacing_mm[0] > 0 and base.spacing_mm[1] > 0
    source = TileSource(archive, pyramid, batch=8)
    try:
        keys = [TileKey(0, c, r) for r in range(base.tiles_down) for c in range(base.tiles_across)]
        keys += [TileKey(2, 0, 0), TileKey(1, 2, 1)]
        tiles = source.fetch(keys, timeout=60)
        assert all(tiles[k] is not None for k in keys), [k for k in keys if tiles[k] is None]
        # every base tile, from whichever instance holds it, shows its part of the image
        for key in keys:
            want = _region(image, key.level, key.col, key.row)
            got = tiles[key]
            assert got is not None and got.shape == (TILE, TILE, 3)
            h, w = want.shape[:2]
            diff = np.abs(got[:h, :w].astype(np.float64) - want).mean()
            assert diff < (6.0 if key.level == 0 else 12.0), (key, diff)
    finally:
        source.close()


def test_viewer_shows_the_third_party_slide(
    qtbot: QtBot, third_party: ThirdParty, tmp_path: Path
) -> None:
    archive, pyramid, image = third_party
    source = TileSource(archive, pyramid, cache_mb=64)
    viewer = SlideViewer(source)
    show_filled(qtbot, viewer, 1000, 700)
    overview = viewer.grab().toImage()
    overview.save(str(tmp_path / "third_party_overview.png"))
    # the Dicomizer pads edge tiles with white: nothing is drawn past the slide's edge
    ((bx, by),) = viewer.viewport.to_screen(np.array([[WIDTH / 2, HEIGHT]]))
    c = overview.pixelColor(int(bx), int(by) + 15)
    assert (c.red(), c.green(), c.blue()) == (40, 40, 44)
    # full resolution at the slide's middle: the screen shows the source's pixels there
    viewer.viewport.scale = 1.0
    viewer.viewport.cx, viewer.viewport.cy = WIDTH / 2, HEIGHT / 2
    viewer.update()
    assert viewer.viewport.level == 0
    qtbot.waitUntil(lambda: not viewer.pending_tiles(), timeout=30_000)
    qtbot.wait(50)
    shot = viewer.grab().toImage()
    shot.save(str(tmp_path / "third_party_base.png"))
    x0, y0 = int(WIDTH / 2 - 500), int(HEIGHT / 2 - 350)
    diffs = []
    for sx, sy in ((300, 200), (500, 350), (700, 500), (420, 610)):
        c = shot.pixelColor(sx, sy)
        want = image[y0 + sy - 3 : y0 + sy + 4, x0 + sx - 3 : x0 + sx + 4].reshape(-1, 3).mean(0)
        diffs.append(np.abs(np.array([c.red(), c.green(), c.blue()]) - want).max())
    assert np.mean(diffs) < 25, diffs
    viewer.close()
    source.close()
