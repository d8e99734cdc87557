"""DICOM PS3.15 A.5 audit messages (XML) from the audit log.

Element and attribute names follow the DICOM Audit Message Schema (PS3.15 A.5.1,
RELAX NG): coded values carry ``csd-code``, ``codeSystemName`` and
``originalText``; ``EventIdentification`` holds ``EventID``, ``EventTypeCode``* and
``EventOutcomeDescription``? with the attributes ``EventActionCode``,
``EventDateTime`` and ``EventOutcomeIndicator``; then ``ActiveParticipant``+,
one ``AuditSourceIdentification`` and ``ParticipantObjectIdentification``*.

Document choice: ``export_dicom_audit_messages`` returns ONE XML document whose
root ``<AuditMessages>`` (our wrapper, not part of the DICOM schema) lists one
``<AuditMessage>`` per exported entry, in log order; each child is a complete
A.5 message that can be cut out and sent on its own (``audit_message`` builds one).

Kinds and their messages:
  study_opened, findings_shown  110103 DICOM Instances Accessed, action R
  decision, submit              110103 DICOM Instances Accessed, action C (an assessment
                                / SR is created from the accessed instances)
  send                          110102 Begin Transferring DICOM Instances, action E
  send_outcome                  110104 DICOM Instances Transferred, action R (A.5.3.7:
                                R when the sender cannot know whether the receiver held them)
  query                         110112 Query, action E
  sign_in, unlock               110114 User Authentication, type 110122 Login, action E
  sign_out, lock                110114 User Authentication, type 110123 Logout, action E
  export                        110106 Export, action R
  context_change                not exported (no DICOM event fits; it stays in the chain)
A failed entry's ``details["outcome_description"]`` becomes ``EventOutcomeDescription``;
a send's ``details["destination"]`` becomes a second ActiveParticipant (role Destination);
a query's ``details["query"]`` is the base64 ``ParticipantObjectQuery``. The schema
requires either ParticipantObjectName or ParticipantObjectQuery in every participant
object (A.5.3.3 says the same: Name is required when Query is absent), so a study object
is named by ``details["study_description"]`` or else by its Study Instance UID, and a
patient by the patient's name or else the patient ID.
"""

from __future__ import annotations

import base64
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from app.audit.events import EventKind, Outcome, format_time
from app.audit.log import AuditEntry, AuditLog
from app.settings import APP_NAME


@dataclass(frozen=True)
class Code:
    code: str
    scheme: str
    meaning: str


EV_INSTANCES_ACCESSED = Code("110103", "DCM", "DICOM Instances Accessed")
EV_BEGIN_TRANSFER = Code("110102", "DCM", "Begin Transferring DICOM Instances")
EV_INSTANCES_TRANSFERRED = Code("110104", "DCM", "DICOM Instances Transferred")
EV_EXPORT = Code("110106", "DCM", "Export")
EV_QUERY = Code("110112", "DCM", "Query")
EV_USER_AUTHENTICATION = Code("110114", "DCM", "User Authentication")
TYPE_LOGIN = Code("110122", "DCM", "Login")
TYPE_LOGOUT = Code("110123", "DCM", "Logout")
ROLE_SOURCE = Code("110153", "DCM", "Source Role ID")
ROLE_DESTINATION = Code("110152", "DCM", "Destination Role ID")
ID_STUDY_UID = Code("110180", "DCM", "Study Instance UID")
ID_SOP_CLASS_UID = Code("110181", "DCM", "SOP Class UID")
ID_PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")
# QIDO-RS searches are reported under the Study Root Query/Retrieve FIND model.
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"

# kind -> (EventID, EventActionCode, EventTypeCode or None)
EVENT_MAP: dict[EventKind, tuple[Code, str, Code | None]] = {
    EventKind.STUDY_OPENED: (EV_INSTANCES_ACCESSED, "R", None),
    EventKind.FINDINGS_SHOWN: (EV_INSTANCES_ACCESSED, "R", None),
    EventKind.DECISION: (EV_INSTANCES_ACCESSED, "C", None),
    EventKind.SUBMIT: (EV_INSTANCES_ACCESSED, "C", None),
    EventKind.SEND: (EV_BEGIN_TRANSFER, "E", None),
    EventKind.SEND_OUTCOME: (EV_INSTANCES_TRANSFERRED, "R", None),
    EventKind.QUERY: (EV_QUERY, "E", None),
    EventKind.SIGN_IN: (EV_USER_AUTHENTICATION, "E", TYPE_LOGIN),
    EventKind.UNLOCK: (EV_USER_AUTHENTICATION, "E", TYPE_LOGIN),
    EventKind.SIGN_OUT: (EV_USER_AUTHENTICATION, "E", TYPE_LOGOUT),
    EventKind.LOCK: (EV_USER_AUTHENTICATION, "E", TYPE_LOGOUT),
    EventKind.EXPORT: (EV_EXPORT, "R", None),
}


def default_source_id() -> str:
    return f"{APP_NAME}@{socket.gethostname()}"


def _coded(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return ET.SubElement(
        parent,
        tag,
        {"csd-code": code.code, "codeSystemName": code.scheme, "originalText": code.meaning},
    )


def _iso_utc(value: datetime) -> str:
    """xsd:dateTime in UTC with a Z suffix (PS3.15 A.5.2.5 wants UTC or an offset)."""
    return format_time(value)


def audit_message(entry: AuditEntry, source_id: str | None = None) -> ET.Element | None:
    """One A.5 ``<AuditMessage>`` for a log entry; None for kinds that have no DICOM event."""
    mapped = EVENT_MAP.get(entry.event.kind)
    if mapped is None:
        return None
    event_id, action, type_code = mapped
    ev = entry.event
    details = ev.details
    msg = ET.Element("AuditMessage")

    ident = ET.SubElement(
        msg,
        "EventIdentification",
        {
            "EventActionCode": action,
            "EventDateTime": _iso_utc(ev.time),
            "EventOutcomeIndicator": str(int(ev.outcome)),
        },
    )
    _coded(ident, "EventID", event_id)
    if type_code is not None:
        _coded(ident, "EventTypeCode", type_code)
    description = details.get("outcome_description")
    if ev.outcome != Outcome.SUCCESS and isinstance(description, str) and description:
        ET.SubElement(ident, "EventOutcomeDescription").text = description

    user = ET.SubElement(msg, "ActiveParticipant", {"UserID": ev.user, "UserIsRequestor": "true"})
    if ev.kind in (EventKind.SEND, EventKind.SEND_OUTCOME):
        _coded(user, "RoleIDCode", ROLE_SOURCE)
        destination = details.get("destination")
        if isinstance(destination, str) and destination:
            dest = ET.SubElement(
                msg, "ActiveParticipant", {"UserID": destination, "UserIsRequestor": "false"}
            )
            _coded(dest, "RoleIDCode", ROLE_DESTINATION)

    source = ET.SubElement(
        msg, "AuditSourceIdentification", {"AuditSourceID": source_id or default_source_id()}
    )
    # 1 = end-user display device (PS3.15 A.5.1.2.1)
    ET.SubElement(source, "AuditSourceTypeCode", {"csd-code": "1"})

    if ev.kind == EventKind.QUERY:
        query = ET.SubElement(
            msg,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": str(details.get("sop_class_uid") or STUDY_ROOT_FIND),
                "ParticipantObjectTypeCode": "2",  # system object
                "ParticipantObjectTypeCodeRole": "24",  # query
            },
        )
        _coded(query, "ParticipantObjectIDTypeCode", ID_SOP_CLASS_UID)
        text = str(details.get("query", ""))
        ET.SubElement(query, "ParticipantObjectQuery").text = base64.b64encode(
            text.encode("utf-8")
        ).decode("ascii")

    if ev.study_uid:
        study = ET.SubElement(
            msg,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": ev.study_uid,
                "ParticipantObjectTypeCode": "2",  # system object
                "ParticipantObjectTypeCodeRole": "3",  # report
            },
        )
        _coded(study, "ParticipantObjectIDTypeCode", ID_STUDY_UID)
        study_name = details.get("study_description")
        ET.SubElement(study, "ParticipantObjectName").text = (
            study_name if isinstance(study_name, str) and study_name else ev.study_uid
        )
        if ev.sop_uids:
            description_el = ET.SubElement(study, "ParticipantObjectDescription")
            sop_class = ET.SubElement(
                description_el, "SOPClass", {"NumberOfInstances": str(len(ev.sop_uids))}
            )
            sop_class_uid = details.get("sop_class_uid")
            if isinstance(sop_class_uid, str) and sop_class_uid and ev.kind != EventKind.QUERY:
                sop_class.set("UID", sop_class_uid)
            for uid in ev.sop_uids:
                ET.SubElement(sop_class, "Instance", {"UID": uid})

    if ev.patient_id:
        patient = ET.SubElement(
            msg,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": ev.patient_id,
                "ParticipantObjectTypeCode": "1",  # person
                "ParticipantObjectTypeCodeRole": "1",  # patient
            },
        )
        _coded(patient, "ParticipantObjectIDTypeCode", ID_PATIENT_NUMBER)
        ET.SubElement(patient, "ParticipantObjectName").text = ev.patient_name or ev.patient_id
    return msg


def export_dicom_audit_messages(
    log: AuditLog, start: datetime, end: datetime, source_id: str | None = None
) -> str:
    """All entries with start <= time < end as one XML document (see the module docstring)."""
    root = ET.Element("AuditMessages")
    for entry in log.entries(start, end):
        msg = audit_message(entry, source_id)
        if msg is not None:
            root.append(msg)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
