"""A DICOM Segmentation as the app shows it: its segments' names, colours and codes.

The pixel masks are not part of the domain model (they are large and belong to one
displayed series); ``app.results.seg_reader`` aligns them to a volume's slices.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.models import Algorithm, Code


@dataclass(frozen=True)
class Segment:
    """One segment of a SEG: what it is, how to colour it and who made it."""

    number: int  # Segment Number, 1-based
    label: str
    colour: tuple[int, int, int]  # sRGB 0..255 (Recommended Display CIELab Value, else a default)
    property_category: Code | None = None
    property_type: Code | None = None
    algorithm: Algorithm | None = None
    tracking_uid: str = ""


@dataclass(frozen=True)
class SegmentationResult:
    """One SEG instance: its identity and its segments."""

    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    segmentation_type: str  # BINARY, FRACTIONAL or LABELMAP
    segments: tuple[Segment, ...]
    frame_of_reference_uid: str = ""
    series_description: str = ""

    def segment_key(self, segment: Segment) -> str:
        """Unique across SEG instances: the SOP Instance UID and the segment number."""
        return f"{self.sop_instance_uid}#{segment.number}"
