"""Decode one frame of a DICOM instance straight into its slice of the volume (Qt-free).

pydicom's decoders (with pylibjpeg, its openjpeg/libjpeg/RLE plugins and pyjpegls)
read every common transfer syntax: implicit/explicit VR, big endian, deflated,
JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE. Greyscale frames are
rescaled (Rescale Slope/Intercept, once) into the float32 slice; colour frames
(RGB, YBR_* converted to RGB, PALETTE COLOR through its lookup table) land in a
uint8 RGB slice. Native little-endian 16-bit frames skip the decoder: they are
read as a view of the received bytes and rescaled in one pass.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from app.archive.series_plan import invert_constant
from app.errors import CompanionError

_NATIVE_LITTLE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


class FrameDecodeError(CompanionError):
    """One frame could not be decoded; its slice becomes a marked gap with this reason."""


def write_frame(
    ds: Dataset, frame_index: int, target: np.ndarray, slope: float, intercept: float
) -> None:
    """Decode frame ``frame_index`` (0-based) of ``ds`` into ``target`` (one volume slice).

    Raises ``FrameDecodeError`` with the reason when the frame cannot be decoded.
    """
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise FrameDecodeError("the instance has no pixel data")
    try:
        frame = _native_view(ds, frame_index)
        if frame is None:
            frame = pixel_array(ds, index=frame_index)
    except Exception as exc:
        raise FrameDecodeError(f"cannot decode frame {frame_index + 1}: {_short(exc)}") from exc
    if frame.shape[:2] != target.shape[:2]:
        raise FrameDecodeError(
            f"frame {frame_index + 1} is {frame.shape[1]}x{frame.shape[0]}, "
            f"the series is {target.shape[1]}x{target.shape[0]}"
        )
    if target.ndim == 3:
        _write_color(ds, frame, target)
    else:
        _write_grey(ds, frame, target, slope, intercept)


def _native_view(ds: Dataset, frame_index: int) -> np.ndarray | None:
    """Frame ``frame_index`` as a view of Pixel Data, when no decoding is needed."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax not in _NATIVE_LITTLE or "PixelData" not in ds:
        return None
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if (
        bits != 16
        or int(ds.get("BitsStored", 0) or 0) != 16
        or int(ds.get("SamplesPerPixel", 1) or 1) != 1
    ):
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    data = ds.PixelData
    count = rows * cols
    if not isinstance(data, bytes) or len(data) < (frame_index + 1) * count * 2:
        return None  # short or odd: let pydicom say what is wrong
    dtype = np.dtype("<i2" if int(ds.get("PixelRepresentation", 0) or 0) else "<u2")
    view = np.frombuffer(data, dtype=dtype, count=count, offset=frame_index * count * 2)
    return view.reshape(rows, cols)


def _write_grey(
    ds: Dataset, frame: np.ndarray, target: np.ndarray, slope: float, intercept: float
) -> None:
    if frame.ndim == 3:  # a colour frame in a greyscale series: its luminance
        frame = frame[..., :3] @ np.array([0.299, 0.587, 0.114])
    if slope == 1.0:
        np.add(frame, np.float32(intercept), out=target, casting="unsafe")
    else:
        np.multiply(frame, np.float32(slope), out=target, casting="unsafe")
        if intercept:
            target += np.float32(intercept)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        np.subtract(np.float32(invert_constant(ds, slope, intercept)), target, out=target)


def _write_color(ds: Dataset, frame: np.ndarray, target: np.ndarray) -> None:
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR":
        frame = apply_color_lut(frame, ds)
    if frame.ndim == 2:  # greyscale frame in a colour series
        frame = np.repeat(frame[..., None], 3, axis=2)
    frame = frame[..., :3]
    if frame.dtype.itemsize > 1:  # 16-bit colour (palette LUTs, rare RGB): keep the top 8 bits
        shift = 8 if photometric == "PALETTE COLOR" else max(int(ds.get("BitsStored", 8)) - 8, 0)
        frame = np.right_shift(frame.astype(np.uint32), shift)
    np.copyto(target, frame, casting="unsafe")


def _short(exc: BaseException) -> str:
    """The exception on one line (pydicom lists each plugin's reason on its own line)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
