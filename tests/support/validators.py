"""The outside validators every written DICOM object must pass (DESIGN.md §3.4, §5).

dciodvfy (dicom3tools) checks the IOD; pixelmed's DicomSRValidator checks SR
templates; DCMTK's dsrdump must parse an SR. Each returns the error lines (empty
means valid) and prints the warnings; a missing tool fails the test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

PIXELMED = [
    "java",
    "-Djdk.xml.xpathExprOpLimit=0",
    "-Djdk.xml.xpathExprGrpLimit=0",
    "-Djdk.xml.xpathTotalOpLimit=0",
    "-XX:TieredStopAtLevel=1",  # a short run: half the CPU, same wall time
    "-XX:+UseSerialGC",
    "-cp",
    "/usr/share/java/pixelmed.jar",
    "com.pixelmed.validate.DicomSRValidator",
]


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (apt: dicom3tools, dcmtk, pixelmed-apps)")


def write(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def errors(output: str, label: str) -> list[str]:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    warnings = [line for line in lines if line.startswith("Warning")]
    if warnings:
        print(f"{label}: {len(warnings)} warning(s)\n  " + "\n  ".join(warnings))
    return [line for line in lines if line.startswith("Error")]


def dciodvfy(path: Path) -> list[str]:
    need("dciodvfy")
    proc = subprocess.run(
        ["dciodvfy", str(path)], check=False, capture_output=True, text=True, timeout=120
    )
    return errors(proc.stdout + proc.stderr, f"dciodvfy {path.name}")


def pixelmed(path: Path, root_template: str | None = "TID_1500") -> list[str]:
    """pixelmed's SR validation; ``root_template`` (e.g. ``TID_1500``) must be recognized,
    None for an SR with no standard root template (only the IOD is then checked)."""
    need("java")
    proc = subprocess.run(
        [*PIXELMED, str(path)], check=False, capture_output=True, text=True, timeout=300
    )
    out = proc.stdout + proc.stderr
    assert "IOD validation complete" in out, out[-2000:]
    if root_template is not None:
        assert f"Found Root Template {root_template}" in out, out[-2000:]
    return errors(out, f"pixelmed {path.name}")


def dsrdump(path: Path) -> str:
    need("dsrdump")
    proc = subprocess.run(
        ["dsrdump", str(path)], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout
