"""One study's review in progress: the AI findings, the reader's decisions, undo/redo.

The session is the model the finding cards and the image editor adapt (DESIGN.md
§3.1): every reader action is a call here, and every change is announced to the
listeners. It has no I/O; ``app.review.store`` keeps a draft of it and
``app.review.submit`` turns it into SRs in the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app.domain import (
    AIResult,
    Algorithm,
    Assessment,
    Code,
    Decision,
    Finding,
    Reader,
    Region,
    Urgency,
    Verdict,
)
from app.errors import NotPermitted, ReviewError
from app.results import codes

log = logging.getLogger(__name__)

# Added findings carry no algorithm: the edited SR writes no TID 4019 for them.
READER_ALGORITHM = Algorithm(name="", version="", manufacturer="")


@dataclass(frozen=True)
class ReviewItem:
    """One card: the AI's finding (None for an added one) and the reader's decision."""

    original: Finding | None
    decision: Decision | None

    @property
    def tracking_uid(self) -> str:
        return self.decision.tracking_uid if self.decision else self.current.tracking_uid

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict if self.decision else Verdict.UNDECIDED

    @property
    def current(self) -> Finding:
        """The finding as it stands now (the reader's version once modified)."""
        if self.decision is not None:
            return self.decision.finding
        assert self.original is not None  # an item without a decision is an AI finding
        return self.original


@dataclass(frozen=True)
class _Change:
    tracking_uid: str
    before: Decision | None
    after: Decision | None
    label: str


class ReviewSession:
    """Decisions on the editable AI findings of one study, with undo/redo.

    ``results`` are the study's AI results; only readable TID 1500 findings can be
    decided (the others are shown read-only). ``new_uid`` makes Tracking UIDs for
    added findings; ``clock`` stamps decisions (UTC).
    """

    def __init__(
        self,
        study_uid: str,
        results: Sequence[AIResult],
        reader: Reader,
        *,
        new_uid: Callable[[], str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: bool = False,
    ) -> None:
        self.study_uid = study_uid
        # An observer (the connection profile's role) sees the findings but may not
        # decide, undo, restore a draft or submit (NotPermitted).
        self.observer = observer
        self.reader = reader
        self.results = tuple(results)
        self._new_uid = new_uid
        self._clock = clock
        self._originals: dict[str, Finding] = {}
        self._read_only: list[Finding] = []
        for result in self.results:
            for finding in result.findings:
                if result.editable and finding.editable:
                    self._originals.setdefault(finding.tracking_uid, finding)
                else:
                    self._read_only.append(finding)
        self._decisions: dict[str, Decision] = {}
        self._added: list[str] = []  # tracking UIDs of added findings, in order
        self._undo: list[_Change] = []
        self._redo: list[_Change] = []
        self._listeners: list[Callable[[], None]] = []

    # -- observing -------------------------------------------------------------
    def subscribe(self, listener: Callable[[], None]) -> None:
        """``listener()`` is called after every change (decision, undo, redo, restore)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- reading ---------------------------------------------------------------
    @property
    def items(self) -> list[ReviewItem]:
        """The decidable findings: the AI's in their order, then the added ones."""
        out = [
            ReviewItem(original, self._decisions.get(uid))
            for uid, original in self._originals.items()
        ]
        out.extend(ReviewItem(None, self._decisions[uid]) for uid in self._added)
        return out

    @property
    def read_only(self) -> tuple[Finding, ...]:
        """Findings shown but not decidable (other templates, unreadable parts)."""
        return tuple(self._read_only)

    def item(self, tracking_uid: str) -> ReviewItem:
        if tracking_uid in self._originals:
            return ReviewItem(self._originals[tracking_uid], self._decisions.get(tracking_uid))
        if tracking_uid in self._added:
            return ReviewItem(None, self._decisions[tracking_uid])
        raise ReviewError(f"no decidable finding with Tracking UID {tracking_uid!r} in this study")

    def verdict(self, tracking_uid: str) -> Verdict:
        return self.item(tracking_uid).verdict

    def decisions(self) -> list[Decision]:
        """Every decision made, AI findings first, then added ones."""
        return [i.decision for i in self.items if i.decision is not None]

    def undecided(self) -> list[str]:
        return [i.tracking_uid for i in self.items if i.decision is None]

    @property
    def dirty(self) -> bool:
        """True when there are decisions not yet submitted."""
        return bool(self._decisions)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_text(self) -> str:
        return self._undo[-1].label if self._undo else ""

    def redo_text(self) -> str:
        return self._redo[-1].label if self._redo else ""

    # -- deciding --------------------------------------------------------------
    def confirm(self, tracking_uid: str, comment: str = "") -> None:
        original = self._original(tracking_uid, "confirm")
        self._apply(
            tracking_uid,
            self._decision(tracking_uid, Verdict.CONFIRMED, original, comment=comment),
            f"confirm {original.finding.meaning}",
        )

    def reject(self, tracking_uid: str, reason: Code, comment: str = "") -> None:
        original = self._original(tracking_uid, "reject")
        if not any(reason.same_concept(c) for c in codes.REJECT_REASONS.values()):
            raise ReviewError(
                f"reject reason must be one of the listed reasons, got {reason.meaning!r}"
            )
        if reason.same_concept(codes.REJECT_REASONS["other"]) and not comment.strip():
            raise ReviewError("a rejection for 'Other' needs a comment saying why")
        self._apply(
            tracking_uid,
            self._decision(
                tracking_uid, Verdict.REJECTED, original, reason=reason, comment=comment
            ),
            f"reject {original.finding.meaning}",
        )

    def modify(self, tracking_uid: str, finding: Finding, comment: str = "") -> None:
        """The reader's corrected version of a finding (or a changed added finding).

        The Tracking UID stays. A version equal to the AI's original counts as a
        confirmation; an added finding stays ADDED whatever is changed.
        """
        if finding.tracking_uid != tracking_uid:
            raise ReviewError(
                f"modify: the finding's Tracking UID {finding.tracking_uid!r} is not "
                f"{tracking_uid!r}"
            )
        _check_finding(finding)
        if tracking_uid in self._added:
            verdict = Verdict.ADDED
        else:
            original = self._original(tracking_uid, "modify")
            verdict = Verdict.CONFIRMED if finding == original else Verdict.MODIFIED
        self._apply(
            tracking_uid,
            self._decision(tracking_uid, verdict, finding, comment=comment),
            f"modify {finding.finding.meaning}",
        )

    def add(
        self,
        finding_type: Code,
        region: Region,
        *,
        site: Code | None = None,
        urgency: Urgency = Urgency.ROUTINE,
        comment: str = "",
    ) -> str:
        """A finding the AI missed; returns its new Tracking UID."""
        uid = self._new_uid()
        finding = Finding(
            tracking_uid=uid,
            finding=finding_type,
            site=site,
            certainty=None,
            urgency=urgency,
            algorithm=READER_ALGORITHM,
            regions=(region,),
            measurements=(),
            source_sop_uid="",
            tracking_id=f"reader: {finding_type.meaning}"[:64],
        )
        _check_finding(finding)
        self._apply(
            uid,
            self._decision(uid, Verdict.ADDED, finding, comment=comment),
            f"add {finding_type.meaning}",
        )
        return uid

    def clear(self, tracking_uid: str) -> None:
        """Back to undecided (an added finding is removed)."""
        item = self.item(tracking_uid)
        if item.decision is None:
            return
        self._apply(tracking_uid, None, f"clear {item.current.finding.meaning}")

    def check_may_decide(self) -> None:
        """Raise NotPermitted when the reader is an observer."""
        if self.observer:
            raise NotPermitted(
                "you are signed in as an observer on this archive: findings can be viewed "
                "but not confirmed, rejected, changed or submitted"
            )

    def undo(self) -> None:
        self.check_may_decide()
        if not self._undo:
            raise ReviewError("nothing to undo")
        change = self._undo.pop()
        self._set(change.tracking_uid, change.before)
        self._redo.append(change)
        self._changed()

    def redo(self) -> None:
        self.check_may_decide()
        if not self._redo:
            raise ReviewError("nothing to redo")
        change = self._redo.pop()
        self._set(change.tracking_uid, change.after)
        self._undo.append(change)
        self._changed()

    def restore(self, decisions: Sequence[Decision]) -> int:
        """Put back a saved draft's decisions (after a crash); returns how many applied.

        Decisions on findings that are no longer in the study are dropped and logged.
        The undo history starts empty.
        """
        self.check_may_decide()
        applied = 0
        for decision in decisions:
            uid = decision.tracking_uid
            if decision.verdict == Verdict.ADDED:
                if uid not in self._added:
                    self._added.append(uid)
            elif uid not in self._originals:
                log.warning("draft decision on a finding no longer in the study dropped")
                continue
            self._decisions[uid] = decision
            applied += 1
        self._undo.clear()
        self._redo.clear()
        if applied:
            self._changed()
        return applied

    # -- submitting ------------------------------------------------------------
    def assessments(self, completed_at: datetime | None = None) -> list[Assessment]:
        """One Assessment per assessed AI result, ready for the SR writers.

        Every AI finding must be decided. Added findings go with the first
        editable AI result (the one the reader reviewed first on screen).
        """
        undecided = self.undecided()
        if undecided:
            raise ReviewError(
                f"{len(undecided)} finding(s) not decided yet: confirm, reject or modify "
                "each one before submitting"
            )
        editable = [r for r in self.results if r.editable]
        if not editable:
            raise ReviewError("this study has no editable AI result to assess")
        when = completed_at or self._clock()
        assessments = []
        for n, result in enumerate(editable):
            uids = {f.tracking_uid for f in result.findings}
            decisions = [self._decisions[uid] for uid in self._originals if uid in uids]
            if n == 0:
                decisions.extend(self._decisions[uid] for uid in self._added)
            if decisions or n == 0:
                assessments.append(
                    Assessment(
                        study_uid=self.study_uid,
                        assessed=result,
                        decisions=tuple(decisions),
                        reader=self.reader,
                        completed_at=when,
                    )
                )
        return assessments

    # -- internals -------------------------------------------------------------
    def _original(self, tracking_uid: str, action: str) -> Finding:
        if tracking_uid in self._added:
            raise ReviewError(f"{action}: an added finding can only be modified or removed")
        original = self._originals.get(tracking_uid)
        if original is None:
            read_only = any(f.tracking_uid == tracking_uid for f in self._read_only)
            why = "is read-only (not a TID 1500 result)" if read_only else "is not in this study"
            raise ReviewError(f"{action}: finding {tracking_uid!r} {why}")
        return original

    def _decision(
        self,
        tracking_uid: str,
        verdict: Verdict,
        finding: Finding,
        *,
        reason: Code | None = None,
        comment: str = "",
    ) -> Decision:
        return Decision(
            tracking_uid=tracking_uid,
            verdict=verdict,
            finding=finding,
            reason=reason,
            comment=comment.strip(),
            decided_at=self._clock(),
        )

    def _apply(self, tracking_uid: str, after: Decision | None, label: str) -> None:
        self.check_may_decide()
        before = self._decisions.get(tracking_uid)
        if _same(before, after):
            return
        self._set(tracking_uid, after)
        self._undo.append(_Change(tracking_uid, before, after, label))
        self._redo.clear()
        self._changed()

    def _set(self, tracking_uid: str, decision: Decision | None) -> None:
        if decision is None:
            self._decisions.pop(tracking_uid, None)
            if tracking_uid in self._added:
                self._added.remove(tracking_uid)
            return
        if decision.verdict == Verdict.ADDED and tracking_uid not in self._added:
            self._added.append(tracking_uid)
        self._decisions[tracking_uid] = decision


def _same(a: Decision | None, b: Decision | None) -> bool:
    """Equal apart from when it was decided (re-confirming is not a new change)."""
    if a is None or b is None:
        return a is b
    return replace(a, decided_at=None) == replace(b, decided_at=None)


def _check_finding(finding: Finding) -> None:
    if finding.certainty is not None and not 0.0 <= finding.certainty <= 1.0:
        raise ReviewError(f"certainty must be within 0..1, got {finding.certainty!r}")
    for m in finding.measurements:
        if not m.value == m.value or m.value in (float("inf"), float("-inf")):
            raise ReviewError(f"{m.concept.meaning}: the value must be a number, got {m.value!r}")
    if finding.regions:
        region = finding.regions[0]
        if not region.coordinates:
            raise ReviewError("a region needs at least one point")
        if not region.is_3d and not region.referenced_sop_uid:
            raise ReviewError("a 2D region must name the image it is drawn on")
