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
DEVICE_OBSERVER_MANUFACTURER = Code("121194", "DCM", "Device Observer Manufacturer")
DEVICE_OBSERVER_NAME = Code("121193", "DCM", "Device Observer Name")

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
