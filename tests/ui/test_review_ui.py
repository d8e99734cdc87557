"""A whole review in the real window, against a real Orthanc: keys, dialogs, mouse on the image.

The reader confirms one finding (C), rejects one with a reason (X, then 1), moves one
region on the image (E, drag, Enter), adds a finding the AI missed (A, draw, choose
the type), undoes and redoes, submits (Ctrl+Enter); the sender stores the SRs; both
are read back from Orthanc and every decision is checked. The window is grabbed
from the X server along the way (``review-*.png`` under the test's tmp dir).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from app.domain import ReviewState, Urgency, Verdict
from app.results import codes
from app.results.assessment_reader import read_assessment
from app.results.sr_reader import read_ai_result
from app.review.services import ReviewServices, open_review_services
from app.settings import Settings
from app.worklist.service import WorklistService
from tests.support import dicom_data, orthanc
from tests.ui.qt_helpers import LoopDriver, dispose
from tests.ui.test_region_editor import drag, to_widget
from ui.app import window_size
from ui.main_window import MainWindow
from ui.review_dialogs import FindingDialog, RejectDialog
from ui.theme import apply_theme

pytestmark = pytest.mark.gui

SETTINGS = Settings(
    reader_id="dr.ui", reader_name="BAILEY^MIRANDA", reader_organization="Test Hospital"
)


@pytest.fixture()
def services(memory_keyring: object, empty_orthanc: orthanc.OrthancServer) -> Iterator[
    ReviewServices
]:
    review = open_review_services(
        SETTINGS, destination=empty_orthanc.dicomweb_url.rstrip("/"), demo=False
    )
    yield review
    review.close()


def grab_png(widget: QWidget, path: Path) -> np.ndarray:
    win = widget.window()
    QApplication.processEvents()
    image = win.screen().grabWindow(win.winId()).toImage()
    image.save(str(path))
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    rows = data.reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3)


def answer_modal(qtbot: QtBot, kind: type, answer: Callable[[QWidget], None]) -> list[bool]:
    """Answer the next modal dialog of ``kind`` once it is shown (it blocks the test)."""
    done: list[bool] = []

    def poll() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, kind) and dialog.isVisible():
            answer(dialog)
            done.append(True)
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)
    return done


def press(qtbot: QtBot, window: MainWindow, key: str) -> None:
    """A review key as the reader presses it: through the window's shortcut map when the
    window manager lets Xvfb activate the window, else by triggering the same action."""
    action = next(a for a in window.review_actions.values()
                  if any(s.toString() == key for s in a.shortcuts()))
    action.trigger()


def reject_with_reason(qtbot: QtBot, window: MainWindow, comment: str = "") -> list[bool]:
    """X on the selected card, answered as a reader does: a comment, then key 1 (the first
    reason, false positive). Returns ``answer_modal``'s list (non-empty once answered)."""

    def reject(dialog: QWidget) -> None:
        assert isinstance(dialog, RejectDialog)
        dialog.comment.setText(comment)
        dialog.reasons.setFocus()
        qtbot.keyClick(dialog.reasons, Qt.Key.Key_1)

    answered = answer_modal(qtbot, RejectDialog, reject)
    press(qtbot, window, "X")
    return answered


def test_review_confirm_reject_move_add_submit_then_read_back(
    empty_orthanc: orthanc.OrthancServer,
    services: ReviewServices,
    qtbot: QtBot,
    loop: LoopDriver,
    tmp_path: Path,
) -> None:
    images, ai_sr = dicom_data.review_study("ui")
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*images, ai_sr])
    study_uid = str(ai_sr.StudyInstanceUID)
    original = {f.finding.meaning: f for f in read_ai_result(ai_sr).findings}
    service = WorklistService(archive, SETTINGS.weights)
    service.locally_submitted = services.store.submitted_studies
    apply_theme(QApplication.instance())  # type: ignore[arg-type]
    window = MainWindow(archive, service, SETTINGS, mode_label="DICOMweb", review=services)
    window.resize(*window_size())
    window.show()
    qtbot.waitExposed(window)
    try:
        assert loop.run(window.refresh()) is not None
        assert loop.run(window.open_study(study_uid))
        panel = window.findings_panel
        assert [c.verdict for c in panel.cards] == [Verdict.UNDECIDED] * 3
        assert not panel.submit_button.isEnabled()
        assert "(C)" in panel.cards[0].buttons["confirm"].toolTip()  # keys in tooltips

        # 1. Confirm the hemorrhage: click its card, press C. The next undecided is selected.
        ich = original["Intracranial hemorrhage"].tracking_uid
        qtbot.mouseClick(panel.card(ich), Qt.MouseButton.LeftButton)
        press(qtbot, window, "C")
        assert panel.card(ich).verdict is Verdict.CONFIRMED
        mass = original["Mass"].tracking_uid
        assert panel.selected == mass

        # 2. Reject the mass: X opens the reasons; a comment, then 1 = false positive.
        answered = reject_with_reason(qtbot, window, "vessel, not a mass")
        assert answered and panel.card(mass).verdict is Verdict.REJECTED

        # 3. Move the nodule's region on the image: E, drag inside it, Enter.
        nodule = original["Nodule"].tracking_uid
        assert panel.selected == nodule
        press(qtbot, window, "E")
        viewer = window.study_view.viewer
        assert viewer.editor.active
        start = to_widget(viewer, 46.0, 86.0)
        end = to_widget(viewer, 56.0, 91.0)
        drag(qtbot, viewer, start, [QPoint((start.x() + end.x()) // 2, start.y()), end])
        grab_png(window, tmp_path / "review-editing.png")
        qtbot.keyClick(viewer.gl_widget, Qt.Key.Key_Return)
        assert not viewer.editor.active
        assert panel.card(nodule).verdict is Verdict.MODIFIED
        moved = window.review.session.item(nodule).current.regions[0]  # type: ignore[union-attr]
        before = np.array(original["Nodule"].regions[0].coordinates)
        shift = np.array(moved.coordinates) - before
        assert np.allclose(shift, shift[0]) and np.allclose(shift[0], (10, 5), atol=1.5)

        # Undo and redo the move (Ctrl+Z / Ctrl+Shift+Z).
        press(qtbot, window, "Ctrl+Z")
        assert panel.card(nodule).verdict is Verdict.UNDECIDED
        press(qtbot, window, "Ctrl+Shift+Z")
        assert panel.card(nodule).verdict is Verdict.MODIFIED

        # 4. Add a finding the AI missed: A, draw on the second slice, choose the type.
        viewer.set_slice(1)
        press(qtbot, window, "A")
        assert viewer.editor.active

        def describe(dialog: QWidget) -> None:
            assert isinstance(dialog, FindingDialog)
            dialog.type_combo.setCurrentIndex(dialog.type_combo.findText("Pneumothorax"))
            dialog.urgency_combo.setCurrentIndex(dialog.urgency_combo.findText("Critical"))
            dialog.comment.setText("missed apical pneumothorax")
            dialog.accept()

        answered = answer_modal(qtbot, FindingDialog, describe)
        corners = [(20.0, 100.0), (40.0, 100.0), (40.0, 118.0), (20.0, 118.0), (20.0, 101.0)]
        drag(qtbot, viewer, to_widget(viewer, 20.0, 100.0),
             [to_widget(viewer, x, y) for x, y in corners[1:]])
        qtbot.waitUntil(lambda: bool(answered), timeout=5000)
        added = [c for c in panel.cards if c.verdict is Verdict.ADDED]
        assert len(added) == 1 and added[0].finding.finding.meaning == "Pneumothorax"
        added_region = added[0].finding.regions[0]
        assert added_region.referenced_sop_uid == str(images[1].SOPInstanceUID)

        # 5. Submit (Ctrl+Enter): one commit to the outbox, the worklist shows it.
        assert panel.submit_button.isEnabled()
        assert "4 of 4 decided" in panel.progress_label.text()
        qtbot.wait(50)
        grab_png(window, tmp_path / "review-decided.png")
        press(qtbot, window, "Ctrl+Return")
        loop.wait_signal(window.review.sig_submitted)
        assert "submitted" in panel.progress_label.text().lower()
        row = window.worklist_panel.model.row_of(study_uid)
        assert window.worklist_panel.model.item_at(row).review is ReviewState.SUBMITTED
        assert window.outbox_indicator is not None
        assert window.outbox_indicator.text() == "Outbox: sending 2"
        qtbot.wait(50)  # let the card list lay out before the picture
        grab_png(window, tmp_path / "review-submitted.png")

        # The sender (the app's background thread does the same) stores both SRs.
        report = services.sender(archive).run_once()
        assert len(report.sent) == 2 and services.outbox.pending() == []
        window.outbox_indicator.poll()
        assert window.outbox_indicator.text() == "Outbox: all sent"
    finally:
        dispose(window)
    stored = {
        ref.sop_uid: archive.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid)
        for ref in archive.search_instances(study_uid, modality="SR")
    }
    assert len(stored) == 3
    kinds = {uid: read_ai_result(ds) for uid, ds in stored.items()}
    assessment_ds = next(ds for ds in stored.values() if ds.get("SeriesNumber") == 901)
    record = read_assessment(assessment_ds)
    assert record.assessed_sop_uid == str(ai_sr.SOPInstanceUID)
    assert record.reader_name == "BAILEY^MIRANDA"
    verdicts = {d.tracking_uid: d for d in record.decisions}
    assert verdicts[ich].verdict is Verdict.CONFIRMED
    assert verdicts[mass].verdict is Verdict.REJECTED
    assert verdicts[mass].reason == codes.REJECT_REASONS["false_positive"]
    assert verdicts[mass].comment == "vessel, not a mass"
    assert verdicts[nodule].verdict is Verdict.MODIFIED
    (added_uid,) = [u for u, d in verdicts.items() if d.verdict is Verdict.ADDED]
    assert verdicts[added_uid].comment == "missed apical pneumothorax"

    edited = next(r for r in kinds.values() if r.predecessor_uids)
    assert edited.predecessor_uids == (str(ai_sr.SOPInstanceUID),)
    found = {f.tracking_uid: f for f in edited.findings}
    assert set(found) == {ich, nodule, added_uid}
    assert np.allclose(found[nodule].regions[0].coordinates, moved.coordinates)
    assert found[added_uid].finding.same_concept(codes.PNEUMOTHORAX)
    assert found[added_uid].urgency is Urgency.CRITICAL
    assert found[added_uid].regions[0].referenced_sop_uid == str(images[1].SOPInstanceUID)

    # A fresh worklist (as after a restart) shows the study reviewed by this reader.
    item = WorklistService(archive, SETTINGS.weights).build().item(study_uid)
    assert item is not None and item.review is ReviewState.REVIEWED
    assert item.reviewed_by == "BAILEY^MIRANDA"
    assert services.audit.verify().ok
    kinds = [e.event.kind.value for e in services.audit.entries()]
    assert kinds[:3] == ["query", "study_opened", "findings_shown"]
    assert kinds.count("decision") == 4 and kinds.count("submit") == 1
    assert kinds.count("send_outcome") == 2
