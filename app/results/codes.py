"""Every code the app writes or looks for in AI result SRs, in one place.

docs/conformance.md lists the same codes; keep both in step. Standard codes
(DCM, SCT, UCUM) are preferred; the few private ones use the scheme
``99AIRC`` ("AI Review Companion") and are marked as private in the docs.
"""

from __future__ import annotations

from app.domain import Code, Urgency

PRIVATE_SCHEME = "99AIRC"

# --- TID 1500 structure --------------------------------------------------------
IMAGING_MEASUREMENT_REPORT = Code("126000", "DCM", "Imaging Measurement Report")
IMAGING_MEASUREMENTS = Code("126010", "DCM", "Imaging Measurements")
MEASUREMENT_GROUP = Code("125007", "DCM", "Measurement Group")
TRACKING_IDENTIFIER = Code("112039", "DCM", "Tracking Identifier")
TRACKING_UID = Code("112040", "DCM", "Tracking Unique Identifier")
FINDING = Code("121071", "DCM", "Finding")
FINDING_SITE = Code("363698007", "SCT", "Finding Site")
IMAGE_REGION = Code("111030", "DCM", "Image Region")
REFERENCED_SEGMENT = Code("121191", "DCM", "Referenced Segment")
SOURCE_SERIES_FOR_SEGMENTATION = Code("121232", "DCM", "Source series for segmentation")
ALGORITHM_NAME = Code("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION = Code("111003", "DCM", "Algorithm Version")
DEVICE_OBSERVER_MANUFACTURER = Code("121014", "DCM", "Device Observer Manufacturer")
DEVICE_OBSERVER_NAME = Code("121013", "DCM", "Device Observer Name")
# TID 1419 row 3: how a measurement was derived (mean, maximum, ...); dcmqi writes it.
DERIVATION = Code("121401", "DCM", "Derivation")

# --- what a finding carries ----------------------------------------------------
# Certainty of Finding (DCM 111012), numeric 0..1, unit "1" (UCUM unity).
CERTAINTY_OF_FINDING = Code("111012", "DCM", "Certainty of Finding")
UNITY = Code("1", "UCUM", "no units")
# There is no standard concept for how soon a finding needs a reader; a private
# qualitative evaluation carries it (documented in docs/conformance.md).
URGENCY = Code("URGENCY", PRIVATE_SCHEME, "AI result urgency")
URGENCY_VALUES: dict[Urgency, Code] = {
    Urgency.CRITICAL: Code("CRITICAL", PRIVATE_SCHEME, "Critical"),
    Urgency.URGENT: Code("URGENT", PRIVATE_SCHEME, "Urgent"),
    Urgency.ROUTINE: Code("ROUTINE", PRIVATE_SCHEME, "Routine"),
}


def urgency_from_code(code: Code) -> Urgency | None:
    """The urgency a coded value stands for, or None if it is not one of ours."""
    for urgency, value in URGENCY_VALUES.items():
        if value.same_concept(code):
            return urgency
    return None


# --- finding types and sites used by the demo and the built-in models ---------
INTRACRANIAL_HEMORRHAGE = Code("1386000", "SCT", "Intracranial hemorrhage")
PNEUMOTHORAX = Code("36118008", "SCT", "Pneumothorax")
NODULE = Code("27925004", "SCT", "Nodule")
MASS = Code("4147007", "SCT", "Mass")

BRAIN = Code("12738006", "SCT", "Brain")
LUNG = Code("39607008", "SCT", "Lung")
RIGHT_LUNG = Code("3341006", "SCT", "Right lung")
LEFT_LUNG = Code("44029006", "SCT", "Left lung")

# --- measurements --------------------------------------------------------------
VOLUME = Code("118565006", "SCT", "Volume")
DIAMETER = Code("81827009", "SCT", "Diameter")
AREA = Code("42798000", "SCT", "Area")
MILLILITER = Code("ml", "UCUM", "milliliter")
MILLIMETER = Code("mm", "UCUM", "millimeter")
SQUARE_MILLIMETER = Code("mm2", "UCUM", "square millimeter")

# --- the reader's assessment (issue 3; see docs/conformance.md) -------------------
# Reasons a reader gives for rejecting an AI finding, in the order the UI offers them.
# The keys are stable identifiers used in the UI and the outbox's decision rows. Standard
# codes where one means exactly the reason (DCM 122742 from CID 3114, SCT 74964007);
# the others have no standard concept we could find and are private. Private code
# values are at most 16 characters (VR SH).
REJECT_REASONS: dict[str, Code] = {
    "false_positive": Code("FALSE_POSITIVE", PRIVATE_SCHEME, "False positive"),
    "wrong_location": Code("WRONG_LOCATION", PRIVATE_SCHEME, "Wrong location"),
    "wrong_finding_type": Code("WRONG_TYPE", PRIVATE_SCHEME, "Wrong finding type"),
    "clinically_insignificant": Code("CLIN_INSIGNIF", PRIVATE_SCHEME, "Clinically insignificant"),
    "duplicate": Code("DUPLICATE", PRIVATE_SCHEME, "Duplicate finding"),
    "poor_image_quality": Code("122742", "DCM", "Poor image quality"),
    "other": Code("74964007", "SCT", "Other"),
}

# The assessment SR (app.results.assessment_writer). IHE AIRA's own template and codes
# were not available to us (docs/conformance.md says what was followed); the document
# title, the per-finding container, the verdict and its values are private.
AI_RESULT_ASSESSMENT = Code("AI_ASSESSMENT", PRIVATE_SCHEME, "AI Result Assessment")
ASSESSED_RESULT = Code("ASSESSED_RESULT", PRIVATE_SCHEME, "Assessed AI result")
EDITED_RESULT = Code("EDITED_RESULT", PRIVATE_SCHEME, "Edited AI result")
FINDING_ASSESSMENT = Code("FINDING_ASSESS", PRIVATE_SCHEME, "AI finding assessment")
VERDICT = Code("VERDICT", PRIVATE_SCHEME, "Reader verdict on AI finding")
REJECT_REASON = Code("REJECT_REASON", PRIVATE_SCHEME, "Reason for rejection")
CHANGED_ATTRIBUTE = Code("CHANGED", PRIVATE_SCHEME, "Changed by the reader")
VERDICT_VALUES: dict[str, Code] = {  # keyed by app.domain.Verdict value
    "confirmed": Code("CONFIRMED", PRIVATE_SCHEME, "Confirmed"),
    "rejected": Code("REJECTED", PRIVATE_SCHEME, "Rejected"),
    "modified": Code("MODIFIED", PRIVATE_SCHEME, "Modified"),
    "added": Code("ADDED", PRIVATE_SCHEME, "Added by reader"),
}
SOURCE_REPORT = Code("128225", "DCM", "Source report")
PROCEDURE_REPORTED = Code("121058", "DCM", "Procedure reported")
STUDY_INSTANCE_UID = Code("110180", "DCM", "Study Instance UID")
SERIES_INSTANCE_UID = Code("112002", "DCM", "Series Instance UID")
COMMENT = Code("121106", "DCM", "Comment")
OBSERVER_TYPE = Code("121005", "DCM", "Observer Type")
PERSON = Code("121006", "DCM", "Person")
PERSON_OBSERVER_NAME = Code("121008", "DCM", "Person Observer Name")
PERSON_OBSERVER_ORGANIZATION = Code("121009", "DCM", "Person Observer's Organization Name")
PERSON_OBSERVER_ROLE = Code("121010", "DCM", "Person Observer's Role in the Organization")
PERSON_OBSERVER_LOGIN = Code("128774", "DCM", "Person Observer's Login Name")

# A reader's role (free text in app.domain.Reader) as a CID 7452 "Organizational Role"
# code, looked up case-insensitively; roles not listed are left out of the SR. These are
# the DCM codes of CID 7452 as pixelmed's validator knows it (its 2002 edition): the
# current edition lists SNOMED CT codes instead (e.g. SCT 309343006 "Physician"), which
# pixelmed reports as errors. CID 7452 has no radiologist/pathologist: both are Physician.
READER_ROLES: dict[str, Code] = {
    "radiologist": Code("121081", "DCM", "Physician"),
    "pathologist": Code("121081", "DCM", "Physician"),
    "physician": Code("121081", "DCM", "Physician"),
    "nurse": Code("121082", "DCM", "Nurse"),
    "technologist": Code("121083", "DCM", "Technologist"),
    "radiographer": Code("121084", "DCM", "Radiographer"),
    "intern": Code("121085", "DCM", "Intern"),
    "resident": Code("121086", "DCM", "Resident"),
    "registrar": Code("121087", "DCM", "Registrar"),
    "fellow": Code("121088", "DCM", "Fellow"),
    "attending": Code("121089", "DCM", "Attending [Consultant]"),
    "consultant": Code("121089", "DCM", "Attending [Consultant]"),
    "sonologist": Code("121092", "DCM", "Sonologist"),
    "sonographer": Code("121093", "DCM", "Sonographer"),
}
