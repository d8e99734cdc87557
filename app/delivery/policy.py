"""What to do after a STOW-RS attempt: sent, retry later, park for the user, or look up first.

- **retry** (exponential backoff with jitter, 1 s .. 5 min; ``Retry-After`` honoured):
  the request certainly did not reach the server (connection refused, DNS, connect
  timeout), or the server said "later" (408, 429, 503 before reading the body).
- **unclear** (retry, but look the instance up by UID first): the request may have
  been stored — a read timeout, a connection reset mid-response, a 5xx, an answer
  that cannot be read.
- **park** (the user decides): 400, 401, 403, 404, 409, 413, 415 and any other 4xx,
  or a Failed SOP Sequence entry that is not "out of resources". Never retried in a loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

import requests
from pydicom.dataset import Dataset

from app.errors import ArchiveHTTPError, ArchiveUnreachable, NotFoundError

RETRY_STATUSES = frozenset({408, 429})
MIN_DELAY_S = 1.0
MAX_DELAY_S = 300.0
MAX_RETRY_AFTER_S = 3600.0

# PS3.4 Annex GG / PS3.18 Table 10.5.3-1 failure reasons (FailureReason, 0008,1197).
FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0112: "no such SOP instance",
    0x0122: "SOP class not supported",
    0x0124: "not authorized",
    0xA700: "out of resources",
    0xA900: "data set does not match SOP class",
    0xC000: "cannot understand",
    0xC122: "referenced transfer syntax not supported",
}


class Action(Enum):
    SENT = "sent"
    RETRY = "retry"
    UNCLEAR = "unclear"  # retry after looking the instance up by UID
    PARK = "park"


@dataclass(frozen=True)
class Outcome:
    action: Action
    reason: str
    server_message: str = ""
    retry_after_s: float | None = None
    unreachable: bool = False  # the archive could not be reached at all


def backoff_delay(
    attempts: int,
    *,
    rng: random.Random | None = None,
    base_s: float = MIN_DELAY_S,
    cap_s: float = MAX_DELAY_S,
) -> float:
    """Delay before the next try after ``attempts`` failed ones: base·2^n, capped, with
    "equal jitter" (a random half of it) so that many clients do not retry in step."""
    full = min(cap_s, base_s * (2 ** max(0, min(attempts, 30))))
    rng = rng or random.Random()
    return max(base_s, full / 2 + rng.uniform(0, full / 2))


def retry_delay(outcome: Outcome, attempts: int, rng: random.Random | None = None) -> float:
    delay = backoff_delay(attempts, rng=rng)
    if outcome.retry_after_s is not None:
        delay = max(delay, min(outcome.retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def classify_error(exc: BaseException) -> Outcome:
    """The outcome of a STOW-RS (or lookup) call that raised ``exc``."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(exc, NotFoundError):
        return Outcome(Action.PARK, "HTTP 404: the archive has no STOW-RS service at this URL",
                       _server_message(cause))
    if isinstance(exc, ArchiveHTTPError) or isinstance(cause, requests.exceptions.HTTPError):
        status = getattr(exc, "status", 0) or _status(cause)
        message = getattr(exc, "server_message", "") or _server_message(cause)
        return classify_status(status, message, _retry_after(cause))
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return Outcome(Action.RETRY, "connection timed out", unreachable=True)
    if isinstance(cause, requests.exceptions.ReadTimeout):
        return Outcome(Action.UNCLEAR, "no answer in time after the request was sent",
                       unreachable=True)
    if isinstance(cause, requests.exceptions.ChunkedEncodingError):
        return Outcome(Action.UNCLEAR, "connection broken while reading the answer")
    if isinstance(cause, requests.exceptions.ConnectionError):
        if _before_sending(cause):
            return Outcome(Action.RETRY, _short(exc), unreachable=True)
        return Outcome(Action.UNCLEAR, f"connection lost: {_short(exc)}", unreachable=True)
    if isinstance(exc, ArchiveUnreachable):
        return Outcome(Action.RETRY, _short(exc), unreachable=True)
    return Outcome(Action.UNCLEAR, f"unexpected answer: {_short(exc)}")


def classify_status(status: int, server_message: str = "",
                    retry_after_s: float | None = None) -> Outcome:
    reason = f"HTTP {status}"
    if status in RETRY_STATUSES:
        return Outcome(Action.RETRY, reason, server_message, retry_after_s)
    if status == 503 and retry_after_s is not None:
        return Outcome(Action.RETRY, reason, server_message, retry_after_s)
    if status >= 500:
        return Outcome(Action.UNCLEAR, reason, server_message, retry_after_s)
    if 200 <= status < 300:
        return Outcome(Action.UNCLEAR, f"{reason} without a readable answer", server_message)
    return Outcome(Action.PARK, reason + _STATUS_HINTS.get(status, ""), server_message)


_STATUS_HINTS = {
    400: ": the archive rejected the request",
    401: ": the archive needs you to sign in",
    403: ": the archive refused (not allowed)",
    409: ": the archive refused the object (conflict)",
    413: ": the object is too large for the archive",
    415: ": the archive does not accept this media type",
}


def classify_response(response: Dataset, sop_instance_uid: str) -> Outcome:
    """Read a STOW-RS 200/202 answer (PS3.18 10.5.3) for one instance."""
    for entry in getattr(response, "FailedSOPSequence", None) or []:
        if str(getattr(entry, "ReferencedSOPInstanceUID", "")) not in ("", sop_instance_uid):
            continue
        code = int(getattr(entry, "FailureReason", 0) or 0)
        reason = f"archive refused the instance: failure reason 0x{code:04X}"
        if code in FAILURE_REASONS:
            reason += f" ({FAILURE_REASONS[code]})"
        if 0xA700 <= code <= 0xA7FF:
            return Outcome(Action.UNCLEAR, reason)
        return Outcome(Action.PARK, reason)
    for entry in getattr(response, "ReferencedSOPSequence", None) or []:
        if str(getattr(entry, "ReferencedSOPInstanceUID", "")) == sop_instance_uid:
            warning = getattr(entry, "WarningReason", None)
            note = f"stored with warning 0x{int(warning):04X}" if warning is not None else ""
            return Outcome(Action.SENT, note)
    # An empty or foreign answer says nothing about our instance: look it up.
    return Outcome(Action.UNCLEAR, "the archive's answer does not list the instance")


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def _server_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if response is None:
        return ""
    return (response.text or "").strip().replace("\n", " ")[:1000]


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_NOT_SENT_MARKERS = (
    "NewConnectionError",
    "Connection refused",
    "Name or service not known",
    "Temporary failure in name resolution",
    "No route to host",
    "CERTIFICATE_VERIFY_FAILED",
    "SSLError",
    "Failed to establish",
)


def _before_sending(exc: BaseException) -> bool:
    """True when the connection failed before any byte of the request left."""
    if isinstance(exc, requests.exceptions.SSLError):
        return True
    text = f"{type(exc).__name__} {exc}"
    return any(marker in text for marker in _NOT_SENT_MARKERS)


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
