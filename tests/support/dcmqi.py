"""Make SEGs with dcmqi's ``itkimage2segimage`` (another tool than ours), for reading tests.

A label map is written as NRRD by hand (ITK reads it): LPS space, the series' origin,
pixel spacing and slice step, so that its voxels sit on the series' pixels.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset


def tool(name: str) -> str:
    """An executable of the dcmqi pip package, next to this Python or on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install dcmqi)")
    return found


def write_nrrd(path: Path, labels: np.ndarray, images: list[Dataset]) -> Path:
    """``labels`` (slices, rows, columns) uint8 on the axial series ``images`` (sorted by z)."""
    first = images[0]
    dz = float(images[1].ImagePositionPatient[2]) - float(first.ImagePositionPatient[2])
    sy, sx = (float(v) for v in first.PixelSpacing)
    ox, oy, oz = (float(v) for v in first.ImagePositionPatient)
    z, y, x = labels.shape
    header = (
        "NRRD0004\n"
        "type: unsigned char\n"
        "dimension: 3\n"
        "space: left-posterior-superior\n"
        f"sizes: {x} {y} {z}\n"
        f"space directions: ({sx},0,0) (0,{sy},0) (0,0,{dz})\n"
        "kinds: domain domain domain\n"
        "endian: little\n"
        "encoding: raw\n"
        f"space origin: ({ox},{oy},{oz})\n\n"
    )
    path.write_bytes(header.encode() + np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return path


def segment_attributes(label_id: int, label: str, rgb: tuple[int, int, int]) -> dict[str, object]:
    return {
        "labelID": label_id,
        "SegmentDescription": label,
        "SegmentLabel": label,
        "SegmentAlgorithmType": "MANUAL",
        "recommendedDisplayRGBValue": list(rgb),
        "SegmentedPropertyCategoryCodeSequence": {
            "CodeValue": "49755003",
            "CodingSchemeDesignator": "SCT",
            "CodeMeaning": "Morphologically Abnormal Structure",
        },
        "SegmentedPropertyTypeCodeSequence": {
            "CodeValue": "50960005",
            "CodingSchemeDesignator": "SCT",
            "CodeMeaning": "Hemorrhage",
        },
    }


def itkimage2segimage(
    folder: Path,
    images: list[Dataset],
    labels: np.ndarray,
    segments: list[dict[str, object]],
    *,
    segmentation_type: str = "binary",
) -> Path:
    """Run dcmqi on ``images`` (written to ``folder``) and a label map; the SEG's path."""
    dicom_dir = folder / "dicom"
    dicom_dir.mkdir(parents=True, exist_ok=True)
    for n, ds in enumerate(images):
        ds.save_as(dicom_dir / f"{n:03d}.dcm", enforce_file_format=True)
    nrrd = write_nrrd(folder / "labels.nrrd", labels, images)
    meta = {
        "ContentCreatorName": "Reader1",
        "ClinicalTrialSeriesID": "Session1",
        "ClinicalTrialTimePointID": "1",
        "SeriesDescription": "dcmqi segmentation",
        "SeriesNumber": "300",
        "InstanceNumber": "1",
        "BodyPartExamined": "HEAD",
        "segmentAttributes": [segments],
        "ContentLabel": "SEGMENTATION",
        "ContentDescription": "Made by dcmqi",
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    out = folder / "seg.dcm"
    proc = subprocess.run(
        [
            tool("itkimage2segimage"),
            "--inputImageList",
            str(nrrd),
            "--inputDICOMDirectory",
            str(dicom_dir),
            "--inputMetadata",
            str(folder / "meta.json"),
            "--outputDICOM",
            str(out),
            "--segmentationType",
            segmentation_type,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return out
