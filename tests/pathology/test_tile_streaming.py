"""Slide frames streamed from a real Orthanc part by part, each tile decoded as soon as
it is in; JPEG tiles decoded by libjpeg-turbo (simplejpeg) with Pillow's pixels."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from PIL import Image

from app.archive.client import DicomClientArchive, open_dicomweb
from app.archive.slide_pyramid import SlideLevel, SlidePyramid, read_pyramid
from app.archive.tiles import TileKey, TileSource, _turbo_jpeg, decode_tile
from app.errors import ArchiveError
from tests.pathology.slide_data import small_slide
from tests.support.orthanc import OrthancServer

TILE_256 = SlideLevel("1.2.3", 256, 256, 256, 256, 1, (0.00025, 0.00025))  # what decode_tile reads


@pytest.fixture()
def slide_on_server(empty_orthanc: OrthancServer) -> tuple[DicomClientArchive, SlidePyramid]:
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    slide = small_slide()
    archive.store(slide.levels)
    return archive, read_pyramid(archive, slide.study_uid, slide.series_uid)


class PacedArchive:
    """The real archive, whose frames answers stop after ``first`` parts until ``go`` is
    set: stands in for a slow network, which loopback cannot be (a test double for the
    pacing only; every byte comes from Orthanc)."""

    def __init__(self, inner: DicomClientArchive, first: int = 1) -> None:
        self.inner = inner
        self.first = first
        self.go = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def stream_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> Iterator[bytes | bytearray]:
        for i, part in enumerate(self.inner.stream_frames(study_uid, series_uid, sop_uid, frames)):
            if i == self.first:
                assert self.go.wait(30), "the test never let the rest through"
            yield part


class ShortArchive(PacedArchive):
    """The real archive, whose frames answers lose their last part."""

    def stream_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> Iterator[bytes | bytearray]:
        parts = list(self.inner.stream_frames(study_uid, series_uid, sop_uid, frames))
        yield from parts[:-1]


@pytest.mark.orthanc
def test_streamed_frames_are_the_retrieved_frames_in_the_order_asked(
    slide_on_server: tuple[DicomClientArchive, SlidePyramid],
) -> None:
    archive, pyramid = slide_on_server
    base = pyramid.base
    numbers = [5, 1, 3, base.frames]
    args = (pyramid.study_uid, pyramid.series_uid, base.sop_uid, numbers)
    streamed = [bytes(p) for p in archive.stream_frames(*args)]
    assert streamed == archive.retrieve_frames(*args)
    assert len(set(streamed)) == len(numbers)  # four different tiles, not one repeated
    with pytest.raises(ArchiveError):
        list(archive.stream_frames(pyramid.study_uid, pyramid.series_uid, "1.2.3.4", [1]))


@pytest.mark.orthanc
def test_a_tile_is_decoded_while_the_rest_of_its_answer_is_on_the_way(
    slide_on_server: tuple[DicomClientArchive, SlidePyramid],
) -> None:
    archive, pyramid = slide_on_server
    paced = PacedArchive(archive, first=1)
    source = TileSource(paced, pyramid, batch=8, fetch_workers=1)  # type: ignore[arg-type]
    keys = [TileKey(0, c, 0) for c in range(4)]
    got: dict[TileKey, np.ndarray | None] = {}
    first_in = threading.Event()
    all_in = threading.Event()

    def on_tile(key: TileKey, tile: np.ndarray | None) -> None:
        got[key] = tile
        first_in.set()
        if len(got) == len(keys):
            all_in.set()

    try:
        assert source.request(keys, on_tile) == 4
        assert first_in.wait(30), "no tile came while the answer was held back"
        assert list(got) == [keys[0]] and got[keys[0]] is not None
        paced.go.set()
        assert all_in.wait(30)
        assert all(t is not None for t in got.values())
        assert source.requests_made == 1 and source.frames_fetched == 4
    finally:
        paced.go.set()
        source.close()


@pytest.mark.orthanc
def test_an_answer_short_of_frames_blanks_only_the_missing_tiles(
    slide_on_server: tuple[DicomClientArchive, SlidePyramid],
) -> None:
    archive, pyramid = slide_on_server
    source = TileSource(ShortArchive(archive), pyramid, batch=8, fetch_workers=1)  # type: ignore[arg-type]
    keys = [TileKey(0, c, 0) for c in range(3)]
    try:
        tiles = source.fetch(keys, timeout=30)
        assert tiles[keys[0]] is not None and tiles[keys[1]] is not None
        assert tiles[keys[2]] is None
        assert source.has_failed(keys[2]) and not source.has_failed(keys[0])
    finally:
        source.close()


def _jpeg(pixels: np.ndarray, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", **options)
    return buf.getvalue()


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def test_turbo_decoding_gives_pillows_pixels() -> None:
    """The demo slide's own JPEG frames (4:2:2, quality 85), a grey and a progressive
    JPEG: libjpeg-turbo's pixels equal Pillow's, bit for bit."""
    from pydicom.encaps import generate_frames

    ds = small_slide().levels[0]
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    for data in frames[:6]:
        assert np.array_equal(decode_tile(data, TILE_256), _pillow(data))
    rng = np.random.default_rng(3)
    grey = _jpeg(rng.integers(0, 255, (256, 256), dtype=np.uint8))
    progressive = _jpeg(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), progressive=True)
    for data in (grey, progressive):
        assert _turbo_jpeg(data) is not None
        assert np.array_equal(decode_tile(data, TILE_256), _pillow(data))


def test_a_jpeg_turbo_refuses_goes_to_pillow() -> None:
    """What libjpeg-turbo's header reader refuses is handed to Pillow (here it fails there
    too: the bytes are no image), never silently blank."""
    junk = b"\xff\xd8\xff\xe0 not really a JPEG"
    assert _turbo_jpeg(junk) is None
    with pytest.raises(OSError):  # Pillow's UnidentifiedImageError
        decode_tile(junk, TILE_256)
