"""A small local archive for UI tests: a few studies, some with AI results (highdicom TID 1500).

Built here, not by ``app.demo``, so the UI tests know exactly where each finding is:

- ``head``: CT head, 12 slices 96x96, a CRITICAL hemorrhage outlined on slice 8 (closed SCOORD POLYLINE)
- ``chest``: CR chest (MONOCHROME1), an URGENT pneumothorax (SCOORD POLYLINE), plus a bigger
  CT series without findings (the viewer must still open the radiograph the finding is on)
- ``plain``: CT with no AI result
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as pcodes
from pydicom.uid import generate_uid

from app.archive.client import DicomClientArchive, open_local
from tests.app.test_volume import make_ct_series, make_radiograph

HEAD_SLICES = 12
HEAD_FINDING_SLICE = 8  # spatial index (0 = lowest) of the slice the finding is on
SQUARE = ((30.0, 30.0), (60.0, 30.0), (60.0, 55.0), (30.0, 55.0))


@dataclass(frozen=True)
class ReviewData:
    archive: DicomClientArchive
    head_study: str
    head_finding_sop: str
    head_tracking_uid: str
    chest_study: str
    chest_tracking_uid: str
    plain_study: str


def head_phantom(n: int = HEAD_SLICES, size: int = 96) -> np.ndarray:
    """Hounsfield units: air, a bright skull ring, brain, and a blob of blood on the finding slice."""
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot((xx - size / 2) / (size * 0.42), (yy - size / 2) / (size * 0.47))
    vol = np.full((n, size, size), -1000.0)
    for k in range(n):
        scale = 1.0 - 0.3 * abs(k - n / 2) / n
        vol[k][r < 1.0 * scale] = 1200.0  # skull
        vol[k][r < 0.9 * scale] = 35.0  # brain
        vol[k] += (xx % 7 == 0) * 3.0  # a little texture
    bleed = np.hypot(xx - 45, yy - 42) < 9
    vol[HEAD_FINDING_SLICE][bleed] = 75.0
    return vol


def _finding_group(
    *,
    tracking_uid: str,
    finding: hd.sr.CodedConcept,
    site: hd.sr.CodedConcept,
    urgency: str,
    certainty: float,
    region: hd.sr.ImageRegion,
    algo: hd.sr.AlgorithmIdentification,
    measurement: hd.sr.Measurement | None = None,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    measurements = [
        hd.sr.Measurement(
            name=hd.sr.CodedConcept("111012", "DCM", "Certainty of Finding"),
            value=certainty,
            unit=hd.sr.CodedConcept("1", "UCUM", "no units"),
        )
    ]
    if measurement is not None:
        measurements.append(measurement)
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier="finding 1"),
        referenced_region=region,
        finding_type=finding,
        finding_sites=[hd.sr.FindingSite(site)],
        algorithm_id=algo,
        measurements=measurements,
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(
                hd.sr.CodedConcept("URGENCY", "99AIRC", "AI result urgency"),
                hd.sr.CodedConcept(urgency, "99AIRC", urgency.title()),
            )
        ],
    )


def _sr(evidence: Dataset, group: object, manufacturer: str) -> hd.sr.Comprehensive3DSR:
    observer = hd.sr.ObserverContext(
        observer_type=pcodes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), manufacturer_name=manufacturer
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=pcodes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[group],
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[evidence],
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=100,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=manufacturer,
    )


def _source(image: Dataset) -> hd.sr.SourceImageForRegion:
    return hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=image.SOPClassUID,
        referenced_sop_instance_uid=image.SOPInstanceUID,
    )


def build_review_archive(folder: Path) -> ReviewData:
    archive = open_local(folder)
    head_study, chest_study, plain_study = generate_uid(), generate_uid(), generate_uid()

    head = make_ct_series(
        head_study, n=HEAD_SLICES, size=96, description="Head axial 5 mm", volume=head_phantom()
    )
    for ds in head:
        ds.StudyDescription = "CT head without contrast"
        ds.AccessionNumber = "ACC-HEAD"
    # make_ct_series stores slices in reverse spatial order
    finding_image = sorted(head, key=lambda d: d.ImagePositionPatient[2])[HEAD_FINDING_SLICE]
    head_tracking = generate_uid()
    head_sr = _sr(
        finding_image,
        _finding_group(
            tracking_uid=head_tracking,
            finding=hd.sr.CodedConcept("1386000", "SCT", "Intracranial hemorrhage"),
            site=hd.sr.CodedConcept("12738006", "SCT", "Brain"),
            urgency="CRITICAL",
            certainty=0.93,
            region=hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.POLYLINE,  # closed: last == first
                graphic_data=np.array([*SQUARE, SQUARE[0]]),
                source_image=_source(finding_image),
            ),
            algo=hd.sr.AlgorithmIdentification(name="BleedFinder", version="2.1"),
            measurement=hd.sr.Measurement(
                name=hd.sr.CodedConcept("118565006", "SCT", "Volume"),
                value=12.4,
                unit=hd.sr.CodedConcept("ml", "UCUM", "milliliter"),
            ),
        ),
        "Acme AI",
    )

    chest = make_radiograph(chest_study, size=128)
    chest.StudyDescription = "Chest PA"
    chest.AccessionNumber = "ACC-CHEST"
    chest.StudyTime = "080000"
    chest_tracking = generate_uid()
    chest_sr = _sr(
        chest,
        _finding_group(
            tracking_uid=chest_tracking,
            finding=hd.sr.CodedConcept("36118008", "SCT", "Pneumothorax"),
            site=hd.sr.CodedConcept("3341006", "SCT", "Right lung"),
            urgency="URGENT",
            certainty=0.71,
            region=hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                graphic_data=np.array([[20.0, 20.0], [40.0, 30.0], [45.0, 60.0]]),
                source_image=_source(chest),
            ),
            algo=hd.sr.AlgorithmIdentification(name="ChestCheck", version="1.0"),
        ),
        "Lung Vision",
    )

    chest_ct = make_ct_series(chest_study, n=5, size=48, description="Chest CT")
    for ds in chest_ct:
        ds.StudyDescription = "Chest PA"
        ds.AccessionNumber = "ACC-CHEST"
        ds.SeriesNumber = 2

    plain = make_ct_series(plain_study, n=4, size=64, description="Abdomen")
    for ds in plain:
        ds.StudyDescription = "CT abdomen"
        ds.AccessionNumber = "ACC-PLAIN"
    archive.store([*head, head_sr, chest, chest_sr, *chest_ct, *plain])
    return ReviewData(
        archive=archive,
        head_study=head_study,
        head_finding_sop=finding_image.SOPInstanceUID,
        head_tracking_uid=head_tracking,
        chest_study=chest_study,
        chest_tracking_uid=chest_tracking,
        plain_study=plain_study,
    )
