"""DESIGN.md §3.8: the Qt-free core (app/, inference/) is mypy-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_is_mypy_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "app", "inference"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
