"""The viewer at QT_SCALE_FACTOR=2: readout, edge letters and image land on device pixels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]


def test_viewer_at_scale_factor_two(qtbot: QtBot) -> None:  # qtbot: the X display is up
    env = {**os.environ, "QT_SCALE_FACTOR": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.ui.high_dpi_child"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "HIGH-DPI OK" in done.stdout, done.stderr[-3000:]
