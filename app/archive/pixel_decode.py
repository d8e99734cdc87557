"""Decode one frame of a DICOM instance straight into its slice of the volume (Qt-free).

pydicom's decoders (with pylibjpeg, its openjpeg/libjpeg/RLE plugins and pyjpegls)
read every common transfer syntax: implicit/explicit VR, big endian, deflated,
JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE. Greyscale frames are
rescaled (Rescale Slope/Intercept, once) into the slice, in the volume's type (float32,
or int16/uint16/uint8 when the plan found the rescaled values are such integers); colour frames
(RGB, YBR_* converted to RGB, PALETTE COLOR through its lookup table) land in a
uint8 RGB slice. Native little-endian 16-bit frames skip the decoder: they are
read as a view of the received bytes (``native_frame``) and rescaled in one pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from app.archive.series_plan import Header, invert_constant
from app.errors import CompanionError

_NATIVE_LITTLE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


class FrameDecodeError(CompanionError):
    """One frame could not be decoded; its slice becomes a marked gap with this reason."""


def write_frame(
    ds: Dataset,
    frame_index: int,
    target: np.ndarray,
    slope: float,
    intercept: float,
    *,
    decode_elsewhere: Callable[[Dataset, int], np.ndarray | None] | None = None,
) -> None:
    """Decode frame ``frame_index`` (0-based) of ``ds`` into ``target`` (one volume slice).

    ``decode_elsewhere`` (the decode processes, ``app.archive.decode_pool``) is asked
    for compressed frames first; when it returns None, pydicom decodes here.
    Raises ``FrameDecodeError`` with the reason when the frame cannot be decoded.
    """
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise FrameDecodeError("the instance has no pixel data")
    try:
        frame = _native_view(ds, frame_index)
        if frame is None and decode_elsewhere is not None:
            frame = decode_elsewhere(ds, frame_index)
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


def native_layout(header: Header) -> tuple[int, int, int, bool] | None:
    """(rows, columns, bits stored, signed) when ``header`` describes 16-bit greyscale
    pixels that ``write_native`` can take from received bytes; None otherwise."""
    if int(header.get("BitsAllocated", 0) or 0) != 16:
        return None
    if int(header.get("SamplesPerPixel", 1) or 1) != 1:
        return None
    if str(header.get("PhotometricInterpretation", "")).upper() not in (
        "MONOCHROME1",
        "MONOCHROME2",
    ):
        return None
    return (
        int(header.get("Rows", 0) or 0),
        int(header.get("Columns", 0) or 0),
        int(header.get("BitsStored", 16) or 16),
        bool(int(header.get("PixelRepresentation", 0) or 0)),
    )


def write_native(
    header: Header,
    data: bytes | bytearray,
    offset: int,
    frame_index: int,
    target: np.ndarray,
    slope: float,
    intercept: float,
) -> None:
    """Frame ``frame_index`` of native pixels at ``offset`` in a received file's bytes
    (its header read from the series metadata) into ``target``, rescaled. Raises
    ``FrameDecodeError`` when the bytes do not hold it."""
    layout = native_layout(header)
    if layout is not None and _write_native_in_place(
        header, data, offset, frame_index, layout, target, slope, intercept
    ):
        return
    frame = native_frame(data, offset, frame_index, *layout) if layout else None
    if frame is None or frame.shape != target.shape:
        raise FrameDecodeError(
            f"frame {frame_index + 1}: the pixel data is not the size the header says"
        )
    _write_grey(header, frame, target, slope, intercept)


def _write_native_in_place(
    header: Header,
    data: bytes | bytearray,
    offset: int,
    frame_index: int,
    layout: tuple[int, int, int, bool],
    target: np.ndarray,
    slope: float,
    intercept: float,
) -> bool:
    """The common CT/MR case in two passes over the slice and no temporary: stored
    values (masked or sign-extended) written into a 16-bit integer slice, then the
    intercept added there. False when the case is another (the caller goes the
    general way)."""
    rows, cols, bits, signed = layout
    count = rows * cols
    start = offset + frame_index * count * 2
    if (
        target.dtype not in (np.int16, np.uint16)
        or target.shape != (rows, cols)
        or slope != 1.0
        or len(data) < start + count * 2
        or str(header.get("PhotometricInterpretation", "")) != "MONOCHROME2"
    ):
        return False
    info = np.iinfo(target.dtype)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if low < info.min or high > info.max:
        return False  # the stored values themselves do not fit the slice's type
    stored = np.frombuffer(data, np.dtype("<i2" if signed else "<u2"), count, start)
    stored = stored.reshape(rows, cols).view(target.dtype)
    if bits == 16:
        np.copyto(target, stored)
    elif signed:
        np.left_shift(stored, 16 - bits, out=target)
        np.right_shift(target, 16 - bits, out=target)
    else:
        np.bitwise_and(stored, target.dtype.type((1 << bits) - 1), out=target)
    if intercept:
        np.add(target, target.dtype.type(int(intercept)), out=target)
    return True


def _native_view(ds: Dataset, frame_index: int) -> np.ndarray | None:
    """Frame ``frame_index`` of native 16-bit Pixel Data, without the decoder."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax not in _NATIVE_LITTLE or "PixelData" not in ds:
        return None
    if int(ds.get("BitsAllocated", 0) or 0) != 16 or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return None
    data = ds.PixelData
    if not isinstance(data, bytes):
        return None
    return native_frame(
        data,
        0,
        frame_index,
        int(ds.Rows),
        int(ds.Columns),
        int(ds.get("BitsStored", 16) or 16),
        bool(int(ds.get("PixelRepresentation", 0) or 0)),
    )


def native_frame(
    data: bytes | bytearray | memoryview,
    offset: int,
    frame_index: int,
    rows: int,
    cols: int,
    bits_stored: int,
    signed: bool,
) -> np.ndarray | None:
    """Frame ``frame_index`` of little-endian 16-bit greyscale pixels starting at ``offset``
    in ``data``: a view when all 16 bits are stored, else masked (unsigned) or
    sign-extended (signed) from Bits Stored, as pydicom does. None when ``data`` is short
    or the layout is not this one (the caller lets pydicom say what is wrong)."""
    count = rows * cols
    start = offset + frame_index * count * 2
    if not 0 < bits_stored <= 16 or len(data) < start + count * 2:
        return None
    dtype = np.dtype("<i2" if signed else "<u2")
    view = np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(rows, cols)
    if bits_stored == 16:
        return view
    if signed:
        shift = 16 - bits_stored
        return np.right_shift(np.left_shift(view, shift), shift)
    return np.bitwise_and(view, np.uint16((1 << bits_stored) - 1))


def _write_grey(
    ds: Header, frame: np.ndarray, target: np.ndarray, slope: float, intercept: float
) -> None:
    """Rescale ``frame`` into ``target``: in float32, or in integers when the plan chose an
    integer volume (its rescale is then integral and its range fits, see ``grey_dtype``)."""
    if frame.ndim == 3:  # a colour frame in a greyscale series: its luminance
        frame = frame[..., :3] @ np.array([0.299, 0.587, 0.114])
    if target.dtype.kind == "f":
        if slope == 1.0:
            np.add(frame, np.float32(intercept), out=target, casting="unsafe")
        else:
            np.multiply(frame, np.float32(slope), out=target, casting="unsafe")
            if intercept:
                target += np.float32(intercept)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            np.subtract(np.float32(invert_constant(ds, slope, intercept)), target, out=target)
        return
    if frame.dtype.kind == "f":
        frame = np.rint(frame)
    if slope == 1.0 and intercept == 0.0:
        np.copyto(target, frame, casting="unsafe")
    elif slope == 1.0:
        np.add(frame, np.int32(intercept), out=target, casting="unsafe")
    else:
        scaled = np.multiply(frame, np.int32(slope), dtype=np.int32)
        np.add(scaled, np.int32(intercept), out=target, casting="unsafe")
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        k = np.int32(round(invert_constant(ds, slope, intercept)))
        np.subtract(k, target, out=target, casting="unsafe")


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
