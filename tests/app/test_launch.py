"""Launch requests: ``companion://`` links, --open and --accession (what installers register)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.archive.client import open_dicomweb, open_local
from app.context.launch import LaunchError, LaunchRequest, parse_launch_url, study_for_request
from app.main import _launch_request, parse_args
from tests.support import dicom_data, orthanc

UID = "1.2.826.0.1.3680043.8.498.1"


@pytest.mark.parametrize(
    "url",
    [
        f"companion://open?study={UID}",
        f"COMPANION://OPEN?StudyInstanceUID={UID}",
        f"companion:open?study={UID}",
        f"companion://open/?study=%20{UID}",
    ],
)
def test_study_links(url: str) -> None:
    assert parse_launch_url(url) == LaunchRequest(study_uid=UID)


def test_accession_link() -> None:
    assert parse_launch_url("companion://open?accession=A%2F17") == LaunchRequest(accession="A/17")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://open?study=1.2", "not a companion"),
        ("companion://delete?study=1.2", "unknown action"),
        ("companion://open", "exactly one"),
        ("companion://open?study=1.2&accession=A1", "exactly one"),
        ("companion://open?study=1.2&study=1.3", "exactly one"),
        ("companion://open?study=1.2&patient=X", "unknown parameter"),
        ("companion://open?study=1.02.3", "not a valid Study Instance UID"),
        ("companion://open?study=1.2.abc", "not a valid Study Instance UID"),
        ("companion://open?study=" + "1." * 40 + "1", "not a valid Study Instance UID"),
        ("companion://open?accession=", "not a valid Accession Number"),
        ("companion://open?accession=12345678901234567", "not a valid Accession Number"),
    ],
)
def test_bad_links_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(LaunchError, match=why):
        parse_launch_url(url)


def test_a_bare_link_argument_becomes_the_launch_request() -> None:
    args = parse_args(["--demo", f"companion://open?study={UID}"])
    assert args.demo and args.url == f"companion://open?study={UID}"
    assert _launch_request(args) == (LaunchRequest(study_uid=UID), "")


def test_a_bad_link_opens_the_window_with_the_reason_but_a_bad_option_ends_the_command() -> None:
    request, message = _launch_request(parse_args(["companion://open?study=x"]))
    assert request is None and message.startswith("The link could not be followed")
    with pytest.raises(LaunchError):
        _launch_request(parse_args(["--open", "not-a-uid"]))
    with pytest.raises(SystemExit):  # argparse: at most one of them
        parse_args(["--open", UID, "--accession", "A1"])


def _two_studies() -> list:  # type: ignore[type-arg]
    first, second = dicom_data.image("a", prefix="launch"), dicom_data.image("b", prefix="launch")
    first.AccessionNumber, second.AccessionNumber = "ACC1", "ACC2"
    return [first, second]


@pytest.mark.orthanc
def test_accession_is_looked_up_on_a_dicomweb_archive(empty_orthanc: orthanc.OrthancServer) -> None:
    studies = _two_studies()
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store(studies)
    found = study_for_request(LaunchRequest(accession="ACC2"), archive)
    assert found == (studies[1].StudyInstanceUID, "")
    uid, message = study_for_request(LaunchRequest(accession="NOPE"), archive)
    assert uid is None and "No study" in message


def test_accession_is_checked_where_the_archive_ignores_the_filter(tmp_path: Path) -> None:
    # dicomweb-client's file archive (the offline demo) answers every study to an
    # Accession Number query: the answers are filtered again.
    studies = _two_studies()
    archive = open_local(tmp_path / "archive")
    archive.store(studies)
    assert study_for_request(LaunchRequest(accession="ACC1"), archive) == (
        studies[0].StudyInstanceUID,
        "",
    )
    third = dicom_data.image("c", prefix="launch")
    third.AccessionNumber = "ACC1"
    archive.store([third])
    uid, message = study_for_request(LaunchRequest(accession="ACC1"), archive)
    assert uid is None and "several studies" in message
