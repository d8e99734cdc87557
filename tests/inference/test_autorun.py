"""Auto-run rules pick the model and series for new studies without AI results."""

from __future__ import annotations

import pytest

from app.domain import SeriesRef
from app.errors import ConfigError
from inference.autorun import AutoRunRule, plan_autorun, rules_from_settings


def test_rules_match_modality_body_part_and_description() -> None:
    rules = rules_from_settings(
        [
            {
                "model": "ich_demo_ct",
                "modality": "CT",
                "body_part": ["HEAD"],
                "series_description": r"head|brain",
            },
            {"model": "disabled", "modality": "CT", "enabled": False},
        ]
    )
    series = [
        SeriesRef("1", "s-scout", "CT", "Scout", num_instances=2),
        SeriesRef("1", "s-axial", "CT", "Axial HEAD 3mm", num_instances=44),
        SeriesRef("1", "s-sr", "SR", "AI", num_instances=1),
    ]
    runs = plan_autorun(rules, series, {"s-axial": "HEAD", "s-scout": "HEAD"})
    assert [(r.series_uid, r.model) for r in runs] == [("s-axial", "ich_demo_ct")]
    assert plan_autorun(rules, series, {"s-axial": "CHEST"}) == []
    assert plan_autorun(rules, series, {"s-axial": "HEAD"}, available_models=[]) == []


def test_bad_rule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="series_description"):
        AutoRunRule.from_json({"model": "x", "series_description": "("})
    with pytest.raises(ConfigError, match="name a model"):
        AutoRunRule.from_json({})
