"""Auto-run rules: which model to run, unasked, on a study that arrives without AI results.

A rule names a model and what a series must match: modality, body part and a series
description pattern (a case-insensitive regular expression, searched). Empty fields
match anything. The UI calls ``plan_autorun`` for each new worklist study with no AI
result and runs what it returns; nothing here runs a model or touches Qt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.domain import AIStatus, SeriesRef, WorklistItem
from app.errors import ConfigError


@dataclass(frozen=True)
class AutoRunRule:
    model: str
    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    series_description: str = ""  # regular expression, searched, case-insensitive
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("an auto-run rule must name a model")
        try:
            re.compile(self.series_description)
        except re.error as exc:
            raise ConfigError(
                f"auto-run rule for {self.model!r}: series_description is not a valid pattern "
                f"({exc}): {self.series_description!r}"
            ) from exc

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AutoRunRule:
        def texts(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            values = [value] if isinstance(value, str) else list(value)
            return tuple(str(v).upper() for v in values if str(v))

        return cls(
            model=str(data.get("model", "")),
            modalities=texts("modality"),
            body_parts=texts("body_part"),
            series_description=str(data.get("series_description", "")),
            enabled=bool(data.get("enabled", True)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "modality": list(self.modalities),
            "body_part": list(self.body_parts),
            "series_description": self.series_description,
            "enabled": self.enabled,
        }

    def matches(self, series: SeriesRef, body_part: str = "") -> bool:
        """Whether ``series`` (with its Body Part Examined, if known) fits this rule."""
        if not self.enabled:
            return False
        if self.modalities and (series.modality or "").upper() not in self.modalities:
            return False
        if self.body_parts and body_part.upper() not in self.body_parts:
            return False
        pattern = self.series_description
        return (
            not pattern or re.search(pattern, series.description or "", re.IGNORECASE) is not None
        )


def rules_from_settings(data: Iterable[dict[str, Any]]) -> list[AutoRunRule]:
    """The ``autorun_rules`` setting as rules; raises ConfigError naming a bad one."""
    return [AutoRunRule.from_json(d) for d in data]


@dataclass(frozen=True)
class AutoRun:
    """Run ``model`` on this series of this study."""

    study_uid: str
    series_uid: str
    model: str


def needs_autorun(item: WorklistItem) -> bool:
    """A worklist study with no AI result at all (not pending, not unreadable)."""
    return item.ai_status == AIStatus.NONE


def plan_autorun(
    rules: Sequence[AutoRunRule],
    series: Sequence[SeriesRef],
    body_parts: dict[str, str] | None = None,
    available_models: Iterable[str] | None = None,
) -> list[AutoRun]:
    """For one study's ``series``, what to run: at most one run per model (the first
    matching series, largest first), only models in ``available_models`` when given.
    ``body_parts`` maps series UID -> Body Part Examined."""
    body_parts = body_parts or {}
    allowed = set(available_models) if available_models is not None else None
    ordered = sorted(series, key=lambda s: -(s.num_instances or 0))
    runs: list[AutoRun] = []
    for rule in rules:
        if allowed is not None and rule.model not in allowed:
            continue
        if any(r.model == rule.model for r in runs):
            continue
        for s in ordered:
            if rule.matches(s, body_parts.get(s.series_uid, "")):
                runs.append(AutoRun(s.study_uid, s.series_uid, rule.model))
                break
    return runs
