"""Compressed frames decoded in the decode processes equal pydicom's in-process decode.

Every encapsulated image in pydicom's test data (JPEG baseline/extended/lossless,
JPEG-LS, JPEG 2000, RLE; grey, colour, multi-frame) goes through the loader twice: in
its own thread, and through ``DecodePool``'s spawned workers. Pixels, gaps and error
messages must agree, and the workers (other processes) must have done the decoding.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest

from app.archive.decode_pool import DecodePool
from app.archive.series_loader import volume_from_datasets
from app.archive.volume import ImageVolume, VolumeLoadError
from tests.app.test_pydicom_files import PIXEL_KEYWORDS, _files


@pytest.fixture(scope="module")
def pool() -> Iterator[DecodePool]:
    decode_pool = DecodePool(workers=2)
    assert decode_pool.wait_ready(), "the decode processes did not start"
    yield decode_pool
    decode_pool.close()


def _load(ds: pydicom.Dataset, decode_pool: DecodePool | None) -> ImageVolume | str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return volume_from_datasets([ds], decode_pool=decode_pool)
    except VolumeLoadError as exc:
        return str(exc)


def test_every_encapsulated_pydicom_image_decodes_the_same_in_the_workers(
    pool: DecodePool,
) -> None:
    compared, frames = [], 0
    for path in _files():
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:  # noqa: BLE001, S112  (not DICOM: test_pydicom_files covers it)
            continue
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if syntax is None or not syntax.is_encapsulated or not any(k in ds for k in PIXEL_KEYWORDS):
            continue
        name = os.path.basename(path)
        here, there = _load(ds, None), _load(ds, pool)
        if isinstance(here, str) or isinstance(there, str):
            assert here == there, f"{name}: in-process {here!r}, in the workers {there!r}"
            continue
        assert sorted(here.gaps) == sorted(there.gaps), name
        assert here.pixels.dtype == there.pixels.dtype, name
        assert np.array_equal(here.pixels, there.pixels, equal_nan=here.pixels.dtype.kind == "f"), name
        compared.append(name)
        frames += here.shape[0] - len(here.gaps)
    assert len(compared) >= 30, compared  # pydicom ships ~40 encapsulated images
    assert pool.decoded >= frames  # the workers decoded them, not pydicom in this thread
    assert pool.worker_pids and os.getpid() not in pool.worker_pids


def test_a_pool_that_is_not_ready_leaves_the_decoding_to_the_caller() -> None:
    idle = DecodePool(workers=1)  # never started
    path = next(f for f in _files() if os.path.basename(f) == "MR_small_jpeg_ls_lossless.dcm")
    ds = pydicom.dcmread(path)
    assert idle.decode(ds, 0) is None
    volume = volume_from_datasets([ds], decode_pool=idle)
    assert not volume.gaps and idle.decoded == 0
