"""The one boundary to image archives (DESIGN.md §3.2).

``ImageArchive`` is what the rest of the app uses; ``app.archive.client`` holds
the implementation over dicomweb-client's ``DICOMClient`` protocol, so the
DICOMweb archive and the embedded local archive behave the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydicom.dataset import Dataset

from app.domain import SeriesRef, StudyRef


@dataclass(frozen=True)
class InstanceRef:
    """An instance as QIDO-RS lists it."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str = ""
    modality: str = ""
    instance_number: int | None = None


@runtime_checkable
class ImageArchive(Protocol):
    """Find, retrieve and store DICOM objects (QIDO-RS, WADO-RS, STOW-RS)."""

    @property
    def description(self) -> str:
        """Where this archive is, for the status bar and messages (no secrets)."""
        ...

    @property
    def is_local(self) -> bool:
        """True for the embedded offline archive."""
        ...

    def check(self) -> None:
        """Raise an ``ArchiveError`` if the archive cannot be reached."""
        ...

    def search_studies(
        self,
        filters: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[StudyRef]:
        """All matching studies; with ``limit``, one page from ``offset`` (QIDO-RS paging)."""
        ...

    def search_series(self, study_uid: str, modality: str | None = None) -> list[SeriesRef]: ...

    def search_instances(
        self,
        study_uid: str | None = None,
        series_uid: str | None = None,
        modality: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[InstanceRef]: ...

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset: ...

    def retrieve_instance_metadata(
        self, study_uid: str, series_uid: str, sop_uid: str
    ) -> dict[str, Any]: ...

    def retrieve_series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]: ...

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]: ...

    def retrieve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> list[bytes]: ...

    def store(self, datasets: Sequence[Dataset]) -> Dataset:
        """STOW-RS; returns the server's answer (Referenced/Failed SOP Sequences), maybe empty."""
        ...


@runtime_checkable
class StreamingArchive(Protocol):
    """An archive that can hand over instances as Part 10 bytes, and a slide's frames,
    while one multipart answer streams in (a DICOMweb archive); the series loader and
    the slide tiles use it when ``can_stream`` is True, and ``retrieve_*`` otherwise."""

    @property
    def can_stream(self) -> bool: ...

    def stream_instance_files(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> Iterator[bytes | bytearray]: ...

    def stream_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> Iterator[bytes | bytearray]: ...
