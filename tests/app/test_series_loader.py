"""The streaming series loader against a real Orthanc (DICOMweb) and the local archive.

Series are made with random pixels (so compression is not trivial), stored with
Instance Numbers shuffled and in reverse order, and compressed with pydicom's
encoders (pyjpegls, pylibjpeg-openjpeg, pydicom's RLE) or deflated.
"""

from __future__ import annotations

import threading
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import pixel_array
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from app.archive.client import DicomClientArchive, open_dicomweb, open_local
from app.archive.multipart import MultipartError, boundary_of, iter_parts
from app.archive.series_cache import MB, SeriesCache
from app.archive.series_loader import SeriesLoader
from app.archive.volume import (
    ImageVolume,
    LoadCancelled,
    VolumeLoadError,
    slice_index_for_sop,
)
from app.errors import ArchiveError
from tests.app.test_volume import _base, make_ct_series
from tests.support.orthanc import OrthancServer
from tests.support.tcp_proxy import AFTER_RESPONSE, TcpProxy

pytestmark = pytest.mark.orthanc

SIZE = 64


def _hu(n: int, seed: int = 0) -> np.ndarray:
    """Random HU with a per-slice offset, so each slice is recognisable."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-1000, 1000, size=(n, SIZE, SIZE))
    return (noise + 50 * np.arange(n)[:, None, None]).astype(np.int16)


def _series(n: int, syntax: str = ExplicitVRLittleEndian, seed: int = 0) -> list[Dataset]:
    study = generate_uid()
    slices = make_ct_series(study, n=n, size=SIZE, volume=_hu(n, seed))
    for ds in slices:
        if syntax == DeflatedExplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = syntax
        elif syntax != ExplicitVRLittleEndian:
            ds.compress(syntax)
    return slices


def _expected(n: int, seed: int = 0) -> np.ndarray:
    """The volume the loader must produce: position order, HU (after the -1024 intercept)."""
    return _hu(n, seed).astype(np.float32)


@pytest.fixture()
def web(empty_orthanc: OrthancServer) -> DicomClientArchive:
    return open_dicomweb(empty_orthanc.dicomweb_url)


@pytest.fixture()
def local(tmp_path: Path) -> DicomClientArchive:
    return open_local(tmp_path / "archive")


def _load(
    archive: DicomClientArchive, slices: list[Dataset], max_requests: int = 4, **kwargs: Any
) -> ImageVolume:
    loader = SeriesLoader(archive, max_requests=max_requests)
    return loader.load(slices[0].StudyInstanceUID, slices[0].SeriesInstanceUID, **kwargs)


def test_shuffled_instance_numbers_load_in_position_order(web: DicomClientArchive) -> None:
    slices = _series(6)
    rng = np.random.default_rng(7)
    for ds, number in zip(slices, [3, 6, 1, 5, 2, 4], strict=True):
        ds.InstanceNumber = number  # neither position order nor its reverse
    web.store([slices[i] for i in rng.permutation(6)])
    vol = _load(web, slices)
    assert np.array_equal(vol.pixels, _expected(6))
    z = [p[2] for p in vol.positions]
    assert z == sorted(z) and vol.complete and not vol.gaps
    assert vol.sop_uids == tuple(
        d.SOPInstanceUID for d in sorted(slices, key=lambda d: d.ImagePositionPatient[2])
    )


@pytest.mark.parametrize(
    "syntax",
    [JPEGLSLossless, JPEG2000Lossless, RLELossless, DeflatedExplicitVRLittleEndian],
    ids=["jpeg-ls", "jpeg2000", "rle", "deflated"],
)
@pytest.mark.parametrize("kind", ["orthanc", "local"])
def test_compressed_series_load_pixel_identical(
    syntax: str, kind: str, request: pytest.FixtureRequest
) -> None:
    archive: DicomClientArchive = request.getfixturevalue("web" if kind == "orthanc" else "local")
    slices = _series(5, syntax, seed=3)
    archive.store(slices)
    vol = _load(archive, slices)
    assert not vol.gaps, vol.gaps
    assert np.array_equal(vol.pixels, _expected(5, seed=3))
    if kind == "orthanc" and syntax != DeflatedExplicitVRLittleEndian:
        # transfer-syntax=*: the server sent what it stores, it did not transcode
        assert vol.transfer_syntaxes == {syntax}


@pytest.mark.parametrize("kind", ["orthanc", "local"])
def test_first_slice_is_reported_before_the_series_completes(
    kind: str, request: pytest.FixtureRequest
) -> None:
    archive: DicomClientArchive = request.getfixturevalue("web" if kind == "orthanc" else "local")
    slices = _series(24)
    archive.store(slices)
    seen: list[tuple[int, bool]] = []
    holder: list[ImageVolume] = []
    wanted = sorted(slices, key=lambda d: d.ImagePositionPatient[2])[5].SOPInstanceUID

    def on_slice(z: int) -> None:
        seen.append((z, holder[0].complete))

    vol = _load(
        archive,
        slices,
        max_requests=1,
        prefer=lambda v: slice_index_for_sop(v, wanted),
        on_volume=holder.append,
        on_slice=on_slice,
    )
    assert holder[0] is vol
    assert seen[0] == (5, False)  # the finding's slice first, long before the end
    if kind == "local":  # one request per instance: its neighbours next
        assert [z for z, _ in seen[1:3]] == [6, 4]
    else:  # the rest in one stream, in the server's order
        assert archive.can_stream
    assert sorted(z for z, _ in seen) == list(range(24))
    assert np.array_equal(vol.pixels, _expected(24))


def test_cancel_stops_in_flight_work(web: DicomClientArchive) -> None:
    slices = _series(40)
    web.store(slices)
    cancel = threading.Event()
    landed: list[int] = []
    cancelled_at: list[float] = []

    def on_slice(z: int) -> None:
        landed.append(z)
        if len(landed) == 3:
            cancelled_at.append(time.perf_counter())
            cancel.set()

    with pytest.raises(LoadCancelled):
        _load(web, slices, max_requests=2, on_slice=on_slice, cancel=cancel)
    returned = time.perf_counter()
    assert returned - cancelled_at[0] < 1.0
    time.sleep(0.5)  # whatever was in flight has ended by now
    assert len(landed) <= 3 + 2  # at most the requests already in flight


def test_a_corrupt_frame_is_a_gap_with_its_reason(web: DicomClientArchive) -> None:
    slices = _series(5, RLELossless, seed=1)
    by_z = sorted(slices, key=lambda d: d.ImagePositionPatient[2])
    broken = by_z[2]
    frame = next(generate_frames(broken.PixelData, number_of_frames=1))
    broken.PixelData = encapsulate([frame[: len(frame) // 2]])  # truncated in transit/storage
    web.store(slices)
    vol = _load(web, slices)
    assert list(vol.gaps) == [2] and "decode" in vol.gaps[2]
    assert not vol.is_loaded(2) and vol.complete
    keep = [0, 1, 3, 4]
    assert np.array_equal(vol.pixels[keep], _expected(5, seed=1)[keep])
    assert len(vol.problems) == 1 and broken.SOPInstanceUID in vol.problems[0]


def test_nothing_retrievable_is_one_clear_error(web: DicomClientArchive) -> None:
    slices = _series(2, RLELossless)
    for ds in slices:
        ds.PixelData = encapsulate([b"\0" * 64])
    web.store(slices)
    with pytest.raises(VolumeLoadError, match="no displayable image"):
        _load(web, slices)


def _enhanced_ct(study: str) -> Dataset:
    ds = _base("1.2.840.10008.5.1.4.1.1.2.1", study, generate_uid(), "CT")  # Enhanced CT
    ds.SeriesDescription = "Enhanced"
    ds.FrameOfReferenceUID = generate_uid()
    ds.Rows = ds.Columns = 16
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelRepresentation = 1
    ds.NumberOfFrames = 4
    ds.InstanceNumber = 1
    shared, orientation, measures = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing = [0.5, 0.5]
    measures.SliceThickness = 3.0
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for z in (9.0, 0.0, 6.0, 3.0):  # stored out of order
        item, position, transform = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, z]
        transform.RescaleSlope, transform.RescaleIntercept = 2, -1024
        item.PlanePositionSequence = [position]
        item.PixelValueTransformationSequence = [transform]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    stored = np.array([900, 0, 600, 300])[:, None, None] + np.zeros((4, 16, 16))
    ds.PixelData = stored.astype(np.int16).tobytes()
    return ds


def test_enhanced_multiframe_orders_frames_by_position(web: DicomClientArchive) -> None:
    ds = _enhanced_ct(generate_uid())
    web.store([ds])
    vol = SeriesLoader(web).load(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert list(vol.pixels[:, 0, 0]) == [-1024, -424, 176, 776]  # 2 * stored - 1024
    assert vol.frames == (2, 4, 3, 1) and vol.spacing == pytest.approx((3.0, 0.5, 0.5))


def test_cache_is_bounded_in_mb(local: DicomClientArchive) -> None:
    one = _series(4, seed=1)
    two = _series(4, seed=2)
    local.store(one + two)
    size = 4 * SIZE * SIZE * 4  # float32 pixel bytes of one series
    cache = SeriesCache(max_mb=1.5 * size / MB)
    loader = SeriesLoader(local, cache)
    first = loader.load(one[0].StudyInstanceUID, one[0].SeriesInstanceUID)
    assert cache.nbytes == size
    assert loader.load(one[0].StudyInstanceUID, one[0].SeriesInstanceUID) is first  # a hit
    second = loader.load(two[0].StudyInstanceUID, two[0].SeriesInstanceUID)
    assert cache.nbytes == size <= cache.max_bytes and len(cache) == 1
    assert cache.get(first.study_uid, first.series_uid) is None  # the older one went
    assert cache.get(second.study_uid, second.series_uid) is second
    assert not SeriesCache(max_mb=0.5 * size / MB).put(second)  # bigger than the bound
    gap = _load(local, one)
    gap.gaps[0] = "test gap"
    assert not cache.put(gap)  # a series with a gap may load whole next time


# -- streaming: the multipart reader, native pixels from the bytes, integer volumes --------
def _multipart(bodies: list[bytes], boundary: bytes, lengths: list[int | None]) -> bytes:
    out = b"preamble to ignore\r\n"
    for body, length in zip(bodies, lengths, strict=True):
        out += b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n"
        if length is not None:
            out += b"Content-Length: %d\r\n" % length
        out += b"\r\n" + body + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


@pytest.mark.parametrize("with_readinto", [False, True])
def test_multipart_reader_yields_each_part_whatever_the_chunking(with_readinto: bool) -> None:
    rng = np.random.default_rng(5)
    boundary = b"b0und4ry-x"
    bodies = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (70_000, 0, 5, 300_001)]
    bodies[2] = b"--b0und4ry"  # the boundary without its CRLF is just data
    # right, missing and wrong Content-Length: the delimiter is what counts
    data = _multipart(bodies, boundary, [70_000, None, 5, 7])
    stream = BytesIO(data)

    def read(n: int) -> bytes:
        return stream.read(int(rng.integers(1, min(n, 9000) + 1)))

    def readinto(view: memoryview) -> int:
        return stream.readinto(view[: int(rng.integers(1, 9000))])

    parts = list(iter_parts(read, boundary, readinto if with_readinto else None))
    assert [bytes(p) for p in parts] == bodies
    with pytest.raises(MultipartError, match="ends inside"):
        list(iter_parts(BytesIO(data[:100_000]).read, boundary))
    assert boundary_of('multipart/related; type="application/dicom"; boundary="abc"') == b"abc"
    with pytest.raises(MultipartError, match="not multipart"):
        boundary_of("application/dicom")


def _stored_words(n: int, seed: int) -> np.ndarray:
    """Random 16-bit words, high bits set too: only Bits Stored of them are the value."""
    return np.random.default_rng(seed).integers(0, 1 << 16, (n, SIZE, SIZE)).astype(np.uint16)


@pytest.mark.parametrize(
    ("bits", "signed", "photometric", "syntax", "slope", "dtype"),
    [
        (12, 1, "MONOCHROME2", ExplicitVRLittleEndian, 1, np.int16),
        (12, 0, "MONOCHROME2", ExplicitVRLittleEndian, 1, np.int16),
        (12, 0, "MONOCHROME1", ExplicitVRLittleEndian, 1, np.int16),
        (12, 0, "MONOCHROME2", ImplicitVRLittleEndian, 1, np.int16),
        (12, 0, "MONOCHROME2", ExplicitVRLittleEndian, 2, np.int16),
        (16, 1, "MONOCHROME2", ExplicitVRLittleEndian, 1, np.float32),  # range over int16
        (12, 0, "MONOCHROME2", ExplicitVRLittleEndian, 0.5, np.float32),  # fractional
    ],
)
def test_native_frames_match_pydicom_in_the_smallest_exact_type(
    web: DicomClientArchive,
    bits: int,
    signed: int,
    photometric: str,
    syntax: str,
    slope: float,
    dtype: type,
) -> None:
    slices = _series(3)
    words = _stored_words(3, seed=bits + signed)
    for ds, w in zip(sorted(slices, key=lambda d: d.ImagePositionPatient[2]), words, strict=True):
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, signed
        ds.PhotometricInterpretation = photometric
        ds.RescaleSlope = slope
        ds.PixelData = w.tobytes()
        ds.file_meta.TransferSyntaxUID = syntax
    web.store(slices)
    vol = _load(web, slices)
    assert not vol.gaps and vol.pixels.dtype == dtype
    by_z = sorted(slices, key=lambda d: d.ImagePositionPatient[2])
    expected = []
    for ds in by_z:  # pydicom's reading of the same bytes, rescaled (and inverted) in float64
        value = pixel_array(ds).astype(np.float64) * slope - 1024
        if photometric == "MONOCHROME1":
            low, high = (
                (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            )
            value = slope * (low + high) + 2 * -1024 - value
        expected.append(value)
    assert np.array_equal(vol.pixels, np.array(expected))
    assert vol.transfer_syntaxes == {syntax}


def test_a_broken_stream_falls_back_to_one_request_per_instance(
    empty_orthanc: OrthancServer,
) -> None:
    slices = _series(8)
    with TcpProxy(empty_orthanc.http_port) as proxy:
        web = open_dicomweb(f"{proxy.url}/dicom-web")
        web.store(slices)
        series_uid = slices[0].SeriesInstanceUID
        # 1: metadata, 2: the preferred instance, 3: the whole series -> reset
        cut = proxy.pause(AFTER_RESPONSE, method="GET", path_contains=series_uid, nth=3)
        threading.Thread(target=lambda: cut.wait(30).response_body and cut.drop()).start()
        vol = _load(web, slices)
        assert np.array_equal(vol.pixels, _expected(8)) and not vol.gaps
        targets = [e.target for e in proxy.exchanges if series_uid in e.target]
    assert targets[2].endswith(series_uid) and "drop" in cut.exchange.fault  # type: ignore[union-attr]
    assert sum("/instances/" in t for t in targets[3:]) == 7  # all but the preferred one


def test_the_local_archive_cannot_stream(local: DicomClientArchive) -> None:
    assert not local.can_stream
    with pytest.raises(ArchiveError, match="cannot stream"):
        next(local.stream_instance_files("1.2", "1.3"))
