"""Read what the loader needs straight from a DICOM Part 10 file's bytes (Qt-free).

A streamed series arrives as one Part 10 file per instance. For native (uncompressed)
pixels, parsing the whole dataset with pydicom costs more than copying the pixels:
the file meta group says which instance it is and how it is encoded, and the Pixel
Data element is, in every file Orthanc and most archives write, the last one — so
its position follows from the size the plan already knows. Anything else (a
compressed syntax, a trailing element, an odd header) returns None and the caller
parses the file with pydicom, as before.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

_PIXEL_DATA = b"\xe0\x7f\x10\x00"
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})  # fmt: skip
_SOP_INSTANCE = (0x0002, 0x0003)
_SYNTAX = (0x0002, 0x0010)


@dataclass(frozen=True)
class FileMeta:
    """The file meta group's Media Storage SOP Instance UID and Transfer Syntax UID."""

    sop_uid: str
    syntax: str
    end: int  # offset of the first data set element


def read_file_meta(data: bytes | bytearray | memoryview) -> FileMeta | None:
    """The file meta of a Part 10 file, or None when ``data`` is not one (no 'DICM')."""
    if len(data) < 144 or bytes(data[128:132]) != b"DICM":
        return None
    pos = 132
    found: dict[tuple[int, int], str] = {}
    try:
        while pos + 8 <= len(data):
            group, element = struct.unpack_from("<HH", data, pos)
            if group != 0x0002:
                break
            vr = bytes(data[pos + 4 : pos + 6])
            if vr in _LONG_VRS:
                (length,) = struct.unpack_from("<I", data, pos + 8)
                value_at = pos + 12
            else:
                (length,) = struct.unpack_from("<H", data, pos + 6)
                value_at = pos + 8
            if (group, element) in (_SOP_INSTANCE, _SYNTAX):
                raw = bytes(data[value_at : value_at + length])
                found[(group, element)] = raw.rstrip(b"\0 ").decode("ascii", "replace")
            pos = value_at + length
    except struct.error:
        return None
    if _SOP_INSTANCE not in found or _SYNTAX not in found:
        return None
    return FileMeta(found[_SOP_INSTANCE], found[_SYNTAX], pos)


def native_pixel_offset(
    data: bytes | bytearray | memoryview, meta: FileMeta, nbytes: int
) -> int | None:
    """Where ``nbytes`` of native Pixel Data start when it is the file's last element, or
    None (another syntax, undefined length, a trailing element, another size)."""
    if meta.syntax == ExplicitVRLittleEndian:
        head = 12
    elif meta.syntax == ImplicitVRLittleEndian:
        head = 8
    else:
        return None
    padded = nbytes + (nbytes & 1)
    at = len(data) - padded - head
    if at < meta.end or bytes(data[at : at + 4]) != _PIXEL_DATA:
        return None
    (length,) = struct.unpack_from("<I", data, at + head - 4)
    if length != padded:
        return None
    if head == 12 and bytes(data[at + 4 : at + 6]) not in (b"OW", b"OB"):
        return None
    return at + head
