"""The demo slide's AI result: Microscopy Bulk Simple Annotations (highdicom ``ann``).

Three annotation groups in 2D image coordinates of the base level (SCOORD, pixel
(column, row) with the origin at the top-left corner of the total pixel matrix):
tumor regions (polygons) and positive / negative nuclei (points), each annotation
with a probability (DCM 111012 Certainty of Finding, UCUM "1", 0..1). Groups of
nuclei share the property type Nucleus and are told apart by their label
("... positive" / "... negative"), which is what the ANN reader derives the
positive fraction from (docs/conformance.md).
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from app.demo.slide import MANUFACTURER, DemoSlide

TISSUE = Code("85756007", "SCT", "Tissue")
NEOPLASM = Code("86049000", "SCT", "Malignant neoplasm, primary")
CELL = Code("4421005", "SCT", "Cell")
NUCLEUS = Code("84640000", "SCT", "Nucleus")
PROBABILITY = Code("111012", "DCM", "Certainty of Finding")
UNITY = Code("1", "UCUM", "no units")

ALGORITHM_NAME = "Demo Ki-67 Tissue Analyzer"
ALGORITHM_VERSION = "0.3"


def build_slide_annotations(
    slide: DemoSlide, *, slide_coordinates: bool = False
) -> hd.ann.MicroscopyBulkSimpleAnnotations:
    """The AI's annotations of ``slide`` as a new series in the slide's study; with
    ``slide_coordinates`` in 3D slide coordinates (SCOORD3D, mm) as some AI products
    write them, else in 2D image coordinates of the base level."""
    content = slide.content
    coordinate_type = hd.ann.AnnotationCoordinateTypeValues.SCOORD
    to_slide = None
    if slide_coordinates:
        coordinate_type = hd.ann.AnnotationCoordinateTypeValues.SCOORD3D
        to_slide = hd.spatial.ImageToReferenceTransformer.for_image(
            slide.levels[0], for_total_pixel_matrix=True
        )
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME,
        family=hd.sr.CodedConcept("123109", "DCM", "Multi-class classification"),
        version=ALGORITHM_VERSION,
        source=MANUFACTURER,
    )

    def group(
        number: int,
        label: str,
        category: Code,
        prop: Code,
        kind: hd.ann.GraphicTypeValues,
        data: list[np.ndarray],
        probs: list[float],
        lab: tuple[float, float, float],
        description: str,
    ) -> hd.ann.AnnotationGroup | None:
        if not data:
            return None
        if to_slide is not None:
            data = [np.asarray(to_slide(np.asarray(d, dtype=np.float64))) for d in data]
        return hd.ann.AnnotationGroup(
            number=number,
            uid=slide.uid("ann-group", str(number)),
            label=label,
            annotated_property_category=category,
            annotated_property_type=prop,
            graphic_type=kind,
            graphic_data=data,
            algorithm_type=hd.ann.AnnotationGroupGenerationTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            measurements=[
                hd.ann.Measurements(
                    name=PROBABILITY, values=np.asarray(probs, dtype=np.float32), unit=UNITY
                )
            ],
            description=description,
            display_color=hd.color.CIELabColor(*lab),
        )

    tumors = [np.asarray(p, dtype=np.float32) for p in content.tumor_polygons]
    pos = [n for n in content.nuclei if n.positive]
    neg = [n for n in content.nuclei if not n.positive]
    candidates = [
        group(
            1,
            "Tumor region",
            TISSUE,
            NEOPLASM,
            hd.ann.GraphicTypeValues.POLYGON,
            tumors,
            content.tumor_probabilities,
            (50.0, 70.0, 40.0),
            "Regions of suspected invasive carcinoma",
        ),
        group(
            2,
            "Ki-67 nucleus positive",
            CELL,
            NUCLEUS,
            hd.ann.GraphicTypeValues.POINT,
            [np.array([[n.x, n.y]], dtype=np.float32) for n in pos],
            [n.probability for n in pos],
            (45.0, 20.0, 50.0),
            "Tumor cell nuclei classified Ki-67 positive",
        ),
        group(
            3,
            "Ki-67 nucleus negative",
            CELL,
            NUCLEUS,
            hd.ann.GraphicTypeValues.POINT,
            [np.array([[n.x, n.y]], dtype=np.float32) for n in neg],
            [n.probability for n in neg],
            (40.0, 10.0, -50.0),
            "Tumor cell nuclei classified Ki-67 negative",
        ),
    ]
    groups = [g for g in candidates if g is not None]
    source: Dataset = slide.levels[0]
    ann = hd.ann.MicroscopyBulkSimpleAnnotations(
        source_images=[source],
        annotation_coordinate_type=coordinate_type,
        annotation_groups=groups,
        series_instance_uid=slide.uid("ann-series"),
        series_number=100,
        sop_instance_uid=slide.uid("ann"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=ALGORITHM_NAME,
        software_versions=ALGORITHM_VERSION,
        device_serial_number="DEMO-AI-1",
        content_description="AI tumor regions and Ki-67 nuclei",
        content_label="AI_KI67",
    )
    return ann
