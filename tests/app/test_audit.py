"""The audit trail: HMAC chain, tamper detection, keyring rules, concurrency, DICOM export, CLI."""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import sqlite3
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest
from keyring.backend import KeyringBackend

from app.audit import cli
from app.audit.dicom_export import audit_message, export_dicom_audit_messages
from app.audit.events import AuditEvent, EventKind, Outcome
from app.audit.key import KEY_USER, check_keyring_backend
from app.audit.log import AuditLog
from app.errors import AuditError
from app.security.http_auth import KEYRING_SERVICE

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
STUDY = "1.2.826.0.1.3680043.8.498.1"
SOPS = ("1.2.826.0.1.3680043.8.498.1.1", "1.2.826.0.1.3680043.8.498.1.2")


def _event(i: int, kind: EventKind = EventKind.DECISION, **kw: object) -> AuditEvent:
    fields: dict[str, object] = {
        "kind": kind,
        "user": "dr.reader",
        "study_uid": STUDY,
        "sop_uids": SOPS,
        "patient_id": "PAT-001",
        "patient_name": "Doe^Jane",
        "details": {"finding": f"F{i}", "verdict": "confirmed", "n": i},
        "time": T0 + timedelta(minutes=i),
    }
    fields.update(kw)
    return AuditEvent(**fields)  # type: ignore[arg-type]


@pytest.fixture()
def log(tmp_path: Path, memory_keyring: object) -> AuditLog:
    audit = AuditLog(tmp_path / "audit.sqlite3")
    for i in range(1, 6):
        audit.append(_event(i))
    yield audit  # type: ignore[misc]
    audit.close()


def _raw(log: AuditLog, *statements: str) -> None:
    """Tamper with the file the way someone with a SQLite tool would."""
    conn = sqlite3.connect(log.path)
    with conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()


# -- the chain ------------------------------------------------------------------------------


def test_append_and_verify(log: AuditLog, memory_keyring: object) -> None:
    assert len(log) == 5
    result = log.verify()
    assert result.ok and result.entries == 5 and result.first_bad_seq is None
    assert result.message() == "5 entries, chain intact"
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[2].event == _event(3)  # every field round-trips, patient facts included


def test_key_is_made_once_and_kept_in_the_keyring(tmp_path: Path, memory_keyring: object) -> None:
    with AuditLog(tmp_path / "a.sqlite3") as first:
        first.append(_event(1))
    stored = keyring.get_password(KEYRING_SERVICE, KEY_USER)
    assert stored is not None and len(base64.b64decode(stored)) == 32
    with AuditLog(tmp_path / "a.sqlite3") as again:
        again.append(_event(2))
        assert again.verify().ok
    assert keyring.get_password(KEYRING_SERVICE, KEY_USER) == stored


@pytest.mark.parametrize(
    "sql",
    [
        """UPDATE audit_entry SET details = '{"finding":"F3","n":3,"verdict":"no"}' WHERE seq = 3""",
        "UPDATE audit_entry SET user = 'someone.else' WHERE seq = 3",
        "UPDATE audit_entry SET outcome = 4 WHERE seq = 3",
        "UPDATE audit_entry SET time = '2026-03-01T07:00:00.000000Z' WHERE seq = 3",
        "UPDATE audit_entry SET patient_name = 'Roe^Richard' WHERE seq = 3",
        "UPDATE audit_entry SET sop_uids = '[]' WHERE seq = 3",
    ],
    ids=["details", "user", "outcome", "time", "patient_name", "sop_uids"],
)
def test_an_edited_entry_is_named(log: AuditLog, sql: str) -> None:
    _raw(log, sql)
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3
    assert "entry 3" in result.message()


def test_a_removed_entry_is_named(log: AuditLog) -> None:
    _raw(log, "DELETE FROM audit_entry WHERE seq = 3")
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3 and "missing" in result.reason


def test_a_removed_entry_is_named_even_when_the_rest_is_renumbered(log: AuditLog) -> None:
    _raw(
        log,
        "DELETE FROM audit_entry WHERE seq = 3",
        "UPDATE audit_entry SET seq = 3 WHERE seq = 4",
        "UPDATE audit_entry SET seq = 4 WHERE seq = 5",
        "UPDATE audit_head SET seq = 4",
    )
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3


def test_swapped_entries_are_named(log: AuditLog) -> None:
    _raw(
        log,
        "UPDATE audit_entry SET seq = -2 WHERE seq = 2",
        "UPDATE audit_entry SET seq = 2 WHERE seq = 4",
        "UPDATE audit_entry SET seq = 4 WHERE seq = -2",
    )
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_an_inserted_entry_is_named(log: AuditLog) -> None:
    _raw(
        log,
        "INSERT INTO audit_entry SELECT 6, time, kind, user, outcome, study_uid, sop_uids, "
        "patient_id, patient_name, details, mac FROM audit_entry WHERE seq = 5",
        "UPDATE audit_head SET seq = 6",
    )
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 6


def test_a_cut_tail_is_detected_and_stays_detected_after_more_appends(log: AuditLog) -> None:
    _raw(log, "DELETE FROM audit_entry WHERE seq >= 4")
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 4 and "cut after entry 3" in result.reason
    log.append(_event(6))  # the next entry chains to the signed head (5), not to 3
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 4


def test_a_removed_or_edited_head_is_detected(log: AuditLog) -> None:
    _raw(log, "UPDATE audit_head SET seq = 4")
    assert not log.verify().ok
    _raw(log, "DELETE FROM audit_head")
    result = log.verify()
    assert not result.ok and "head" in result.reason
    with pytest.raises(AuditError, match="no signed head"):
        log.append(_event(6))


def test_the_wrong_key_fails_every_entry(log: AuditLog) -> None:
    other = AuditLog(log.path, key=bytes(range(32)))
    result = other.verify()
    assert not result.ok and result.first_bad_seq == 1 and "key" in result.reason
    with pytest.raises(AuditError, match="not the key"):
        other.append(_event(6))
    other.close()
    assert log.verify().ok  # the refused append left nothing behind


def test_no_key_in_the_keyring_is_an_error_for_a_non_empty_log(log: AuditLog) -> None:
    keyring.delete_password(KEYRING_SERVICE, KEY_USER)
    with AuditLog(log.path) as fresh, pytest.raises(AuditError, match="no audit key"):
        fresh.verify()


def test_append_many_is_one_transaction(log: AuditLog) -> None:
    assert log.append_many([_event(6), _event(7, EventKind.SUBMIT)]) == [6, 7]
    assert log.append_many([]) == []
    assert log.verify().entries == 7


def test_bad_events_are_refused() -> None:
    with pytest.raises(AuditError, match="timezone-aware"):
        _event(1, time=datetime(2026, 3, 1, 8, 0))
    with pytest.raises(AuditError, match="JSON"):
        _event(1, details={"when": datetime.now(UTC)})
    with pytest.raises(AuditError, match="outcome"):
        _event(1, outcome=3)
    with pytest.raises(AuditError, match="kind"):
        _event(1, kind="coffee_break")


# -- the keyring rules ----------------------------------------------------------------------


def _fake_backend(module: str, name: str, priority: float) -> KeyringBackend:
    """A stand-in named like keyrings.alt's plaintext backend (keyrings.alt is not installed)."""
    cls = type(
        name,
        (KeyringBackend,),
        {
            "priority": priority,
            "__module__": module,
            "get_password": lambda self, s, u: None,
            "set_password": lambda self, s, u, p: None,
            "delete_password": lambda self, s, u: None,
        },
    )
    return cls()  # type: ignore[no-any-return]


def _insecure_backends() -> list[KeyringBackend]:
    backends: list[KeyringBackend] = [
        keyring.backends.fail.Keyring(),
        keyring.backends.null.Keyring(),
    ]
    try:
        from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-not-found]

        backends.append(PlaintextKeyring())
    except ImportError:
        backends.append(_fake_backend("keyrings.alt.file", "PlaintextKeyring", 0.5))
    backends.append(_fake_backend("somewhere.else", "PlaintextKeyring", 1))
    return backends


@pytest.mark.parametrize("index", range(4), ids=["fail", "null", "alt-plaintext", "plaintext"])
def test_insecure_keyring_backends_are_refused(tmp_path: Path, index: int) -> None:
    backend = _insecure_backends()[index]
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        with AuditLog(tmp_path / "a.sqlite3") as audit, pytest.raises(AuditError) as err:
            audit.append(_event(1))
        assert type(backend).__name__ in str(err.value) and "secure OS keyring" in str(err.value)
        with AuditLog(tmp_path / "a.sqlite3") as reopened:
            assert len(reopened) == 0
    finally:
        keyring.set_keyring(previous)


def test_a_chain_with_a_plaintext_member_is_refused(memory_keyring: KeyringBackend) -> None:
    from keyring.backends.chainer import ChainerBackend

    class Chain(ChainerBackend):  # a chain as keyring builds it when several backends are viable
        backends: ClassVar = [memory_keyring, _insecure_backends()[2]]

    chain = Chain()
    with pytest.raises(AuditError, match="PlaintextKeyring"):
        check_keyring_backend(chain)
    check_keyring_backend(memory_keyring)  # the test backend itself is accepted


# -- concurrency ----------------------------------------------------------------------------


def test_four_threads_appending_keep_the_chain(tmp_path: Path, memory_keyring: object) -> None:
    audit = AuditLog(tmp_path / "a.sqlite3")
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(50):
                audit.append(_event(i, user=f"reader{t}"))
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    result = audit.verify()
    assert result.ok and result.entries == 200
    audit.close()


def _append_in_child(path: str, key: bytes, user: str, count: int) -> None:
    with AuditLog(path, key=key) as audit:
        for i in range(count):
            audit.append(_event(i, user=user))


def test_two_processes_appending_keep_the_chain(tmp_path: Path) -> None:
    key = bytes(range(32, 64))
    path = str(tmp_path / "a.sqlite3")
    AuditLog(path, key=key).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_in_child, args=(path, key, f"p{n}", 25)) for n in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with AuditLog(path, key=key) as audit:
        result = audit.verify()
    assert result.ok and result.entries == 50


# -- DICOM PS3.15 A.5 export ----------------------------------------------------------------

# Per PS3.15 A.5.1: element -> (allowed attributes, allowed child elements in schema order).
_CODED = {"csd-code", "codeSystemName", "displayName", "originalText"}
SCHEMA: dict[str, tuple[set[str], list[str]]] = {
    "AuditMessage": (
        set(),
        [
            "EventIdentification",
            "ActiveParticipant",
            "AuditSourceIdentification",
            "ParticipantObjectIdentification",
        ],
    ),
    "EventIdentification": (
        {"EventActionCode", "EventDateTime", "EventOutcomeIndicator"},
        ["EventID", "EventTypeCode", "EventOutcomeDescription"],
    ),
    "EventID": (_CODED, []),
    "EventTypeCode": (_CODED, []),
    "EventOutcomeDescription": (set(), []),
    "ActiveParticipant": (
        {
            "UserID",
            "AlternativeUserID",
            "UserName",
            "UserIsRequestor",
            "NetworkAccessPointID",
            "NetworkAccessPointTypeCode",
        },
        ["RoleIDCode", "MediaIdentifier"],
    ),
    "RoleIDCode": (_CODED, []),
    "AuditSourceIdentification": (
        {"AuditEnterpriseSiteID", "AuditSourceID"},
        ["AuditSourceTypeCode"],
    ),
    "AuditSourceTypeCode": (_CODED, []),
    "ParticipantObjectIdentification": (
        {
            "ParticipantObjectID",
            "ParticipantObjectTypeCode",
            "ParticipantObjectTypeCodeRole",
            "ParticipantObjectDataLifeCycle",
            "ParticipantObjectSensitivity",
        },
        [
            "ParticipantObjectIDTypeCode",
            "ParticipantObjectName",
            "ParticipantObjectQuery",
            "ParticipantObjectDetail",
            "ParticipantObjectDescription",
        ],
    ),
    "ParticipantObjectIDTypeCode": (_CODED, []),
    "ParticipantObjectName": (set(), []),
    "ParticipantObjectQuery": (set(), []),
    "ParticipantObjectDescription": (
        set(),
        [
            "MPPS",
            "Accession",
            "SOPClass",
            "ParticipantObjectContainsStudy",
            "Encrypted",
            "Anonymized",
        ],
    ),
    "SOPClass": ({"UID", "NumberOfInstances"}, ["Instance"]),
    "Instance": ({"UID"}, []),
}
REQUIRED_ATTRS = {
    "EventIdentification": {"EventDateTime", "EventOutcomeIndicator"},
    "EventID": {"csd-code", "codeSystemName", "originalText"},
    "ActiveParticipant": {"UserID", "UserIsRequestor"},
    "AuditSourceIdentification": {"AuditSourceID"},
    "ParticipantObjectIdentification": {"ParticipantObjectID"},
    "ParticipantObjectIDTypeCode": {"csd-code", "codeSystemName", "originalText"},
    "SOPClass": {"NumberOfInstances"},
}


def _check_structure(el: ET.Element) -> None:
    """A stand-in for schema validation: no XSD/RNG of the DICOM audit schema is available here."""
    attrs, children = SCHEMA[el.tag]
    assert set(el.attrib) <= attrs, (el.tag, el.attrib)
    assert REQUIRED_ATTRS.get(el.tag, set()) <= set(el.attrib), (el.tag, el.attrib)
    order = [children.index(child.tag) for child in el]
    assert order == sorted(order), (el.tag, [c.tag for c in el])
    for child in el:
        _check_structure(child)
    if el.tag == "AuditMessage":
        tags = [c.tag for c in el]
        assert (
            tags.count("EventIdentification") == 1 and tags.count("AuditSourceIdentification") == 1
        )
        assert "ActiveParticipant" in tags
    if el.tag == "ParticipantObjectIdentification":
        tags = [c.tag for c in el]
        assert tags[0] == "ParticipantObjectIDTypeCode"
        assert ("ParticipantObjectName" in tags) != ("ParticipantObjectQuery" in tags)


def _export_fixture(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "a.sqlite3")
    kinds = [
        (EventKind.SIGN_IN, {}),
        (EventKind.QUERY, {"query": "StudyDate=20260301"}),
        (EventKind.STUDY_OPENED, {}),
        (EventKind.DECISION, {}),
        (EventKind.SEND, {"destination": "https://pacs.example/dicom-web"}),
        (EventKind.SEND_OUTCOME, {"destination": "https://pacs.example/dicom-web"}),
        (EventKind.EXPORT, {}),
        (EventKind.CONTEXT_CHANGE, {}),
    ]
    for i, (kind, details) in enumerate(kinds, start=1):
        no_study = kind in (EventKind.SIGN_IN, EventKind.QUERY)
        audit.append(
            _event(
                i,
                kind,
                details=details,
                study_uid=None if no_study else STUDY,
                patient_id=None if no_study else "PAT-001",
            )
        )
    audit.append(
        _event(
            20,
            EventKind.SEND_OUTCOME,
            outcome=Outcome.SERIOUS_FAILURE,
            details={"outcome_description": "HTTP 403 Forbidden"},
        )
    )
    return audit


def test_export_writes_dicom_audit_messages(tmp_path: Path, memory_keyring: object) -> None:
    audit = _export_fixture(tmp_path)
    xml = export_dicom_audit_messages(audit, T0, T0 + timedelta(minutes=9))
    root = ET.fromstring(xml)
    assert root.tag == "AuditMessages"
    messages = root.findall("AuditMessage")
    for msg in messages:
        _check_structure(msg)
    codes = [m.find("EventIdentification/EventID").get("csd-code") for m in messages]  # type: ignore[union-attr]
    # context_change has no DICOM event; the 20-minute send outcome is outside the window
    assert codes == ["110114", "110112", "110103", "110103", "110102", "110104", "110106"]
    for m in messages:
        assert m.find("EventIdentification/EventID").get("codeSystemName") == "DCM"  # type: ignore[union-attr]
        user = m.find("ActiveParticipant")
        assert user is not None and user.get("UserID") == "dr.reader"
        assert user.get("UserIsRequestor") == "true"
    sign_in = messages[0].find("EventIdentification")
    assert sign_in is not None and sign_in.get("EventActionCode") == "E"
    assert sign_in.get("EventDateTime") == "2026-03-01T08:01:00.000000Z"
    assert sign_in.find("EventTypeCode").get("csd-code") == "110122"  # type: ignore[union-attr]

    opened = messages[2]
    objects = {
        o.find("ParticipantObjectIDTypeCode").get("csd-code"): o  # type: ignore[union-attr]
        for o in opened.findall("ParticipantObjectIdentification")
    }
    study = objects["110180"]
    assert study.get("ParticipantObjectID") == STUDY
    assert study.get("ParticipantObjectTypeCode") == "2"
    assert study.get("ParticipantObjectTypeCodeRole") == "3"
    assert [i.get("UID") for i in study.iter("Instance")] == list(SOPS)
    patient = objects["2"]
    assert patient.get("ParticipantObjectID") == "PAT-001"
    assert patient.get("ParticipantObjectTypeCode") == "1"
    assert patient.get("ParticipantObjectTypeCodeRole") == "1"
    assert patient.findtext("ParticipantObjectName") == "Doe^Jane"

    query = messages[1].find("ParticipantObjectIdentification")
    assert query is not None and query.get("ParticipantObjectTypeCodeRole") == "24"
    assert base64.b64decode(query.findtext("ParticipantObjectQuery") or "") == b"StudyDate=20260301"
    roles = [r.get("csd-code") for r in messages[5].iter("RoleIDCode")]
    assert roles == ["110153", "110152"]

    later = ET.fromstring(
        export_dicom_audit_messages(audit, T0 + timedelta(minutes=15), T0 + timedelta(hours=1))
    )
    failed = later.find("AuditMessage/EventIdentification")
    assert failed is not None and failed.get("EventOutcomeIndicator") == "8"
    assert failed.findtext("EventOutcomeDescription") == "HTTP 403 Forbidden"
    audit.close()


def test_context_changes_are_not_exported(tmp_path: Path, memory_keyring: object) -> None:
    with AuditLog(tmp_path / "a.sqlite3") as audit:
        audit.append(_event(1, EventKind.CONTEXT_CHANGE))
        entry = next(audit.entries())
    assert audit_message(entry) is None


# -- the CLI --------------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="companion")
    cli.add_parsers(parser.add_subparsers(dest="command"))
    return cli.run(parser.parse_args(list(argv)))


def test_cli_verify(log: AuditLog, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("audit", "--db", str(log.path), "verify") == 0
    assert capsys.readouterr().out.strip() == "5 entries, chain intact"
    _raw(log, "UPDATE audit_entry SET user = 'mallory' WHERE seq = 2")
    assert _cli("audit", "--db", str(log.path), "verify") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "entry 2" in err[0]


def test_cli_verify_uses_the_default_path(
    memory_keyring: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli("audit", "verify") == 0
    assert "0 entries, chain intact" in capsys.readouterr().out
    with AuditLog() as audit:  # data_dir() honours $COMPANION_HOME (set by conftest)
        audit.append(_event(1))
    assert _cli("audit", "verify") == 0
    assert capsys.readouterr().out.strip() == "1 entries, chain intact"


def test_cli_export(
    tmp_path: Path, memory_keyring: object, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = _export_fixture(tmp_path)
    out = tmp_path / "out" / "audit.xml"
    args = [
        "audit",
        "--db",
        str(audit.path),
        "export",
        "--from",
        "2026-03-01T08:00:00",
        "--to",
        "2026-03-01T08:04:00Z",
        "--output",
        str(out),
    ]
    assert _cli(*args) == 0
    assert "wrote 3 audit messages" in capsys.readouterr().out
    root = ET.parse(out).getroot()
    assert [m.findtext("EventIdentification/EventID") is not None for m in root] == [True] * 3
    assert _cli("audit", "--db", str(audit.path), "export") == 0
    assert len(ET.fromstring(capsys.readouterr().out).findall("AuditMessage")) == 8
    with pytest.raises(SystemExit):
        _cli("audit", "--db", str(audit.path), "export", "--from", "yesterday")
    audit.close()
