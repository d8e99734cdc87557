"""Which critical findings are unread, and which are announced (app/worklist/alerts.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from app.domain import AIStatus, Code, Finding, ReviewState, StudyRef, Urgency, WorklistItem
from app.worklist.alerts import CriticalAlerts
from app.worklist.service import Worklist
from tests.support.dicom_data import ALGO


def _item(uid: str, *urgencies: Urgency, review: ReviewState = ReviewState.NONE) -> WorklistItem:
    findings = tuple(
        Finding(
            tracking_uid=f"{uid}.{n}",
            finding=Code("50960005", "SCT", "Hemorrhage"),
            site=None,
            certainty=0.9,
            urgency=u,
            algorithm=ALGO,
            regions=(),
            measurements=(),
            source_sop_uid=f"{uid}.99",
        )
        for n, u in enumerate(urgencies)
    )
    return WorklistItem(
        study=StudyRef(study_uid=uid, description="CT HEAD", modalities=("CT",)),
        rank=1,
        score=0.0,
        reason="",
        ai_status=AIStatus.DONE,
        critical=Urgency.CRITICAL in urgencies,
        findings=findings,
        review=review,
    )


def _worklist(*items: WorklistItem) -> Worklist:
    return Worklist(items=items, refreshed_at=datetime.now(UTC), errors=(), archive_description="t")


def test_findings_there_at_start_are_unread_but_not_announced() -> None:
    alerts = CriticalAlerts()
    assert alerts.update(_worklist(_item("1", Urgency.CRITICAL, Urgency.ROUTINE))) == []
    assert [a.tracking_uid for a in alerts.unread()] == ["1.0"]


def test_a_new_critical_finding_is_announced_once() -> None:
    alerts = CriticalAlerts()
    alerts.update(_worklist(_item("1", Urgency.URGENT)))
    new = alerts.update(_worklist(_item("1", Urgency.URGENT), _item("2", Urgency.CRITICAL)))
    assert [(a.study_uid, a.finding, a.modality) for a in new] == [("2", "Hemorrhage", "CT")]
    assert alerts.update(_worklist(_item("1", Urgency.URGENT), _item("2", Urgency.CRITICAL))) == []
    assert len(alerts.unread()) == 1


def test_opening_or_reviewing_a_study_reads_its_findings() -> None:
    alerts = CriticalAlerts()
    alerts.update(_worklist(_item("1", Urgency.CRITICAL), _item("2", Urgency.CRITICAL)))
    alerts.mark_read("1")
    assert [a.study_uid for a in alerts.unread()] == ["2"]
    reviewed = replace(_item("2", Urgency.CRITICAL), review=ReviewState.REVIEWED)
    alerts.update(_worklist(_item("1", Urgency.CRITICAL), reviewed))
    assert alerts.unread() == []
    # A critical finding that arrives later for an opened study is news again; none for
    # a reviewed one.
    later = alerts.update(
        _worklist(
            _item("1", Urgency.CRITICAL, Urgency.CRITICAL),
            replace(_item("2", Urgency.CRITICAL, Urgency.CRITICAL), review=ReviewState.REVIEWED),
        )
    )
    assert [a.tracking_uid for a in later] == ["1.1"]
    assert [a.tracking_uid for a in alerts.unread()] == ["1.1"]
