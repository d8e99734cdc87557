"""The main window over a real local archive: worklist → study → finding cards → image on screen.

Looks at what a person would see: the window is grabbed from the X server (GL
area included) and saved under the test's tmp dir.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.domain import AIStatus
from app.settings import Settings
from app.worklist.service import WorklistService
from tests.ui.qt_helpers import LoopDriver, dispose
from tests.ui.review_data import (
    HEAD_FINDING_SLICE,
    HEAD_SLICES,
    ReviewData,
)
from ui.app import run_gui, window_size
from ui.main_window import MainWindow
from ui.theme import apply_theme

pytestmark = pytest.mark.gui


@pytest.fixture()
def window(review_data: ReviewData, qtbot: QtBot, loop: LoopDriver) -> Iterator[MainWindow]:
    service = WorklistService(review_data.archive, Settings().weights)
    apply_theme(QApplication.instance())  # type: ignore[arg-type]
    win = MainWindow(review_data.archive, service, Settings(), mode_label="Offline demo")
    win.resize(*window_size())  # 1500x900 where the X screen is big enough
    win.show()
    qtbot.waitExposed(win)
    yield win
    dispose(win)


def grab(widget: object) -> np.ndarray:
    """The widget's window as the X server shows it (GL included), as an (h, w, 3) array."""
    win = widget.window()  # type: ignore[attr-defined]
    QApplication.processEvents()
    image = win.screen().grabWindow(win.winId()).toImage()
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    return data.reshape(height, image.bytesPerLine())[:, : width * 3].reshape(height, width, 3)


def test_worklist_study_findings_and_image(
    window: MainWindow, review_data: ReviewData, loop: LoopDriver, tmp_path: Path
) -> None:
    built = loop.run(window.refresh())
    assert built is not None
    panel = window.worklist_panel
    assert panel.proxy.rowCount() == 3
    assert "Last refresh" in panel.last_refresh.text()
    top = panel.visible_items()[0]
    assert top.study.study_uid == review_data.head_study and top.critical
    assert "Offline demo" in window.connection_label.text()

    panel.select_top()  # the reader picks the top study: the window opens it
    (uid,) = loop.wait_signal(window.sig_study_shown)
    assert uid == review_data.head_study

    cards = window.findings_panel.cards
    assert [c.finding.tracking_uid for c in cards] == [review_data.head_tracking_uid]
    texts = [label.text() for label in cards[0].findChildren(QLabel)]
    assert "Intracranial hemorrhage" in texts and "CRITICAL" in texts and "Certainty: 0.93" in texts
    viewer = window.study_view.viewer
    assert viewer.volume is not None and viewer.volume.shape == (HEAD_SLICES, 96, 96)
    assert viewer.slice_index == HEAD_FINDING_SLICE  # opened on the finding's slice
    assert window.findings_panel.selected == review_data.head_tracking_uid

    viewer.render()
    shot = grab(window)
    top_left = viewer.mapTo(window, viewer.rect().topLeft())
    ratio = window.devicePixelRatioF()
    x0, y0 = int(top_left.x() * ratio), int(top_left.y() * ratio)
    x1, y1 = x0 + int(viewer.width() * ratio), y0 + int(viewer.height() * ratio)
    area = shot[y0:y1, x0:x1].astype(float)
    assert area.std() > 20, "the image area looks blank"
    cyan = (area[..., 2] > 180) & (area[..., 1] > 180) & (area[..., 0] < 120)
    assert cyan.sum() > 50, "the highlighted finding outline is not drawn"
    path = tmp_path / "main_window.png"
    assert window.screen().grabWindow(window.winId()).save(str(path))
    assert path.stat().st_size > 10_000

    # jump back to the finding from its card
    viewer.set_slice(0)
    loop.run(_click(cards[0]))
    assert viewer.slice_index == HEAD_FINDING_SLICE


async def _click(widget: object) -> None:
    from PySide6.QtTest import QTest

    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)  # type: ignore[arg-type]


def test_study_without_ai_and_radiograph(
    window: MainWindow, review_data: ReviewData, loop: LoopDriver
) -> None:
    loop.run(window.refresh())
    assert loop.run(window.open_study(review_data.plain_study))
    assert window.findings_panel.cards == []
    assert window.findings_panel.state.text().startswith("No AI findings")
    assert loop.run(window.open_study(review_data.chest_study))
    view = window.study_view
    combo = view.series_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["CT Chest CT (5)", "CR Chest PA (1)"]
    volume = view.viewer.volume  # the finding's series, though not the biggest
    assert volume is not None and volume.shape == (1, 128, 128) and volume.modality == "CR"
    card = window.findings_panel.cards[0]
    assert card.finding.tracking_uid == review_data.chest_tracking_uid
    view._on_series_picked(0)  # the reader picks the CT
    loop.wait_signal(view.sig_image_shown)
    assert view.viewer.volume is not None and view.viewer.volume.modality == "CT"
    card.sig_activated.emit(card.finding.tracking_uid)  # back to the finding: series switches
    loop.wait_signal(view.sig_finding_shown)
    assert view.viewer.volume is not None and view.viewer.volume.modality == "CR"
    assert combo.currentIndex() == 1
    item = window.worklist.item(review_data.chest_study) if window.worklist else None
    assert item is not None and item.ai_status is AIStatus.DONE


def test_keyboard_shortcuts(window: MainWindow, loop: LoopDriver, qtbot: QtBot) -> None:
    loop.run(window.refresh())
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # window shortcuts need it active
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.worklist_panel.search.hasFocus(), timeout=2000)
    before = window.worklist
    qtbot.keyClick(window, Qt.Key.Key_F5)  # starts a refresh task on the loop
    loop.wait_signal(window.sig_worklist_shown)
    assert window.worklist is not None and window.worklist is not before


def test_run_gui_screenshot(review_data: ReviewData, qapp: QApplication, tmp_path: Path) -> None:
    """What `companion --screenshot` does: worklist, top study, cards, image; then exit 0."""
    service = WorklistService(review_data.archive, Settings().weights)
    path = tmp_path / "screenshot.png"
    code = run_gui(review_data.archive, service, Settings(), mode_label="Offline demo",
                   screenshot=path)
    assert code == 0 and path.exists()
    image = QImage(str(path))
    assert (image.width(), image.height()) == window_size()


def test_run_gui_unreachable_archive_is_one_line(
    qapp: QApplication, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = open_dicomweb("http://127.0.0.1:9/dicom-web", timeout=2)
    service = WorklistService(archive, Settings().weights)
    code = run_gui(archive, service, Settings(), mode_label="DICOMweb",
                   screenshot=tmp_path / "never.png")
    err = capsys.readouterr().err.strip()
    assert code != 0 and not (tmp_path / "never.png").exists()
    assert len(err.splitlines()) == 1 and "Cannot reach the archive" in err


def test_screenshot_of_the_demo_archive(tmp_path: Path, qapp: QApplication) -> None:
    """The offline demo data set (app.demo): the top study opens with cards and an image."""
    from app.demo.seed import ensure_demo_archive

    archive = ensure_demo_archive(tmp_path / "demo")
    service = WorklistService(archive, Settings().weights)
    path = tmp_path / "demo.png"
    assert run_gui(archive, service, Settings(), mode_label="Offline demo", screenshot=path) == 0
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_Grayscale8)
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    assert data.std() > 20  # not an empty window


def test_study_without_images_shows_its_findings(tmp_path: Path, qapp: QApplication) -> None:
    """A study holding only an AI SR (no pixel data) opens: cards, and a clear message."""
    import copy

    import pydicom
    from pydicom.uid import generate_uid

    from app.archive.client import open_local
    from tests.app.test_sr_reader import _third_party_sr

    ct = copy.deepcopy(pydicom.examples.ct)
    ct.StudyInstanceUID, ct.SOPInstanceUID = generate_uid(), generate_uid()
    archive = open_local(tmp_path / "sr-only")
    archive.store([_third_party_sr(ct)])
    service = WorklistService(archive, Settings().weights)
    assert len(service.findings_for(ct.StudyInstanceUID)) == 2
    path = tmp_path / "sr-only.png"
    code = run_gui(archive, service, Settings(), mode_label="test",
                   open_study_uid=ct.StudyInstanceUID, screenshot=path)
    assert code == 0 and path.exists()
