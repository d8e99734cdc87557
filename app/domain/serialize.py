"""Read back what the models' ``to_json`` wrote (drafts and decision rows in the journal).

Raises ``ValueError`` naming the field on malformed input.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.domain.models import Algorithm, Code, Finding, Measurement, Region, Urgency
from app.domain.review import Decision, Verdict


def _field(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise ValueError(f"saved finding data lacks {name!r}")
    return data[name]


def code_from_json(data: dict[str, Any] | None) -> Code | None:
    if data is None:
        return None
    return Code(str(data["code"]), str(data["scheme"]), str(data["meaning"]))


def _code(data: dict[str, Any]) -> Code:
    code = code_from_json(data)
    if code is None:
        raise ValueError("a required code is missing")
    return code


def region_from_json(data: dict[str, Any]) -> Region:
    frame = data.get("referenced_frame")
    return Region(
        graphic_type=str(_field(data, "graphic_type")),
        coordinates=tuple(tuple(float(v) for v in p) for p in _field(data, "coordinates")),
        referenced_sop_uid=data.get("referenced_sop_uid"),
        referenced_sop_class_uid=data.get("referenced_sop_class_uid"),
        referenced_frame=int(frame) if frame is not None else None,
        frame_of_reference_uid=data.get("frame_of_reference_uid"),
    )


def finding_from_json(data: dict[str, Any]) -> Finding:
    algorithm = _field(data, "algorithm")
    certainty = data.get("certainty")
    return Finding(
        tracking_uid=str(_field(data, "tracking_uid")),
        finding=_code(_field(data, "finding")),
        site=code_from_json(data.get("site")),
        certainty=float(certainty) if certainty is not None else None,
        urgency=Urgency[str(_field(data, "urgency")).upper()],
        algorithm=Algorithm(
            str(algorithm["name"]), str(algorithm["version"]), str(algorithm["manufacturer"])
        ),
        regions=tuple(region_from_json(r) for r in _field(data, "regions")),
        measurements=tuple(
            Measurement(_code(m["concept"]), float(m["value"]), _code(m["unit"]))
            for m in _field(data, "measurements")
        ),
        source_sop_uid=str(data.get("source_sop_uid", "")),
        template=str(data.get("template", "TID1500")),
        editable=bool(data.get("editable", True)),
        tracking_id=str(data.get("tracking_id", "")),
    )


def decision_from_json(data: dict[str, Any]) -> Decision:
    decided = data.get("decided_at")
    return Decision(
        tracking_uid=str(_field(data, "tracking_uid")),
        verdict=Verdict(_field(data, "verdict")),
        finding=finding_from_json(_field(data, "finding")),
        reason=code_from_json(data.get("reason")),
        comment=str(data.get("comment", "")),
        decided_at=datetime.fromisoformat(decided) if decided else None,
    )
