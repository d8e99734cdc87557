"""Which models fit a series: the one check "Run AI", auto-run and ``companion infer`` share.

A model fits when it is available and its input filter takes the series (modality,
Body Part Examined, slices, spacing, greyscale, fully loaded: ``service.check_fit``).
Body Part Examined is optional in DICOM (type 3): a series without it cannot be
checked against a model that names body parts, so such a fit is marked
``unverified`` and the window asks the reader to choose rather than running unasked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from app.archive.protocol import ImageArchive
from app.archive.volume import ImageVolume
from inference.registry import ModelEntry, ModelRegistry
from inference.service import StudyNotSuitable, check_fit


@dataclass(frozen=True)
class ModelChoice:
    """One model as offered for one series: whether it fits, and if not why."""

    entry: ModelEntry
    refusal: str = ""  # why it does not fit or cannot run ("" when it fits)
    unverified: str = ""  # a fit that could not be checked fully (e.g. no body part)

    @property
    def fits(self) -> bool:
        return not self.refusal


def body_part_of(headers: Sequence[Dataset]) -> str:
    """Body Part Examined of a series (its first instance that has one), upper case."""
    for ds in headers:
        value = str(ds.get("BodyPartExamined", "") or "").strip()
        if value:
            return value.upper()
    return ""


def series_body_part(archive: ImageArchive, study_uid: str, series_uid: str) -> str:
    """Body Part Examined of one series, from its WADO-RS metadata ("" when absent)."""
    for item in archive.retrieve_series_metadata(study_uid, series_uid):
        value = (item.get("00180015") or {}).get("Value") or []
        if value and str(value[0]).strip():
            return str(value[0]).strip().upper()
    return ""


def model_choices(
    registry: ModelRegistry, volume: ImageVolume, body_part: str
) -> list[ModelChoice]:
    """Every model, for this series: those that fit first (the default is the first),
    then the rest with the reason each is refused."""
    fitting: list[ModelChoice] = []
    refused: list[ModelChoice] = []
    for entry in registry.models():
        if not entry.available or entry.manifest is None:
            refused.append(ModelChoice(entry, f"unavailable: {entry.reason}"))
            continue
        try:
            check_fit(entry.manifest, volume, body_part)
        except StudyNotSuitable as exc:
            refused.append(ModelChoice(entry, str(exc)))
            continue
        parts = entry.manifest.input_filter.body_parts
        unverified = (
            f"the series has no Body Part Examined; {entry.name} is made for {'/'.join(parts)}"
            if parts and not body_part
            else ""
        )
        fitting.append(ModelChoice(entry, unverified=unverified))
    return fitting + refused


def refusal_text(choices: Sequence[ModelChoice], modality: str, body_part: str) -> str:
    """Why no model can run on this series, in one line for the status bar."""
    what = " ".join(p for p in (modality, body_part) if p) or "this"
    if not choices:
        return "No AI models are installed (Ctrl+Shift+M lists the models folder)"
    reasons = "; ".join(dict.fromkeys(c.refusal for c in choices))
    return f"No model fits this {what} series: {reasons}"
