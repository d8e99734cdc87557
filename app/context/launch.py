"""``companion://`` links and launch requests (the URL handler the installers register).

A PACS, a report or a chat message can start the companion on a study with

    companion://open?study=1.2.840.113619.2.55.3.604688119.969.1268071029.320
    companion://open?accession=A12345

``study`` (or ``StudyInstanceUID``) names the study directly; ``accession`` (or
``AccessionNumber``) is looked up in the archive. Anything else is refused with a
message that says what was wrong, so a mistyped link never opens the wrong study.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from app.errors import CompanionError

if TYPE_CHECKING:
    from app.archive.protocol import ImageArchive

SCHEME = "companion"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_STUDY_KEYS = ("study", "studyinstanceuid")
_ACCESSION_KEYS = ("accession", "accessionnumber")


class LaunchError(CompanionError):
    """A launch link or argument that cannot be followed."""

    exit_code = 2


@dataclass(frozen=True)
class LaunchRequest:
    """Which study to open: by Study Instance UID or by Accession Number (exactly one)."""

    study_uid: str | None = None
    accession: str | None = None


def is_launch_url(text: str) -> bool:
    return text.lower().startswith(f"{SCHEME}:")


def check_study_uid(uid: str) -> str:
    """``uid`` if it is a valid DICOM UID (PS3.5 §9.1), else a ``LaunchError`` naming it."""
    if (
        len(uid) > 64
        or not _UID.match(uid)
        or any(part != "0" and part.startswith("0") for part in uid.split("."))
    ):
        raise LaunchError(f"not a valid Study Instance UID: {uid!r}")
    return uid


def parse_launch_url(url: str) -> LaunchRequest:
    """The request a ``companion://open?...`` link makes; ``LaunchError`` for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != SCHEME:
        raise LaunchError(f"not a {SCHEME}:// link: {url!r}")
    # companion://open?... puts "open" in the host; companion:open?... in the path.
    action = (parts.netloc or parts.path.strip("/")).lower()
    if action != "open":
        raise LaunchError(f"unknown action {action!r} in {url!r} (only 'open' is known)")
    query = {k.lower(): v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(query) - set(_STUDY_KEYS) - set(_ACCESSION_KEYS))
    if unknown:
        raise LaunchError(f"unknown parameter(s) {', '.join(unknown)} in the link")
    studies = [v for k in _STUDY_KEYS for v in query.get(k, [])]
    accessions = [v for k in _ACCESSION_KEYS for v in query.get(k, [])]
    if len(studies) + len(accessions) != 1:
        raise LaunchError("a companion:// link must name exactly one study or accession number")
    if studies:
        return LaunchRequest(study_uid=check_study_uid(unquote(studies[0]).strip()))
    accession = unquote(accessions[0]).strip()
    if not accession or len(accession) > 16 or "\\" in accession:
        raise LaunchError(f"not a valid Accession Number: {accession!r}")
    return LaunchRequest(accession=accession)


def study_for_request(
    request: LaunchRequest | None, archive: ImageArchive
) -> tuple[str | None, str]:
    """The study UID a request names (an accession number is looked up in ``archive``),
    or None and a message for the window's status bar. Blocking when it looks up."""
    if request is None:
        return None, ""
    if request.study_uid:
        return request.study_uid, ""
    # Not every archive filters on Accession Number (the local demo archive ignores the
    # filter and answers every study): the answers are checked here too.
    studies = [
        s
        for s in archive.search_studies({"AccessionNumber": request.accession or ""})
        if s.accession == request.accession
    ]
    if len(studies) == 1:
        return studies[0].study_uid, ""
    # The window still opens (the worklist is useful) and says why no study was opened;
    # the accession number itself stays out of messages and logs.
    if not studies:
        return None, "No study with the requested accession number is in the archive"
    return None, "The requested accession number matches several studies: pick one in the worklist"
