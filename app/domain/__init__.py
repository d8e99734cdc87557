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
    ReviewState,
    ScoreTerm,
    SeriesRef,
    StudyRef,
    Urgency,
    WorklistItem,
)
from app.domain.review import Assessment, Decision, Reader, Verdict
from app.domain.segmentation import Segment, SegmentationResult

__all__ = [
    "NON_IMAGING_MODALITIES",
    "AIResult",
    "AIStatus",
    "Algorithm",
    "Assessment",
    "Code",
    "Decision",
    "Finding",
    "Measurement",
    "Reader",
    "Region",
    "ReviewState",
    "ScoreTerm",
    "Segment",
    "SegmentationResult",
    "SeriesRef",
    "StudyRef",
    "Urgency",
    "Verdict",
    "WorklistItem",
]
