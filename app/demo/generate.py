"""Generate the demo data set: images for every catalog study, plus the AI result SRs.

Deterministic: the same seed gives the same UIDs and pixels (the seed feeds a
numpy generator per study and the entropy of every UID); only the study and
content dates follow ``reference_time``, so the worklist's waiting times look
real whenever the demo is seeded.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from pydicom.dataset import Dataset

from app.demo import images
from app.demo.catalog import STUDIES, FindingSpec, StudySpec
from app.demo.phantoms import Volume, head_ct, mr_brain
from app.demo.radiograph import Radiograph, chest_radiograph
from app.demo.segmentation import bleed_seg
from app.demo.slide import DemoSlide, SlideSpec, generate_slide
from app.demo.slide_annotations import build_slide_annotations
from app.domain import Algorithm, Finding, Measurement, Region
from app.errors import DemoDataError
from app.results import codes
from app.results.sr_writer import build_ai_result_sr, name_based_uid

log = logging.getLogger(__name__)

SR_SERIES_NUMBER = 900


@dataclass
class DemoStudy:
    """One generated study: its images, its AI result (if any) and what that result says."""

    key: str
    study_uid: str
    accession: str
    description: str
    modality: str
    patient_id: str
    priority: str
    study_datetime: datetime
    images: list[Dataset]
    ai_sr: Dataset | None
    expected_findings: list[Finding]
    has_lesion: bool
    algorithm: Algorithm | None = None
    ai_seg: Dataset | None = None  # the AI's segmentation of the lesion (head CT)


@dataclass
class DemoSet:
    seed: int
    reference_time: datetime
    studies: list[DemoStudy]
    slide: DemoSlide | None = None  # the pathology study's whole-slide pyramid
    slide_annotations: Dataset | None = None  # and its AI result (bulk annotations)

    def study(self, key: str) -> DemoStudy:
        for s in self.studies:
            if s.key == key:
                return s
        raise KeyError(key)

    def datasets(self) -> list[Dataset]:
        """Every instance: all images first, then the SRs (the order they are stored in)."""
        out = [ds for s in self.studies for ds in s.images]
        if self.slide is not None:
            out += list(self.slide.levels)
        out += [s.ai_sr for s in self.studies if s.ai_sr is not None]
        out += [s.ai_seg for s in self.studies if s.ai_seg is not None]
        return out + ([self.slide_annotations] if self.slide_annotations is not None else [])


def demo_uid(seed: int, *parts: str) -> str:
    """A UID that depends only on the seed and ``parts``: a 2.25 UID of a name-based UUID.

    (pydicom's ``generate_uid(prefix=None, entropy_srcs=...)`` ignores the entropy
    and returns a random UUID, so it cannot be used here.)
    """
    return name_based_uid(f"demo-{seed}-" + "-".join(parts))


def generate_demo_set(
    seed: int = 0,
    reference_time: datetime | None = None,
    *,
    only: Collection[str] | None = None,
    slide: SlideSpec | None = None,
    slide_progress: Callable[[int, int], None] | None = None,
) -> DemoSet:
    """Images and AI results for the catalog's studies (``only``: a subset by key), and
    with ``slide`` the pathology study: that slide and its AI bulk annotations
    (``slide_progress(done, total)`` counts its tiles)."""
    now = reference_time or datetime.now().replace(second=0, microsecond=0)
    wanted = [s for s in STUDIES if only is None or s.key in only]
    if only is not None and len(wanted) != len(set(only)):
        unknown = set(only) - {s.key for s in STUDIES}
        raise DemoDataError(f"unknown demo study keys: {', '.join(sorted(unknown))}")
    studies = []
    for spec in wanted:
        index = STUDIES.index(spec)
        try:
            studies.append(_study(spec, index, seed, now))
        except (ValueError, TypeError) as exc:  # highdicom/pydicom refusals
            raise DemoDataError(f"demo study {spec.key!r} could not be built: {exc}") from exc
    demo = DemoSet(seed=seed, reference_time=now, studies=studies)
    if slide is not None:
        try:
            demo.slide = generate_slide(slide, slide_progress)
            demo.slide_annotations = build_slide_annotations(demo.slide)
        except (ValueError, TypeError) as exc:
            raise DemoDataError(f"the demo slide could not be built: {exc}") from exc
    return demo


def _study(spec: StudySpec, index: int, seed: int, now: datetime) -> DemoStudy:
    rng = np.random.default_rng([seed, zlib.crc32(spec.key.encode())])

    def uid(*parts: str) -> str:
        return demo_uid(seed, spec.key, *parts)

    header = images.StudyHeader(
        patient_name=spec.patient_name,
        patient_id=spec.patient_id,
        birth_date=spec.birth_date,
        sex=spec.sex,
        study_uid=uid("study"),
        accession=f"D{seed % 1000:03d}{index + 1:05d}",
        study_id=f"{index + 1}",
        description=spec.description,
        study_datetime=now - timedelta(minutes=spec.waiting_minutes),
        priority=spec.priority,
        referring=spec.referring,
        body_part=spec.body_part,
    )
    volume: Volume | None = None
    radiograph: Radiograph | None = None
    if spec.modality == "CT":
        volume = head_ct(rng, spec.lesions[0] if spec.lesions else None)
        count = volume.pixels.shape[0]
    elif spec.modality == "MR":
        volume = mr_brain(rng, spec.lesions[0] if spec.lesions else None)
        count = volume.pixels.shape[0]
    else:
        radiograph = chest_radiograph(rng, pneumothorax=spec.pneumothorax, nodules=spec.nodules)
        count = 1
    series = images.SeriesInfo(
        series_uid=uid("series", "1"),
        number=1 if spec.modality == "DX" else 2,
        description=spec.series_description,
        sop_uids=tuple(uid("image", str(k)) for k in range(count)),
        frame_of_reference_uid=uid("for") if volume is not None else "",
    )
    study_images: list[Dataset]
    if spec.modality == "CT" and volume is not None:
        study_images = list(images.ct_images(volume, header, series))
    elif volume is not None:
        study_images = list(images.mr_images(volume, header, series))
    else:
        assert radiograph is not None
        study_images = [images.dx_image(radiograph, header, series)]

    ai_sr: Dataset | None = None
    findings: list[Finding] = []
    if spec.ai is not None:
        sr_uid = uid("sr")
        findings = [
            _finding(fs, n, spec, volume, radiograph, study_images, sr_uid, uid("finding", str(n)))
            for n, fs in enumerate(spec.ai.findings)
        ]
        ai_sr = build_ai_result_sr(
            study_images,
            spec.ai.algorithm,
            findings,
            series_instance_uid=uid("sr-series"),
            sop_instance_uid=sr_uid,
            series_number=SR_SERIES_NUMBER,
            content_datetime=header.study_datetime + timedelta(minutes=spec.ai.delay_minutes),
            institution=images.INSTITUTION,
        )
        # Archives that read the order priority from any instance find it here too.
        ai_sr.RequestedProcedurePriority = spec.priority
    ai_seg: Dataset | None = None
    if spec.ai is not None and spec.modality == "CT" and volume is not None and spec.lesions:
        ai_seg = bleed_seg(
            study_images, volume, spec.lesions[0], spec.ai.algorithm,
            series_uid=uid("seg-series"), sop_uid=uid("seg"),
            tracking_uid=uid("seg-segment", "1"),
            content_datetime=header.study_datetime + timedelta(minutes=spec.ai.delay_minutes),
        )
        ai_seg.RequestedProcedurePriority = spec.priority  # as on the SR (see above)
    return DemoStudy(
        key=spec.key,
        study_uid=header.study_uid,
        accession=header.accession,
        description=spec.description,
        modality=spec.modality,
        patient_id=spec.patient_id,
        priority=spec.priority,
        study_datetime=header.study_datetime,
        images=study_images,
        ai_sr=ai_sr,
        expected_findings=findings,
        has_lesion=spec.has_lesion,
        algorithm=spec.ai.algorithm if spec.ai else None,
        ai_seg=ai_seg,
    )


def _f32(value: float) -> float:
    """Rounded so that it survives DICOM's 32-bit float Graphic Data unchanged."""
    return float(np.float32(round(value, 2)))


def _finding(
    fs: FindingSpec,
    n: int,
    spec: StudySpec,
    volume: Volume | None,
    radiograph: Radiograph | None,
    study_images: list[Dataset],
    sr_uid: str,
    tracking_uid: str,
) -> Finding:
    assert spec.ai is not None
    measurements: list[Measurement] = []
    if volume is not None:
        lesion = spec.lesions[fs.lesion_index]
        z = lesion.center[2]
        k = volume.nearest_slice(z)
        outline = lesion.outline(volume.z_positions[k], scale=0.85)
        if fs.region == "polygon3d":
            coords = tuple((_f32(x), _f32(y), _f32(volume.z_positions[k])) for x, y in outline)
            for_uid = str(study_images[k].FrameOfReferenceUID)
            region = Region("POLYGON", coords, frame_of_reference_uid=for_uid)
        else:
            pixels = (volume.to_pixel(x, y) for x, y in outline)
            region = Region(  # SCOORD: an area is a closed POLYLINE
                "POLYLINE",
                tuple((_f32(c), _f32(r)) for c, r in pixels),
                referenced_sop_uid=str(study_images[k].SOPInstanceUID),
                referenced_sop_class_uid=str(study_images[k].SOPClassUID),
            )
        if fs.measurement == "volume":
            measurements.append(
                Measurement(codes.VOLUME, round(lesion.volume_ml, 1), codes.MILLILITER)
            )
        elif fs.measurement == "diameter":
            diameter = 2.0 * max(lesion.semi_axes[:2])
            measurements.append(Measurement(codes.DIAMETER, round(diameter, 1), codes.MILLIMETER))
    else:
        assert radiograph is not None
        sop_uid, sop_class = str(study_images[0].SOPInstanceUID), str(study_images[0].SOPClassUID)
        if fs.region == "circle":
            circle = radiograph.nodule_circles[fs.lesion_index]
            region = Region("CIRCLE", circle, sop_uid, sop_class)
            diameter = spec.nodules[fs.lesion_index][2]
            measurements.append(Measurement(codes.DIAMETER, round(diameter, 1), codes.MILLIMETER))
        else:
            region = Region("POLYLINE", radiograph.outline, sop_uid, sop_class)
    return Finding(
        tracking_uid=tracking_uid,
        tracking_id=fs.tracking_id,
        finding=fs.finding,
        site=fs.site,
        certainty=fs.certainty,
        urgency=fs.urgency,
        algorithm=spec.ai.algorithm,
        regions=(region,),
        measurements=tuple(measurements),
        source_sop_uid=sr_uid,
    )
