"""Every image in pydicom's test data goes through the loader's plan and decoder.

``pydicom.data.get_testdata_files()`` lists the files shipped with pydicom plus the
pydicom-data files already downloaded to ~/.pydicom/data (this machine has no
internet, so the rest cannot be fetched: they are listed as skipped, by name).
A file holds a displayable image when it has Pixel Data (or Float/Double Float
Pixel Data). Each must open with no gap, except the files below, which are broken
on purpose or beyond the installed decoders: they must give a clear message.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pydicom
from pydicom.data import get_testdata_files
from pydicom.data.download import get_url_map

from app.archive.series_loader import volume_from_datasets
from app.archive.volume import VolumeLoadError

# file -> what the message must say (and why the file cannot open)
EXPECTED_MESSAGES = {
    # truncated on purpose: 8130 of 8192 pixel bytes
    "MR_truncated.dcm": "less than expected",
    # Rows is "1A" on purpose
    "badVR.dcm": "unreadable image header",
    # stubs: 2 bytes of Pixel Data and no Rows/Columns
    "meta_missing_tsyntax.dcm": "not an image",
    "nested_priv_SQ.dcm": "not an image",
    # 12-bit JPEG extended with a misplaced marker: libjpeg refuses it, Pillow has no
    # 12-bit JPEG (pydicom's own pixel_array fails the same way; GDCM would read it)
    "JPEG-lossy.dcm": "misplaced marker",
    # a Sequence Delimiter inside the J2K fragment: the codestream header is unreadable
    # to openjpeg (pydicom's own pixel_array fails the same way)
    "JPEG2000-embedded-sequence-delimiter.dcm": "failed to read the header",
}
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _files() -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "download failures": no internet here
        return sorted(f for f in get_testdata_files() if os.path.isfile(f))


def test_every_pydicom_image_opens_or_says_why() -> None:
    files = _files()
    present = {os.path.basename(f) for f in files}
    not_downloaded = sorted(set(get_url_map()) - present)
    opened, messages, not_images, failures = [], {}, [], []
    for path in files:
        name = os.path.basename(path)
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception as exc:  # noqa: BLE001
            not_images.append(f"{name} (not readable as DICOM: {type(exc).__name__})")
            continue
        if not any(k in ds for k in PIXEL_KEYWORDS):
            not_images.append(name)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                volume = volume_from_datasets([ds])
        except VolumeLoadError as exc:
            messages[name] = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001  (a crash is a failure, whatever the file)
            failures.append(f"{name}: crashed with {type(exc).__name__}: {exc}")
            continue
        if volume.gaps:
            messages[name] = "; ".join(volume.gaps.values())
        else:
            opened.append(name)
        assert volume.shape[0] >= 1 and volume.pixels.size
    for name, message in messages.items():
        expected = EXPECTED_MESSAGES.get(name)
        if expected is None:
            failures.append(f"{name} should open but: {message}")
        elif expected not in message:
            failures.append(f"{name}: message {message!r} does not say {expected!r}")
    for name in EXPECTED_MESSAGES:
        if name in present and name not in messages:
            failures.append(f"{name} is listed as unreadable but opened: update the list")
    print(
        f"\npydicom test files: {len(opened)} images opened, {len(messages)} clear messages, "
        f"{len(not_images)} without an image, {len(not_downloaded)} pydicom-data files "
        f"not on disk (no internet; skipped): {', '.join(not_downloaded)}"
    )
    assert not failures, "\n".join(failures)
    assert len(opened) >= 89  # what is on disk here; fewer means files went missing


def test_one_image_in_every_encoding_gives_the_same_pixels() -> None:
    """pydicom ships MR_small in several transfer syntaxes: all must load identically."""
    paths = {os.path.basename(f): f for f in _files()}
    reference = volume_from_datasets([pydicom.dcmread(paths["MR_small.dcm"])]).pixels
    for name in (
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ):
        pixels = volume_from_datasets([pydicom.dcmread(paths[name])]).pixels
        assert np.array_equal(pixels, reference), name
