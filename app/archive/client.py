"""``ImageArchive`` over dicomweb-client's ``DICOMClient`` protocol.

The same class serves a remote DICOMweb archive (``DICOMwebClient``) and the
embedded local archive (``DICOMfileClient``), because both clients implement
one protocol. What differs is made in the two ``open_*`` functions. Errors of
either client are translated into the ``ArchiveError`` family here, once.
"""

from __future__ import annotations

import copy
import logging
import struct
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import requests
from dicomweb_client import DICOMfileClient, DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from app.archive import dicomjson, multipart
from app.archive.protocol import InstanceRef
from app.domain import SeriesRef, StudyRef
from app.errors import ArchiveError, ArchiveHTTPError, ArchiveUnreachable, NotFoundError

log = logging.getLogger(__name__)


class _DropWriteLikeOriginal(logging.Filter):
    """dicomweb-client's file store calls pydicom's deprecated ``write_like_original``
    once per instance; pydicom logs that as a WARNING each time (hundreds when the
    demo is seeded). It says nothing about our data, so it is dropped here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "write_like_original" not in record.getMessage()


logging.getLogger("pydicom").addFilter(_DropWriteLikeOriginal())
warnings.filterwarnings("ignore", message=".*write_like_original.*", category=DeprecationWarning)

T = TypeVar("T")

# Ask servers not to transcode (PS3.18 8.7.3.5.2): we decode every common syntax.
_OWNER_THREAD = "local-archive"
ANY_TRANSFER_SYNTAX_DICOM = (("application/dicom", "*"),)
ANY_TRANSFER_SYNTAX_FRAMES = (("application/octet-stream", "*"),)
DEFAULT_TIMEOUT_S = 20.0


class DicomClientArchive:
    """An ``ImageArchive`` backed by any dicomweb-client ``DICOMClient``."""

    def __init__(
        self,
        client: Any,
        description: str,
        *,
        is_local: bool,
        owner: ThreadPoolExecutor | None = None,
        web: tuple[requests.Session, str, float] | None = None,
    ) -> None:
        self._client = client
        # (session, DICOMweb root URL, timeout): lets the series loader stream
        # multipart answers itself (``stream_instance_files``); None for the local archive
        self._web = web
        self._description = description
        self._is_local = is_local
        # A client bound to one thread (DICOMfileClient's SQLite connection works
        # only in the thread that opened it) is called on that ``owner`` thread.
        self._owner = owner
        self._local_study_details: dict[str, dict[str, str]] = {}

    @property
    def description(self) -> str:
        return self._description

    @property
    def is_local(self) -> bool:
        return self._is_local

    @property
    def can_stream(self) -> bool:
        """True when ``stream_instance_files`` can be used (a DICOMweb archive)."""
        return self._web is not None

    @property
    def client(self) -> Any:
        """The underlying dicomweb-client object (for streaming loaders)."""
        return self._client

    # -- translation of errors -------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            if self._owner is not None and threading.current_thread().name.startswith(
                _OWNER_THREAD
            ):
                return fn()  # already on the owner thread (a nested call)
            if self._owner is not None:
                return self._owner.submit(fn).result()
            return fn()
        except ArchiveError:
            raise
        except requests.exceptions.HTTPError as exc:
            raise _http_error(what, exc, self._description) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise ArchiveUnreachable(
                f"Cannot reach the archive at {self._description} ({what}): {_why_unreachable(exc)}"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise ArchiveError(f"{what} failed at {self._description}: {_short(exc)}") from exc
        except (InvalidDicomError, BytesLengthException, EOFError, struct.error) as exc:
            # pydicom could not parse what the archive sent (a corrupt or truncated object)
            raise ArchiveError(
                f"{what}: the archive at {self._description} sent an object that is not "
                f"readable DICOM ({_short(exc)})"
            ) from exc
        except (OSError, ValueError, KeyError, IndexError) as exc:
            if self._is_local and _looks_not_found(exc):
                raise NotFoundError(f"{what}: not found in {self._description}") from exc
            raise ArchiveError(f"{what} failed at {self._description}: {_short(exc)}") from exc

    def _each(self, what: str, items: Iterator[T]) -> Iterator[T]:
        """``items`` one by one, the errors of each step translated as ``_call``'s."""
        while True:
            item = self._call(what, lambda: next(items, None))
            if item is None:
                return
            yield item

    # -- ImageArchive ----------------------------------------------------------
    def check(self) -> None:
        self._call("connect", lambda: self._client.search_for_studies(limit=1))

    def search_studies(
        self,
        filters: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[StudyRef]:
        fields = None if self._is_local else list(dicomjson.STUDY_FIELDS)
        items = self._call(
            "search studies",
            lambda: self._client.search_for_studies(
                fields=fields,
                search_filters=dict(filters or {}),
                limit=limit,
                offset=offset,
                get_remaining=limit is None,
            ),
        )
        studies = [dicomjson.study_from_json(item) for item in items or []]
        if self._is_local:
            studies = [self._complete_local(s) for s in studies]
        return studies

    def _complete_local(self, study: StudyRef) -> StudyRef:
        """Fill what DICOMfileClient's index lacks (description, accession, order priority)
        from one instance's header; cached, because a study's header never changes."""
        known = self._local_study_details.get(study.study_uid)
        if known is None:
            known = {}
            refs = self._call(
                "search instances",
                lambda: self._client.search_for_instances(
                    study_instance_uid=study.study_uid, limit=1
                ),
            )
            if refs:
                ref = dicomjson.instance_from_json(refs[0], study.study_uid)
                meta = self.retrieve_instance_metadata(ref.study_uid, ref.series_uid, ref.sop_uid)
                known = {
                    "description": dicomjson.text(meta, dicomjson.STUDY_DESCRIPTION),
                    "accession": dicomjson.text(meta, dicomjson.ACCESSION),
                    "order_priority": dicomjson.text(
                        meta, dicomjson.REQUESTED_PROCEDURE_PRIORITY
                    ).upper(),
                }
            self._local_study_details[study.study_uid] = known
        return replace(
            study,
            description=study.description or known.get("description", ""),
            accession=study.accession or known.get("accession", ""),
            order_priority=study.order_priority or known.get("order_priority", ""),
        )

    def search_series(self, study_uid: str, modality: str | None = None) -> list[SeriesRef]:
        filters = {"Modality": modality} if modality else {}
        items = self._call(
            "search series",
            lambda: self._client.search_for_series(
                study_instance_uid=study_uid,
                search_filters=filters,
                fields=None
                if self._is_local
                else [dicomjson.SERIES_DESCRIPTION, dicomjson.NUM_SERIES_INSTANCES],
                get_remaining=True,
            ),
        )
        return [
            self._complete_series(dicomjson.series_from_json(item, study_uid))
            for item in items or []
        ]

    def _complete_series(self, series: SeriesRef) -> SeriesRef:
        """Fill a series' description and size where the index lacks them (the local
        archive's always does) from its instance list and first header."""
        if series.description and series.num_instances is not None:
            return series
        instances = self.search_instances(series.study_uid, series.series_uid)
        description = series.description
        if not description and instances:
            first = instances[0]
            meta = self.retrieve_instance_metadata(first.study_uid, first.series_uid, first.sop_uid)
            description = dicomjson.text(meta, dicomjson.SERIES_DESCRIPTION)
        return replace(series, description=description, num_instances=len(instances))

    def search_instances(
        self,
        study_uid: str | None = None,
        series_uid: str | None = None,
        modality: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[InstanceRef]:
        filters = {"Modality": modality} if modality else {}
        items = self._call(
            "search instances",
            lambda: self._client.search_for_instances(
                study_instance_uid=study_uid,
                series_instance_uid=series_uid,
                search_filters=filters,
                fields=None
                if self._is_local
                else [dicomjson.MODALITY, dicomjson.STUDY_UID, dicomjson.SERIES_UID],
                limit=limit,
                offset=offset,
                get_remaining=limit is None,
            ),
        )
        return [
            dicomjson.instance_from_json(item, study_uid or "", series_uid or "")
            for item in items or []
        ]

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        kwargs: dict[str, Any] = {}
        if not self._is_local:
            kwargs["media_types"] = ANY_TRANSFER_SYNTAX_DICOM
        return self._call(
            "retrieve instance",
            lambda: self._client.retrieve_instance(study_uid, series_uid, sop_uid, **kwargs),
        )

    def retrieve_instance_metadata(
        self, study_uid: str, series_uid: str, sop_uid: str
    ) -> dict[str, Any]:
        return self._call(
            "retrieve instance metadata",
            lambda: self._client.retrieve_instance_metadata(study_uid, series_uid, sop_uid),
        )

    def retrieve_series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
        return self._call(
            "retrieve series metadata",
            lambda: self._client.retrieve_series_metadata(study_uid, series_uid),
        )

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        kwargs: dict[str, Any] = {}
        if not self._is_local:
            kwargs["media_types"] = ANY_TRANSFER_SYNTAX_DICOM
        iterator = self._call(
            "retrieve series",
            lambda: iter(self._client.iter_series(study_uid, series_uid, **kwargs)),
        )
        yield from self._each("retrieve series", iterator)

    def stream_instance_files(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> Iterator[bytes | bytearray]:
        """The Part 10 bytes of a series' instances (or of one), as the server stores
        them, each as soon as it has arrived: one WADO-RS request read part by part.
        Raises ``ArchiveError``s; only for an archive where ``can_stream`` is True."""
        if self._web is None:
            raise ArchiveError(f"{self._description} cannot stream multipart answers")
        session, root, timeout = self._web
        url = f"{root}/studies/{study_uid}/series/{series_uid}"
        if sop_uid is not None:
            url += f"/instances/{sop_uid}"
        what = "retrieve instance" if sop_uid else "retrieve series"
        # a generator: the request goes out, and fails, on the first step
        parts = multipart.stream_dicom_files(session, url, timeout=timeout, cancel=cancel)
        yield from self._each(what, parts)

    def stream_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> Iterator[bytes | bytearray]:
        """The frames' bytes in the stored transfer syntax, in the order asked, each as
        soon as it has arrived (one WADO-RS frames request read part by part); the
        local archive hands over ``retrieve_frames``' list. Raises ``ArchiveError``s."""
        if self._web is None:
            yield from self.retrieve_frames(study_uid, series_uid, sop_uid, frames)
            return
        session, root, timeout = self._web
        numbers = ",".join(str(int(n)) for n in frames)
        url = f"{root}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{numbers}"
        parts = multipart.stream_parts(session, url, multipart.FRAMES_ANY_SYNTAX, timeout=timeout)
        yield from self._each("retrieve frames", parts)

    def retrieve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> list[bytes]:
        kwargs: dict[str, Any] = {}
        if not self._is_local:
            kwargs["media_types"] = ANY_TRANSFER_SYNTAX_FRAMES
        return self._call(
            "retrieve frames",
            lambda: self._client.retrieve_instance_frames(
                study_uid, series_uid, sop_uid, frame_numbers=list(frames), **kwargs
            ),
        )

    def store(self, datasets: Sequence[Dataset]) -> Dataset:
        if not datasets:
            return Dataset()
        if self._is_local:
            datasets = [_servable_locally(ds) for ds in datasets]
        response = self._call(
            "store instances", lambda: self._client.store_instances(list(datasets))
        )
        # STOW-RS answers with Referenced / Failed SOP Sequences; the file client with nothing.
        return response if isinstance(response, Dataset) else Dataset()


def open_dicomweb(
    url: str,
    *,
    session: requests.Session | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> DicomClientArchive:
    """A DICOMweb archive at ``url`` (the DICOMweb root, e.g. http://host/dicom-web).

    dicomweb-client's own retrying is turned off: retries belong to the caller
    (the worklist's next refresh, the outbox's policy), never to a hidden loop.
    """
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        from app.errors import ConfigError

        raise ConfigError(f"server URL must start with http:// or https://, got {url!r}")
    session = session or requests.Session()
    # No gzip: Orthanc compresses on the fly at ~20 MB/s, so a 512 KB CT slice took
    # 30 ms instead of 2 ms on loopback, and JPEG/J2K pixel data does not shrink anyway.
    session.headers["Accept-Encoding"] = "identity"
    client = DICOMwebClient(url=url, session=session, timeout=timeout)
    client.set_http_retry_params(retry=False)
    return DicomClientArchive(
        client, description=_redact_url(url), is_local=False, web=(session, url, timeout)
    )


def open_local(folder: Path, *, readonly: bool = False) -> DicomClientArchive:
    """The embedded archive: a folder of DICOM files indexed in SQLite."""
    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    # DICOMfileClient opens its SQLite connection in __init__ and sqlite3 then
    # refuses other threads: the client is made, and always called, on one thread.
    owner = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_OWNER_THREAD)
    try:
        client = owner.submit(
            DICOMfileClient, url=folder.as_uri(), update_db=True, readonly=readonly
        ).result()
    except Exception as exc:  # the file client raises plain exceptions on a bad folder
        owner.shutdown(wait=False)
        raise ArchiveError(f"Cannot open the local archive at {folder}: {_short(exc)}") from exc
    return DicomClientArchive(
        client, description=f"local archive {folder}", is_local=True, owner=owner
    )


# -- helpers ----------------------------------------------------------------
# DICOMfileClient stores any syntax but serves (retrieve_instance) only explicit VR
# little endian and the compressed ones: it answers HTTP 500 for these. They carry
# native pixels, so the same dataset is stored as explicit VR little endian instead.
_RESTATED_LOCALLY = (ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)


def _servable_locally(ds: Dataset) -> Dataset:
    meta = getattr(ds, "file_meta", None)
    if meta is None or meta.get("TransferSyntaxUID") not in _RESTATED_LOCALLY:
        return ds
    out = copy.copy(ds)
    out.file_meta = copy.deepcopy(meta)
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return out


def _http_error(what: str, exc: requests.exceptions.HTTPError, where: str) -> ArchiveError:
    response = exc.response
    status = response.status_code if response is not None else 0
    server_message = ""
    if response is not None:
        server_message = (response.text or "").strip().replace("\n", " ")[:200]
    message = f"{what} failed at {where}: HTTP {status}"
    if response is not None and response.reason:
        message += f" {response.reason}"
    if status == 404:
        return NotFoundError(message)
    return ArchiveHTTPError(message, status=status, server_message=server_message)


_UNREACHABLE_REASONS = (
    ("CERTIFICATE_VERIFY_FAILED", "the server's TLS certificate could not be verified"),
    ("Connection refused", "connection refused"),
    ("Name or service not known", "unknown host name"),
    ("Temporary failure in name resolution", "host name could not be resolved"),
    ("No route to host", "no route to host"),
    ("timed out", "timed out"),
    ("Connection reset", "connection reset by the server"),
)


def _why_unreachable(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    for needle, reason in _UNREACHABLE_REASONS:
        if needle in text:
            return reason
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _looks_not_found(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "not found" in text or "could not find" in text or "no such" in text


def _redact_url(url: str) -> str:
    """Drop user:password@ from a URL before it is shown or logged."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
