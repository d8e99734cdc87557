"""Plain typed models (no I/O, no Qt)."""

from app.domain.models import (
    NON_IMAGING_MODALITIES,
    AIResult,
    AIStatus,
    Algorithm,
    Code,
    Finding,
    Measurement,
    Region,
    ScoreTerm,
    SeriesRef,
    StudyRef,
    Urgency,
    WorklistItem,
)

__all__ = [
    "NON_IMAGING_MODALITIES",
    "AIResult",
    "AIStatus",
    "Algorithm",
    "Code",
    "Finding",
    "Measurement",
    "Region",
    "ScoreTerm",
    "SeriesRef",
    "StudyRef",
    "Urgency",
    "WorklistItem",
]
