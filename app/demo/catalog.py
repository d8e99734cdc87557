"""The demo studies: who, what, how long waiting, and what the AI said.

Plain data, no pixels: ``app.demo.generate`` turns each ``StudySpec`` into
images and (where ``ai`` is set) an AI result SR. Patients are fictional.
Lesion positions are in patient mm and sit on a slice position, so the AI
regions fall exactly on an image plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from app.demo.phantoms import Lesion
from app.domain import Algorithm, Code, Urgency
from app.results import codes

ICH_DETECT = Algorithm("ICH Detect", "2.1.0", "Demo AI Labs")
CHEST_PTX = Algorithm("ChestView PTX", "1.4.2", "Lumen Diagnostics")
NODULE_FINDER = Algorithm("NoduleFinder", "3.0.1", "Lumen Diagnostics")
NEURO_MASS = Algorithm("NeuroMass", "0.9.3", "Cortex Analytics")


@dataclass(frozen=True)
class FindingSpec:
    """One finding the AI reports; ``region`` says how its region is written."""

    finding: Code
    site: Code | None
    certainty: float
    urgency: Urgency
    tracking_id: str
    region: str  # "polygon" (SCOORD closed POLYLINE), "polygon3d" (SCOORD3D POLYGON), "circle"
    measurement: str = ""  # "", "volume" (ml) or "diameter" (mm)
    lesion_index: int = 0  # which lesion of the study (nodules: several)


@dataclass(frozen=True)
class AISpec:
    algorithm: Algorithm
    findings: tuple[FindingSpec, ...] = ()  # empty: the AI ran and found nothing
    delay_minutes: int = 4  # from acquisition to the AI result


@dataclass(frozen=True)
class StudySpec:
    key: str  # stable name, independent of the seed
    patient_name: str
    patient_id: str
    birth_date: date
    sex: str
    modality: str  # CT, MR or DX
    description: str
    series_description: str
    body_part: str
    priority: str
    waiting_minutes: int
    referring: str
    lesions: tuple[Lesion, ...] = ()  # CT bleed / MR mass in mm
    pneumothorax: bool = False
    nodules: tuple[tuple[float, float, float], ...] = ()  # DX: (X, Y, diameter) mm
    ai: AISpec | None = None
    notes: str = field(default="", compare=False)

    @property
    def has_lesion(self) -> bool:
        return bool(self.lesions or self.pneumothorax or self.nodules)


CT_HEAD = "CT HEAD WO CONTRAST"
MR_BRAIN = "MR BRAIN WO CONTRAST"
XR_CHEST = "XR CHEST PA"

STUDIES: tuple[StudySpec, ...] = (
    StudySpec(
        "ct-ich-critical",
        "DEMO^ALICE",
        "DEMO0001",
        date(1948, 3, 14),
        "F",
        "CT",
        CT_HEAD,
        "Head 3.0 H30s",
        "HEAD",
        "STAT",
        18,
        "SMITH^JOHN^^DR",
        lesions=(Lesion((28.0, -10.0, 21.0), (18.0, 22.0, 15.0)),),
        ai=AISpec(
            ICH_DETECT,
            (
                FindingSpec(
                    codes.INTRACRANIAL_HEMORRHAGE,
                    codes.BRAIN,
                    0.93,
                    Urgency.CRITICAL,
                    "ICH 1",
                    "polygon",
                    "volume",
                ),
            ),
        ),
        notes="large left hemisphere bleed (25 ml); 2D polygon on the slice through its centre",
    ),
    StudySpec(
        "ct-ich-urgent",
        "DEMO^BRUNO",
        "DEMO0002",
        date(1961, 11, 2),
        "M",
        "CT",
        CT_HEAD,
        "Head 3.0 H30s",
        "HEAD",
        "HIGH",
        95,
        "MILLER^ANNA^^DR",
        lesions=(Lesion((-34.0, 28.0, 39.0), (7.0, 9.0, 6.0)),),
        ai=AISpec(
            ICH_DETECT,
            (
                FindingSpec(
                    codes.INTRACRANIAL_HEMORRHAGE,
                    codes.BRAIN,
                    0.71,
                    Urgency.URGENT,
                    "ICH 1",
                    "polygon3d",
                    "volume",
                ),
            ),
            delay_minutes=5,
        ),
        notes="small right posterior bleed (1.6 ml); SCOORD3D polygon in patient mm",
    ),
    StudySpec(
        "ct-no-finding",
        "DEMO^CARLA",
        "DEMO0003",
        date(1975, 6, 30),
        "F",
        "CT",
        CT_HEAD,
        "Head 3.0 H30s",
        "HEAD",
        "ROUTINE",
        240,
        "SMITH^JOHN^^DR",
        ai=AISpec(ICH_DETECT, (), delay_minutes=3),
        notes="normal head CT; the AI ran and found nothing",
    ),
    StudySpec(
        "ct-no-ai",
        "DEMO^DAVID",
        "DEMO0004",
        date(1983, 1, 9),
        "M",
        "CT",
        CT_HEAD,
        "Head 3.0 H30s",
        "HEAD",
        "HIGH",
        35,
        "NGUYEN^LINH^^DR",
        notes="normal head CT with no AI result",
    ),
    StudySpec(
        "dx-pneumothorax",
        "DEMO^EMMA",
        "DEMO0005",
        date(1999, 8, 21),
        "F",
        "DX",
        XR_CHEST,
        "Chest PA",
        "CHEST",
        "HIGH",
        50,
        "GARCIA^LUIS^^DR",
        pneumothorax=True,
        ai=AISpec(
            CHEST_PTX,
            (
                FindingSpec(
                    codes.PNEUMOTHORAX, codes.RIGHT_LUNG, 0.88, Urgency.CRITICAL, "PTX 1", "polygon"
                ),
            ),
            delay_minutes=2,
        ),
        notes="right apical and lateral pneumothorax",
    ),
    StudySpec(
        "dx-nodules",
        "DEMO^FRANK",
        "DEMO0006",
        date(1956, 4, 5),
        "M",
        "DX",
        XR_CHEST,
        "Chest PA",
        "CHEST",
        "ROUTINE",
        180,
        "GARCIA^LUIS^^DR",
        nodules=((100.0, -40.0, 14.0), (-96.0, 22.0, 8.0)),
        ai=AISpec(
            NODULE_FINDER,
            (
                FindingSpec(
                    codes.NODULE,
                    codes.LEFT_LUNG,
                    0.64,
                    Urgency.ROUTINE,
                    "Nodule 1",
                    "circle",
                    "diameter",
                    0,
                ),
                FindingSpec(
                    codes.NODULE,
                    codes.RIGHT_LUNG,
                    0.41,
                    Urgency.ROUTINE,
                    "Nodule 2",
                    "circle",
                    "diameter",
                    1,
                ),
            ),
            delay_minutes=6,
        ),
        notes="two nodules, one finding each (left 14 mm, right 8 mm with low certainty)",
    ),
    StudySpec(
        "dx-normal",
        "DEMO^GRACE",
        "DEMO0007",
        date(1990, 12, 12),
        "F",
        "DX",
        XR_CHEST,
        "Chest PA",
        "CHEST",
        "ROUTINE",
        400,
        "NGUYEN^LINH^^DR",
        ai=AISpec(CHEST_PTX, (), delay_minutes=2),
        notes="normal chest radiograph; the AI ran and found nothing",
    ),
    StudySpec(
        "mr-mass",
        "DEMO^HENRY",
        "DEMO0008",
        date(1969, 7, 17),
        "M",
        "MR",
        MR_BRAIN,
        "Ax T2 TSE",
        "BRAIN",
        "HIGH",
        120,
        "MILLER^ANNA^^DR",
        lesions=(Lesion((-30.0, 20.0, 15.0), (12.0, 14.0, 12.0)),),
        ai=AISpec(
            NEURO_MASS,
            (
                FindingSpec(
                    codes.MASS, codes.BRAIN, 0.81, Urgency.URGENT, "Mass 1", "polygon", "diameter"
                ),
            ),
            delay_minutes=8,
        ),
        notes="right posterior mass with edema, 28 mm",
    ),
    StudySpec(
        "mr-no-ai",
        "DEMO^IRIS",
        "DEMO0009",
        date(2001, 2, 28),
        "F",
        "MR",
        MR_BRAIN,
        "Ax T2 TSE",
        "BRAIN",
        "ROUTINE",
        300,
        "SMITH^JOHN^^DR",
        notes="normal MR brain with no AI result",
    ),
)


def study_spec(key: str) -> StudySpec:
    for spec in STUDIES:
        if spec.key == key:
            return spec
    raise KeyError(f"no demo study named {key!r}; known: {', '.join(s.key for s in STUDIES)}")
