"""Critical AI findings the reader has not looked at yet, and the ones that just arrived.

The sidecar's tray icon shows how many critical findings are unread; a desktop
notification announces each critical finding that appears between two worklist
refreshes (polling the archive; only new AI objects are fetched, see
``WorklistService``). The findings that were already there when the companion
started count as unread but are not announced: a start is not an alarm.
A finding is read once its study has been opened (a critical finding that arrives
later for that study is news again), or once the study is reviewed.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain import ReviewState, Urgency, WorklistItem
from app.worklist.service import Worklist


@dataclass(frozen=True)
class CriticalAlert:
    """One critical AI finding, without patient identifiers (a notification may be seen by others)."""

    study_uid: str
    tracking_uid: str
    finding: str  # e.g. "Intracranial hemorrhage"
    certainty: float | None
    modality: str
    description: str  # the study's description, e.g. "CT HEAD"


def _critical(item: WorklistItem) -> list[CriticalAlert]:
    return [
        CriticalAlert(
            study_uid=item.study.study_uid,
            tracking_uid=f.tracking_uid,
            finding=f.finding.meaning,
            certainty=f.certainty,
            modality="/".join(item.study.modalities),
            description=item.study.description,
        )
        for f in item.findings
        if f.urgency >= Urgency.CRITICAL
    ]


class CriticalAlerts:
    """Follows the worklist from refresh to refresh; plain state, no I/O."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._read: set[tuple[str, str]] = set()
        self._current: list[CriticalAlert] = []
        self._reviewed: set[str] = set()
        self._started = False

    def update(self, worklist: Worklist) -> list[CriticalAlert]:
        """Take a new worklist; the critical findings that are new since the last one."""
        current = [alert for item in worklist.items for alert in _critical(item)]
        self._reviewed = {
            i.study.study_uid for i in worklist.items if i.review is not ReviewState.NONE
        }
        new = [
            a
            for a in current
            if (a.study_uid, a.tracking_uid) not in self._seen and a.study_uid not in self._reviewed
        ]
        self._seen.update((a.study_uid, a.tracking_uid) for a in current)
        self._current = current
        first = not self._started
        self._started = True
        return [] if first else new

    def mark_read(self, study_uid: str) -> None:
        """The reader opened this study: its critical findings so far are no longer unread."""
        self._read.update(
            (a.study_uid, a.tracking_uid) for a in self._current if a.study_uid == study_uid
        )

    def unread(self) -> list[CriticalAlert]:
        """Critical findings in studies neither opened in this session nor reviewed."""
        return [
            a
            for a in self._current
            if (a.study_uid, a.tracking_uid) not in self._read and a.study_uid not in self._reviewed
        ]
