"""The review controller on a slide: E edits a tumor outline's corners on the slide viewer,
A draws a missed region (then the type dialog), and the slide view shows the reader's version."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.archive.tiles import TileSource
from app.demo.slide_annotations import build_slide_annotations
from app.domain import AIStatus, StudyRef, Verdict
from app.errors import ArchiveError
from app.results import codes
from app.results.ann_reader import ANN_SOP_CLASS, read_bulk_annotations
from app.review.slide_regions import ADDED_LABEL
from tests.pathology.slide_data import pyramid_of, small_slide
from tests.ui.qt_helpers import LoopDriver, dispose
from tests.ui.test_review_ui import answer_modal
from ui.review_dialogs import FindingDialog
from ui.workstation import Workstation
from viewers.slide_viewer import SlideViewer

pytestmark = pytest.mark.gui


class _NoTiles:
    def retrieve_frames(self, *args: object, **kwargs: object) -> list[bytes]:
        raise ArchiveError("no frames here")


@pytest.fixture()
def slide_view(qtbot: QtBot) -> Iterator[SlideViewer]:
    slide = small_slide()
    source = TileSource(_NoTiles(), pyramid_of(slide))  # type: ignore[arg-type]
    view = SlideViewer(source)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    yield view
    dispose(view)
    source.close()


def _screen(view: SlideViewer, point: tuple[float, ...]) -> QPoint:
    ((x, y),) = view.viewport.to_screen(np.array([point[:2]], dtype=np.float64))
    return QPoint(round(x), round(y))


def test_edit_and_add_regions_on_the_slide(
    station: Workstation, slide_view: SlideViewer, qtbot: QtBot, loop: LoopDriver
) -> None:
    slide = small_slide()
    ann = build_slide_annotations(slide)
    read = read_bulk_annotations(ann)
    controller = station.window.review
    controller.connect_editor(slide_view.editor)
    controller.open(
        StudyRef(slide.study_uid),
        [read.result],
        {str(ann.SOPInstanceUID): ann},
        AIStatus.DONE,
        [],
    )
    session = controller.session
    assert session is not None and len(session.items) == len(read.result.findings)
    tumors = [f for f in read.result.findings if f.regions[0].graphic_type == "POLYGON"]
    tumor_group = next(g for g in read.groups if g.label == "Tumor region")

    # E on a tumor region: its corners on the slide; drag one, Enter keeps it.
    controller.act("edit_region", tumors[0].tracking_uid)
    assert slide_view.editor.active
    start = _screen(slide_view, tumors[0].regions[0].coordinates[0])
    end = start + QPoint(30, 20)
    QTest.mousePress(slide_view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(slide_view, end)
    QTest.mouseRelease(slide_view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    QTest.keyClick(slide_view, Qt.Key.Key_Return)
    item = session.item(tumors[0].tracking_uid)
    assert item.verdict is Verdict.MODIFIED
    moved = slide_view.viewport.to_base(end.x(), end.y())
    assert item.current.regions[0].coordinates[0] == pytest.approx(moved, abs=0.05)
    shown = next(
        layer.group for layer in slide_view.layers if layer.group.number == tumor_group.number
    )
    np.testing.assert_allclose(shown.shapes[0][0], moved, atol=0.05)

    # A rejection disappears from the slide view.
    session.reject(tumors[1].tracking_uid, codes.REJECT_REASONS["false_positive"])
    shown = next(
        layer.group for layer in slide_view.layers if layer.group.number == tumor_group.number
    )
    assert shown.count == tumor_group.count - 1

    # A: click the corners of a missed region, Enter, choose its type.
    controller.act("add")
    assert slide_view.editor.active
    corners = [QPoint(100, 100), QPoint(180, 100), QPoint(160, 170)]
    for p in corners:
        QTest.mouseClick(slide_view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)

    offered: list[str] = []

    def accept(dialog: QWidget) -> None:
        assert isinstance(dialog, FindingDialog)
        combo = dialog.type_combo
        offered.extend(combo.itemText(i) for i in range(combo.count()))
        combo.setCurrentIndex(combo.findText("Necrosis"))
        dialog.accept()

    answered = answer_modal(qtbot, FindingDialog, accept)
    QTest.keyClick(slide_view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(answered), timeout=5000)
    added = [i for i in session.items if i.verdict is Verdict.ADDED]
    assert len(added) == 1
    region = added[0].current.regions[0]
    assert region.graphic_type == "POLYGON"
    assert region.referenced_sop_uid == str(slide.levels[0].SOPInstanceUID)
    # a region on the slide is typed from the pathology list, not the radiology one
    assert "Necrosis" in offered and "Intracranial hemorrhage" not in offered
    assert added[0].current.finding.meaning == "Necrosis"
    assert any(layer.group.label == ADDED_LABEL for layer in slide_view.layers)

    # Submit: the assessment SR and the edited annotations, in the outbox together.
    for uid in session.undecided():
        session.confirm(uid)
    services = controller.services
    assert services is not None
    before = {i.sop_instance_uid for i in services.outbox.items()}
    receipt = loop.run(controller.submit())
    assert receipt is not None and len(receipt.edited_uids) == 1
    queued = {i.sop_instance_uid: i for i in services.outbox.items()}
    assert set(queued) - before == set(receipt.sop_uids)
    assert queued[receipt.edited_uids[0]].sop_class_uid == ANN_SOP_CLASS
    assert controller.session is None
    controller.close()
    assert not slide_view.editor.active
