"""A lean reader of WADO-RS multipart/related answers, one part at a time (Qt-free).

dicomweb-client buffers a whole answer before it splits it (2–3× the series in
memory) and parses every part into a dataset. Here the body is read from the socket
as it arrives and each part's bytes are handed on as soon as its closing delimiter
is in, so the first instance of a series (or the first tile of a frames answer) is
decoded while the rest is still on the wire. A part's Content-Length (Orthanc sends one) lets the reader check the
delimiter at one place instead of searching the whole part for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import requests

from app.errors import ArchiveError

CHUNK = 1 << 20
_MAX_HEAD = 64 * 1024
DICOM_ANY_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*'
# frames (WADO-RS .../frames/N,M) as the server stores them: JPEG, JPEG 2000 or native
FRAMES_ANY_SYNTAX = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


class MultipartError(ArchiveError):
    """The archive's multipart answer is malformed or ends early."""


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart Content-Type header."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"').encode("ascii", "replace")
    raise MultipartError(f"the answer is not multipart (Content-Type {content_type[:80]!r})")


def iter_parts(
    read: Callable[[int], bytes],
    boundary: bytes,
    readinto: Callable[[memoryview], int | None] | None = None,
) -> Iterator[bytes | bytearray]:
    """Each part's body, in order, from a stream of ``read(n)`` chunks (b'' at the end).

    With ``readinto`` (reads straight into a buffer), a part whose Content-Length is
    given is read into its own buffer, one copy from the socket instead of two.
    """
    delim = b"\r\n--" + boundary
    buf = bytearray(b"\r\n")  # so that a first delimiter at offset 0 matches too
    eof = False

    def fill() -> None:
        nonlocal eof
        chunk = read(CHUNK)
        if chunk:
            buf.extend(chunk)
        else:
            eof = True

    def find(marker: bytes, start: int, what: str, limit: int | None = None) -> int:
        searched = start
        while True:
            at = buf.find(marker, searched)
            if at >= 0:
                return at
            if eof:
                raise MultipartError(f"the multipart answer ends inside {what}")
            if limit is not None and len(buf) > limit:
                raise MultipartError(f"{what} is longer than {limit} bytes")
            searched = max(start, len(buf) - len(marker) + 1)
            fill()

    del buf[: find(delim, 0, "its preamble") + len(delim)]
    while True:
        while len(buf) < 2 and not eof:
            fill()
        if buf[:2] == b"--" or (eof and not buf.strip()):
            return  # the close delimiter
        head_end = find(b"\r\n\r\n", 0, "a part's headers", _MAX_HEAD)
        length = _content_length(bytes(buf[:head_end]))
        del buf[: head_end + 4]
        end = -1
        if length is not None and readinto is not None and length > len(buf):
            body = bytearray(length)
            have = len(buf)
            body[:have] = buf
            del buf[:]
            with memoryview(body) as view:
                while have < length:
                    n = readinto(view[have:])
                    if not n:
                        raise MultipartError("the multipart answer ends inside a part")
                    have += n
            while len(buf) < len(delim) and not eof:
                fill()
            if buf[: len(delim)] == delim:
                del buf[: len(delim)]
                yield body
                continue
            buf[0:0] = body  # the length was wrong: find the delimiter instead
        if length is not None:
            while len(buf) < length + len(delim) and not eof:
                fill()
            if buf[length : length + len(delim)] == delim:
                end = length
        if end < 0:
            end = find(delim, 0, "a part")
        with memoryview(buf) as view:
            part = bytes(view[:end])
        del buf[: end + len(delim)]
        yield part


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def stream_dicom_files(
    session: requests.Session,
    url: str,
    *,
    timeout: float,
    cancel: threading.Event | None = None,
) -> Iterator[bytes | bytearray]:
    """GET ``url`` (a WADO-RS study, series or instance) as multipart/related
    application/dicom in the stored transfer syntax; yield each instance's Part 10 bytes.

    Raises ``requests`` exceptions (the caller translates them) and ``MultipartError``.
    Stops, closing the connection, when ``cancel`` is set.
    """
    return stream_parts(session, url, DICOM_ANY_SYNTAX, timeout=timeout, cancel=cancel)


def stream_parts(
    session: requests.Session,
    url: str,
    accept: str,
    *,
    timeout: float,
    cancel: threading.Event | None = None,
) -> Iterator[bytes | bytearray]:
    """GET ``url`` with ``Accept: accept`` (a multipart/related media type); yield each
    part's body as soon as it has arrived. Raises as ``stream_dicom_files``."""
    response = session.get(url, headers={"Accept": accept}, stream=True, timeout=timeout)
    try:
        response.raise_for_status()
        boundary = boundary_of(response.headers.get("Content-Type", ""))
        raw = response.raw
        fp: Any = getattr(raw, "_fp", None)
        readinto = None
        if not response.headers.get("Content-Encoding") and hasattr(fp, "readinto"):
            # http.client's response under urllib3's: it undoes chunking itself and can
            # read into a buffer; nothing else has read from it yet (stream=True)
            reader, readinto = fp.read1, fp.readinto
        else:
            raw.decode_content = True  # a server compressed anyway: urllib3 undoes it
            reader = raw.read1 if hasattr(raw, "read1") else raw.read
        for part in iter_parts(reader, boundary, readinto):
            if cancel is not None and cancel.is_set():
                return
            yield part
    finally:
        response.close()
