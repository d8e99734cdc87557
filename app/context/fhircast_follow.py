"""Which FHIRcast events change what the app follows (no I/O, no threads).

Rules (docs/fhircast.md names the spec page of each):
  * a duplicate (an event id seen before: the hub retried) is acknowledged, not followed;
  * a stale event (older ``timestamp`` than the event that set the current context) is
    acknowledged and ignored (spec 2-5: "Subscribers SHALL ignore messages with older
    timestamps than the message that established the current context");
  * a close of a study or report the app does not follow is ignored;
  * an open of what is already followed (the hub repeating the last open after a
    subscription, spec 2-4) is not delivered again;
  * a DiagnosticReport-select carries the study of the report in context.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from app.context.fhircast_model import ContextChange, context_change

log = logging.getLogger(__name__)

SEEN_IDS = 512  # event ids remembered to drop retried (duplicate) notifications


class ContextFollower:
    """Holds the followed context; calls ``deliver`` (and ``audit``) for each real change.

    ``on_event`` and ``on_current_context`` return the HTTP status for the spec 2-5
    response: 200, or 500 when ``deliver`` raised.
    """

    def __init__(
        self,
        deliver: Callable[[ContextChange], None],
        audit: Callable[[ContextChange], None] | None = None,
    ) -> None:
        self._deliver = deliver
        self._audit = audit
        self.current: ContextChange | None = None
        self._context_time: datetime | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._delivered_first = False

    def is_duplicate(self, event_id: str) -> bool:
        """True when ``event_id`` was seen before; otherwise remembers it."""
        if event_id in self._seen:
            return True
        self._seen[event_id] = None
        while len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return False

    def on_current_context(self, change: ContextChange) -> int:
        """The context fetched on (re)connect: always delivered the first time, later only
        when it differs from what is followed (it changed while the link was down)."""
        if self._delivered_first and change.same_context(self.current):
            return 200
        audit = change.kind == "open" or self.current is not None
        return self._follow(change, audit=audit)

    def on_event(
        self, event: str, context: list[dict[str, Any]], event_id: str, time: datetime | None
    ) -> int:
        change = context_change(event, context, event_id=event_id, timestamp=time)
        if change is None:
            log.debug("FHIRcast: event %s not followed", event)
            return 200
        if time is not None and self._context_time is not None and time < self._context_time:
            log.info("FHIRcast: stale %s ignored (older than the current context)", event)
            return 200
        current = self.current
        if (
            change.kind == "select"
            and current is not None
            and current.report_id
            and change.report_id in (None, current.report_id)
        ):
            change = _with_anchor(change, current)
        if change.kind == "close" and not _closes(change, current):
            log.info("FHIRcast: %s for a context not followed; ignored", event)
            return 200
        if time is not None:
            self._context_time = time
        if change.kind == "open" and change.same_context(current):
            return 200
        return self._follow(change, audit=True)

    def _follow(self, change: ContextChange, audit: bool) -> int:
        self.current = change
        self._delivered_first = True
        if audit and self._audit is not None:
            try:
                self._audit(change)
            except Exception:  # an audit failure must not stop following
                log.exception("FHIRcast: could not audit a context change")
        try:
            self._deliver(change)
        except Exception:  # the UI's handler; answered with 500 (spec 2-5)
            log.exception("FHIRcast: the context handler failed")
            return 500
        return 200


def _closes(change: ContextChange, current: ContextChange | None) -> bool:
    """Whether a close event closes what the app follows (not some other study or report)."""
    if current is None or current.kind == "close":
        return False
    if change.report_id and current.report_id:
        return change.report_id == current.report_id
    if change.study_uid and current.study_uid:
        return change.study_uid == current.study_uid
    return True  # the close names nothing comparable: follow it


def _with_anchor(select: ContextChange, current: ContextChange) -> ContextChange:
    """A select event names only the report; carry the study of the report in context."""
    return dataclasses.replace(
        current,
        kind="select",
        hub_event=select.hub_event,
        selected=select.selected,
        event_id=select.event_id,
        timestamp=select.timestamp,
        source="event",
    )
