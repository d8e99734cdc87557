"""The finding types and sites a reader may choose (resources/codes/review_code_lists.json):
radiology ones, and pathology ones for findings on a whole-slide image."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from app.domain import Code
from app.errors import ConfigError


@cache
def _load() -> dict[str, tuple[Code, ...]]:
    try:
        text = (
            resources.files("resources")
            .joinpath("codes/review_code_lists.json")
            .read_text(encoding="utf-8")
        )
        data = json.loads(text)
        return {
            name: tuple(Code(str(v), str(s), str(m)) for v, s, m in data[name])
            for name in ("finding_types", "sites", "slide_finding_types", "slide_sites")
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the review code lists cannot be read: {exc}") from exc


def finding_types(current: Code | None = None, *, slide: bool = False) -> tuple[Code, ...]:
    """Finding types to offer (pathology ones for a finding on a whole-slide image);
    ``current`` (the finding's own) first when not listed."""
    return _with(current, _load()["slide_finding_types" if slide else "finding_types"])


def sites(current: Code | None = None, *, slide: bool = False) -> tuple[Code, ...]:
    return _with(current, _load()["slide_sites" if slide else "sites"])


def _with(current: Code | None, listed: tuple[Code, ...]) -> tuple[Code, ...]:
    if current is None or any(c.same_concept(current) for c in listed):
        return listed
    return (current, *listed)
