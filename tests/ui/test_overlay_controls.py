"""The reader's overlay controls in the real window over a real Orthanc holding a CT, its
AI SR and a SEG: the SEG appears as a mask with a legend; O hides and shows everything;
the legend hides a segment and sets its opacity; a card hides its finding, lights its
region while hovered, and a click centres the region in the view."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.results.sr_reader import read_ai_result
from app.settings import Settings
from app.worklist.service import WorklistService
from tests.support import dicom_data, orthanc
from tests.support.seg_data import highdicom_seg
from tests.ui.qt_helpers import LoopDriver, dispose
from tests.ui.test_review_ui import press
from ui.main_window import MainWindow

pytestmark = pytest.mark.gui


def _red(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(int)
    return (rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)


def _cyan(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(int)
    return (rgb[..., 2] > 180) & (rgb[..., 1] > 180) & (rgb[..., 0] < 120)


def test_overlay_controls_in_the_window(
    empty_orthanc: orthanc.OrthancServer, qtbot: QtBot, loop: LoopDriver
) -> None:
    images, ai_sr = dicom_data.review_study("overlays")
    masks = np.zeros((2, 128, 128, 1), dtype=bool)
    masks[0, 100:110, 90:110, 0] = True  # rows 100-109, columns 90-109 of the first slice
    seg = highdicom_seg(images, masks, "overlays")
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*images, ai_sr, seg])
    findings = {f.finding.meaning: f.tracking_uid for f in read_ai_result(ai_sr).findings}
    window = MainWindow(
        archive, WorklistService(archive, Settings().weights), Settings(), mode_label="DICOMweb"
    )
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    try:
        assert loop.run(window.refresh()) is not None
        assert loop.run(window.open_study(str(ai_sr.StudyInstanceUID)))
        view, viewer, panel = window.study_view, window.study_view.viewer, window.findings_panel
        qtbot.waitUntil(lambda: bool(view.legend.checks), timeout=30_000)
        (key,) = view.legend.checks
        assert view.legend.checks[key].text() == "Bleed"
        viewer.set_text_visible(False)
        assert viewer.slice_index == 0  # the critical finding's slice, where the mask is

        # the mask is drawn where its pixels are, in the segment's colour (red)
        red = _red(viewer.rendered_rgb())
        ys, xs = np.nonzero(red)
        assert ys.size > 0
        x0, y0 = viewer.world_to_widget(*_world(viewer, 90, 100))
        x1, y1 = viewer.world_to_widget(*_world(viewer, 109, 109))
        assert x0 - 6 <= xs.min() and xs.max() <= x1 + 6 and y0 - 6 <= ys.min()
        assert ys.max() <= y1 + 6

        # O hides every overlay (outlines too), O again shows them; the legend follows
        assert viewer.overlays.outlines
        press(qtbot, window, "O")
        assert not _red(viewer.rendered_rgb()).any() and not viewer.overlays.outlines
        assert not view.legend.toggle.isChecked()
        press(qtbot, window, "O")
        assert _red(viewer.rendered_rgb()).any() and view.legend.toggle.isChecked()

        # the legend's slider sets the segment's opacity; its check box hides it
        cx, cy = viewer.world_to_widget(*_world(viewer, 100, 105))
        before = viewer.rendered_rgb()[int(cy), int(cx)].astype(int)
        view.legend.sliders[key].setValue(100)
        after = viewer.rendered_rgb()[int(cy), int(cx)].astype(int)
        assert after[0] >= 250 and after[1] <= 5 and after[0] - after[1] > before[0] - before[1]
        view.legend.checks[key].setChecked(False)
        assert not _red(viewer.rendered_rgb()).any()
        view.legend.checks[key].setChecked(True)

        # hovering a card lights its region; leaving puts it back
        mass = findings["Mass"]
        viewer.set_findings(viewer_findings(window), None)  # nothing selected
        assert not _cyan(viewer.rendered_rgb()).any()
        card = panel.card(mass)
        assert card is not None
        QApplication.sendEvent(card, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
        lit = _cyan(viewer.rendered_rgb())
        assert lit.any() and viewer.overlays.hover == mass
        ys, xs = np.nonzero(lit)
        mx0, my0 = viewer.world_to_widget(*_world(viewer, 69.5, 29.5))  # SCOORD (70, 30)
        assert abs(xs.min() - mx0) <= 3 and abs(ys.min() - my0) <= 3
        QApplication.sendEvent(card, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
        card.leaveEvent(None)
        assert not _cyan(viewer.rendered_rgb()).any()

        # a card's eye hides that finding's outline only
        card.eye.click()
        assert mass not in {o.owner for o in viewer.overlays.outlines}
        assert len({o.owner for o in viewer.overlays.outlines}) == 2
        card.eye.click()
        assert mass in {o.owner for o in viewer.overlays.outlines}

        # clicking a card jumps to its image and centres its region (zoomed in)
        viewer._zoom(3.0)
        nodule = findings["Nodule"]
        qtbot.mouseClick(panel.card(nodule), Qt.MouseButton.LeftButton)
        centre = viewer.overlays.centre_of(nodule)
        assert centre is not None
        x, y = viewer.world_to_widget(*centre)
        w, h = viewer.gl_widget.GetRenderWindow().GetSize()
        assert abs(x - (w - 1) / 2) <= 2 and abs(y - (h - 1) / 2) <= 2
        # the nodule's region (SCOORD 40..52, 80..92) is centred: centre SCOORD (46, 86)
        assert centre == pytest.approx(_world(viewer, 45.5, 85.5), abs=0.01)
    finally:
        dispose(window)


def _world(viewer: object, col: float, row: float) -> tuple[float, float]:
    """Pixel (column, row) centre -> world mm on the slice."""
    volume = viewer.volume  # type: ignore[attr-defined]
    _, dy, dx = volume.spacing
    return col * dx, row * dy


def viewer_findings(window: MainWindow) -> list:  # type: ignore[type-arg]
    return [c.finding for c in window.findings_panel.cards]
