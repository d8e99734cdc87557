"""Plain typed models shared by every layer: no I/O, no Qt.

These are what the archive, results, worklist and UI layers exchange. They are
frozen dataclasses so that a parsed AI result can be cached by SOP Instance UID
and handed to several readers without anyone mutating it behind the others' back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Code:
    """A coded concept (value, coding scheme designator, meaning)."""

    value: str
    scheme: str
    meaning: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.value, "scheme": self.scheme, "meaning": self.meaning}

    def same_concept(self, other: Code) -> bool:
        """Codes are equal by value and scheme; the meaning is display text only."""
        return self.value == other.value and self.scheme == other.scheme


class Urgency(enum.IntEnum):
    """How soon a finding needs a human. Higher is more urgent."""

    ROUTINE = 0
    URGENT = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class AIStatus(str, enum.Enum):
    """What the worklist knows about a study's AI results."""

    NONE = "none"  # no AI result stored for the study
    PENDING = "pending"  # an AI result is listed but could not be retrieved yet
    DONE = "done"  # every AI result was retrieved and read
    UNREADABLE = "unreadable"  # an AI result exists but could not be parsed


@dataclass(frozen=True)
class Algorithm:
    """TID 4019 algorithm identification, plus the device manufacturer."""

    name: str
    version: str
    manufacturer: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "manufacturer": self.manufacturer}


@dataclass(frozen=True)
class Region:
    """A spatial region of a finding.

    ``graphic_type`` is the DICOM graphic type (POINT, MULTIPOINT, POLYLINE,
    POLYGON, CIRCLE, ELLIPSE, ELLIPSOID). For SCOORD regions ``coordinates`` are
    (column, row) pairs in image pixels and ``referenced_sop_uid`` names the
    image (``referenced_frame`` the 1-based frame, if any); for SCOORD3D they are
    (x, y, z) triples in mm in ``frame_of_reference_uid``.
    """

    graphic_type: str
    coordinates: tuple[tuple[float, ...], ...]
    referenced_sop_uid: str | None = None
    referenced_sop_class_uid: str | None = None
    referenced_frame: int | None = None
    frame_of_reference_uid: str | None = None

    @property
    def is_3d(self) -> bool:
        return self.frame_of_reference_uid is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "graphic_type": self.graphic_type,
            "coordinates": [list(p) for p in self.coordinates],
            "referenced_sop_uid": self.referenced_sop_uid,
            "referenced_sop_class_uid": self.referenced_sop_class_uid,
            "referenced_frame": self.referenced_frame,
            "frame_of_reference_uid": self.frame_of_reference_uid,
        }


@dataclass(frozen=True)
class Measurement:
    """A numeric measurement with its UCUM unit."""

    concept: Code
    value: float
    unit: Code

    def to_json(self) -> dict[str, Any]:
        return {"concept": self.concept.to_json(), "value": self.value, "unit": self.unit.to_json()}


@dataclass(frozen=True)
class Finding:
    """One AI finding as the app shows it (one TID 1410/1411/1501 measurement group)."""

    tracking_uid: str
    finding: Code
    site: Code | None
    certainty: float | None  # 0..1
    urgency: Urgency
    algorithm: Algorithm
    regions: tuple[Region, ...]
    measurements: tuple[Measurement, ...]
    source_sop_uid: str
    template: str = "TID1500"
    editable: bool = True
    tracking_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "tracking_uid": self.tracking_uid,
            "tracking_id": self.tracking_id,
            "finding": self.finding.to_json(),
            "site": self.site.to_json() if self.site else None,
            "certainty": self.certainty,
            "urgency": self.urgency.label,
            "algorithm": self.algorithm.to_json(),
            "regions": [r.to_json() for r in self.regions],
            "measurements": [m.to_json() for m in self.measurements],
            "source_sop_uid": self.source_sop_uid,
            "template": self.template,
            "editable": self.editable,
        }


@dataclass(frozen=True)
class AIResult:
    """Everything read from one AI result object (an SR instance)."""

    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    template: str  # "TID1500" or e.g. "SR (not TID 1500)"
    algorithm: Algorithm | None
    findings: tuple[Finding, ...]
    content_datetime: datetime | None = None
    readable: bool = True
    problem: str = ""  # why it could not be read, when readable is False
    # SOP Instance UIDs of the SRs this one supersedes (its Predecessor Documents
    # Sequence), e.g. the AI SR a reader's edited SR replaces.
    predecessor_uids: tuple[str, ...] = ()

    @property
    def editable(self) -> bool:
        return self.readable and self.template in ("TID1500", "ANN")


@dataclass(frozen=True)
class StudyRef:
    """A study as the archive lists it (QIDO-RS study level)."""

    study_uid: str
    accession: str = ""
    patient_name: str = ""
    patient_id: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    study_datetime: datetime | None = None
    order_priority: str = ""  # Requested Procedure Priority, where the archive has it
    num_series: int | None = None
    num_instances: int | None = None

    @property
    def modality(self) -> str:
        """The imaging modality shown in the worklist (SR/SEG etc. are not imaging)."""
        imaging = [m for m in self.modalities if m not in NON_IMAGING_MODALITIES]
        return "/".join(imaging) if imaging else "/".join(self.modalities)


NON_IMAGING_MODALITIES = frozenset({"SR", "SEG", "KO", "PR", "ANN", "DOC", "REG", "RWV"})


@dataclass(frozen=True)
class SeriesRef:
    """A series as the archive lists it (QIDO-RS series level)."""

    study_uid: str
    series_uid: str
    modality: str
    description: str = ""
    number: int | None = None
    num_instances: int | None = None


@dataclass(frozen=True)
class ScoreTerm:
    """One additive part of a worklist score, for explaining the rank."""

    name: str
    points: float
    text: str


class ReviewState(str, enum.Enum):
    """Whether a reader has reviewed the study's AI results."""

    NONE = "none"
    SUBMITTED = "submitted"  # reviewed here; the assessment SR is on its way (outbox)
    REVIEWED = "reviewed"  # an assessment SR of the study is in the archive


@dataclass(frozen=True)
class WorklistItem:
    """A ranked study with the reasons for its rank."""

    study: StudyRef
    rank: int
    score: float
    reason: str
    ai_status: AIStatus
    critical: bool
    findings: tuple[Finding, ...] = ()
    terms: tuple[ScoreTerm, ...] = field(default=())
    problems: tuple[str, ...] = ()  # e.g. why an AI result is unreadable
    waiting_minutes: float | None = None
    review: ReviewState = ReviewState.NONE
    reviewed_by: str = ""  # the reader named in the newest assessment SR

    def to_json(self) -> dict[str, Any]:
        s = self.study
        return {
            "study_uid": s.study_uid,
            "accession": s.accession,
            "modality": s.modality,
            "description": s.description,
            "study_datetime": s.study_datetime.isoformat() if s.study_datetime else None,
            "order_priority": s.order_priority or None,
            "rank": self.rank,
            "score": round(self.score, 3),
            "reason": self.reason,
            "ai_status": self.ai_status.value,
            "critical": self.critical,
            "findings": len(self.findings),
            "problems": list(self.problems),
            "review": self.review.value,
            "reviewed_by": self.reviewed_by or None,
        }
