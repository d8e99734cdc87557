"""Issue 6's acceptance test, through the main window: open the demo slide from the worklist,
fly to the first AI region, confirm it, reject another with a reason, edit a polygon on the
slide, submit; the sender stores the assessment SR and the edited bulk annotations in a real
Orthanc, and both are read back from it and checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from app.archive.client import DicomClientArchive, open_dicomweb
from app.demo.slide import generate_slide
from app.demo.slide_annotations import build_slide_annotations
from app.demo.slide_catalog import demo_slide_spec
from app.domain import Algorithm, Code, Finding, Region, Urgency, Verdict
from app.results import codes
from app.results.ann_reader import ANN_SOP_CLASS, read_bulk_annotations
from app.results.assessment_reader import read_assessment
from app.results.sr_writer import build_ai_result_sr
from app.review.services import ReviewServices, open_review_services
from app.settings import Settings
from app.worklist.service import WorklistService
from tests.support import orthanc
from tests.ui.qt_helpers import LoopDriver, dispose
from tests.ui.test_review_ui import grab_png, press, reject_with_reason
from ui.main_window import MainWindow
from ui.slide_study import region_box
from ui.theme import apply_theme

pytestmark = [pytest.mark.gui, pytest.mark.orthanc]

SETTINGS = Settings(reader_id="dr.path", reader_name="PATH^OLOGIST", reader_organization="Lab")
SIZE = "2048x1536"  # three levels: small enough for CI, big enough to fly somewhere


@pytest.fixture()
def services(
    memory_keyring: object, empty_orthanc: orthanc.OrthancServer
) -> Iterator[ReviewServices]:
    review = open_review_services(
        SETTINGS, destination=empty_orthanc.dicomweb_url.rstrip("/"), demo=False
    )
    yield review
    review.close()


def _window(archive: DicomClientArchive, services: ReviewServices, qtbot: QtBot) -> MainWindow:
    """The main window over ``archive``, reviewing with ``services``, shown."""
    service = WorklistService(archive, SETTINGS.weights)
    service.locally_submitted = services.store.submitted_studies
    apply_theme(QApplication.instance())  # type: ignore[arg-type]
    window = MainWindow(archive, service, SETTINGS, mode_label="DICOMweb", review=services)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    return window


def _open_the_study(window: MainWindow, loop: LoopDriver) -> None:
    """Refresh the worklist, which holds one study, and open it as a click on its row does."""
    built = loop.run(window.refresh())
    assert built is not None
    (item,) = built.items
    assert window.worklist_panel.select_study(item.study.study_uid)
    loop.wait_signal(window.sig_study_shown, timeout=60)


def test_slide_review_from_worklist_to_archive(
    empty_orthanc: orthanc.OrthancServer,
    services: ReviewServices,
    qtbot: QtBot,
    loop: LoopDriver,
    tmp_path: Path,
) -> None:
    slide = generate_slide(demo_slide_spec(seed=11, size=SIZE))
    ann = build_slide_annotations(slide)
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*slide.levels, ann])
    ai = read_bulk_annotations(ann)
    study_uid = slide.study_uid
    window = _window(archive, services, qtbot)
    try:
        # The worklist lists the slide study; opening its row shows the slide viewer.
        built = loop.run(window.refresh())
        assert built is not None and [i.study.study_uid for i in built.items] == [study_uid]
        assert window.worklist_panel.select_study(study_uid)
        loop.wait_signal(window.sig_study_shown, timeout=60)
        view = window.study_view
        assert view.showing_slide
        viewer = view.slide.viewer
        assert viewer is not None
        loop.until(lambda: not viewer.pending_tiles(), timeout=30)
        panel = window.findings_panel
        assert window.review.session is not None
        assert [c.verdict for c in panel.cards] == [Verdict.UNDECIDED] * len(ai.result.findings)

        tumors = [f for f in ai.result.findings if f.tracking_id.startswith("Tumor region ")]
        assert len(tumors) == 3

        # 1. Fly to the first AI region (J from the top), confirm it (C).
        press(qtbot, window, "J")
        first = panel.cards[0].finding
        assert panel.selected == first.tracking_uid and first in tumors
        box = region_box(first)
        assert box is not None
        vp = viewer.viewport
        assert box[0] <= vp.cx <= box[2] and box[1] <= vp.cy <= box[3]
        loop.until(lambda: not viewer.pending_tiles(), timeout=30)
        grab_png(window, tmp_path / "slide-review-flown.png")
        press(qtbot, window, "C")
        assert panel.card(first.tracking_uid).verdict is Verdict.CONFIRMED
        second, third = [f for f in tumors if f.tracking_uid != first.tracking_uid]

        # 2. Reject the second with a reason (X, then 1 = false positive, and a comment).
        qtbot.mouseClick(panel.card(second.tracking_uid), Qt.MouseButton.LeftButton)
        assert panel.selected == second.tracking_uid

        answered = reject_with_reason(qtbot, window, "stroma, not tumour")
        assert answered and panel.card(second.tracking_uid).verdict is Verdict.REJECTED

        # 3. Edit the third tumour's polygon on the slide: E, drag a corner, Enter.
        qtbot.mouseClick(panel.card(third.tracking_uid), Qt.MouseButton.LeftButton)
        press(qtbot, window, "E")
        editor = viewer.editor
        assert editor.active
        corner = third.regions[0].coordinates[0]
        ((sx, sy),) = vp.to_screen(np.array([corner[:2]], dtype=np.float64))
        start = QPoint(round(sx), round(sy))
        end = start + QPoint(25, 15)
        QTest.mousePress(viewer, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
        QTest.mouseMove(viewer, end)
        grab_png(window, tmp_path / "slide-review-editing.png")
        QTest.mouseRelease(viewer, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
        QTest.keyClick(viewer, Qt.Key.Key_Return)
        assert not editor.active
        assert panel.card(third.tracking_uid).verdict is Verdict.MODIFIED
        moved = vp.to_base(end.x(), end.y())
        edited_region = window.review.session.item(third.tracking_uid).current.regions[0]  # type: ignore[union-attr]
        assert edited_region.coordinates[0][:2] == pytest.approx(moved, abs=0.05)
        # the slide shows the reader's version: the moved corner, the rejected region gone
        tumor_layer = next(
            layer for layer in viewer.layers if layer.group.label.startswith("Tumor region")
        )
        ai_tumor = next(g for g in ai.groups if g.label == "Tumor region")
        assert tumor_layer.group.count == ai_tumor.count - 1
        legend = view.slide.legend  # counts what is drawn
        assert legend.counts[tumor_layer.group.number].text() == f"{ai_tumor.count - 1} regions"

        # 4. Decide the rest (confirm), submit (Ctrl+Enter), the sender stores both objects.
        session = window.review.session
        assert session is not None
        for uid in session.undecided():
            session.confirm(uid)
        grab_png(window, tmp_path / "slide-review-decided.png")
        press(qtbot, window, "Ctrl+Return")
        loop.wait_signal(window.review.sig_submitted)
        report = services.sender(archive).run_once()
        assert len(report.sent) == 2 and services.outbox.pending() == []
        grab_png(window, tmp_path / "slide-review-submitted.png")
    finally:
        dispose(window)

    # Read both back from Orthanc.
    srs = archive.search_instances(study_uid, modality="SR")
    assert len(srs) == 1
    ref = srs[0]
    record = read_assessment(archive.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid))
    assert record.assessed_sop_uid == str(ann.SOPInstanceUID)
    assert record.reader_name == "PATH^OLOGIST"
    verdicts = {d.tracking_uid: d for d in record.decisions}
    assert set(verdicts) == {f.tracking_uid for f in ai.result.findings}
    assert verdicts[first.tracking_uid].verdict is Verdict.CONFIRMED
    assert verdicts[third.tracking_uid].verdict is Verdict.MODIFIED
    assert verdicts[second.tracking_uid].verdict is Verdict.REJECTED
    assert verdicts[second.tracking_uid].reason == codes.REJECT_REASONS["false_positive"]
    assert verdicts[second.tracking_uid].comment == "stroma, not tumour"

    anns = archive.search_instances(study_uid, modality="ANN")
    edited_refs = [r for r in anns if r.sop_uid != str(ann.SOPInstanceUID)]
    assert len(anns) == 2 and len(edited_refs) == 1
    edited_ds = archive.retrieve_instance(
        edited_refs[0].study_uid, edited_refs[0].series_uid, edited_refs[0].sop_uid
    )
    assert str(edited_ds.SOPClassUID) == ANN_SOP_CLASS
    assert str(edited_ds.SeriesInstanceUID) != str(ann.SeriesInstanceUID)
    edited = read_bulk_annotations(edited_ds)
    assert edited.result.predecessor_uids == (str(ann.SOPInstanceUID),)
    tumor_groups = [g for g in edited.groups if g.label.startswith("Tumor region")]
    shapes = [np.asarray(s)[:, :2] for g in tumor_groups for s in g.shapes]
    assert len(shapes) == ai_tumor.count - 1
    assert any(np.allclose(s[0], moved, atol=0.05) for s in shapes)  # the edited corner
    # the worklist now shows the reader's version (the edited object supersedes the AI's)
    item = WorklistService(archive, SETTINGS.weights).build().item(study_uid)
    assert item is not None
    assert {f.tracking_id for f in item.findings} == {f.tracking_id for f in edited.result.findings}


def test_a_slide_with_annotations_in_slide_coordinates(
    empty_orthanc: orthanc.OrthancServer,
    services: ReviewServices,
    qtbot: QtBot,
    loop: LoopDriver,
    tmp_path: Path,
) -> None:
    """AI annotations in 3D slide coordinates (mm) are drawn where the 2D ones of the same
    slide are, J flies to them, and an outline edit is refused with the reason."""
    slide = generate_slide(demo_slide_spec(seed=5, size=SIZE))
    ann = build_slide_annotations(slide, slide_coordinates=True)
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*slide.levels, ann])
    window = _window(archive, services, qtbot)
    try:
        _open_the_study(window, loop)
        study = window.study_view.slide
        viewer = study.viewer
        assert viewer is not None and study.material is not None
        assert study.material.problems == ()
        flat = {g.label: g for g in read_bulk_annotations(build_slide_annotations(slide)).groups}
        for layer in viewer.layers:
            want = flat[layer.group.label].shapes[0]
            np.testing.assert_allclose(layer.group.shapes[0], want, atol=1e-3)

        window.review_actions["next"].trigger()
        selected = window.findings_panel.selected
        finding = next(
            c.finding for c in window.findings_panel.cards if c.finding.tracking_uid == selected
        )
        assert finding.regions[0].is_3d
        card = window.findings_panel.card(selected)
        lines = [w.text() for w in card.findChildren(QLabel)]
        assert "Region: Polygon (slide coordinates, mm)" in lines
        x0, y0, x1, y1 = region_box(finding, study.material.pyramid)  # type: ignore[misc]
        vp = viewer.viewport
        assert x0 <= vp.cx <= x1 and y0 <= vp.cy <= y1
        assert viewer.highlight == (x0, y0, x1, y1)
        loop.until(lambda: not viewer.pending_tiles(), timeout=30)
        grab_png(window, tmp_path / "slide-3d-flown.png")

        messages: list[str] = []
        window.review.sig_message.connect(messages.append)
        press(qtbot, window, "E")
        assert messages and "slide coordinates (mm)" in messages[-1]
        assert not viewer.editor.active  # type: ignore[attr-defined]
        press(qtbot, window, "A")
        assert "slide coordinates (mm)" in messages[-1] and len(messages) == 2
        assert not viewer.editor.active  # type: ignore[attr-defined]
        # confirm and reject still work on such a finding
        press(qtbot, window, "C")
        assert window.findings_panel.card(selected).verdict is Verdict.CONFIRMED
    finally:
        dispose(window)


def test_sr_regions_on_the_slide_are_drawn_and_follow_the_review(
    empty_orthanc: orthanc.OrthancServer,
    services: ReviewServices,
    qtbot: QtBot,
    loop: LoopDriver,
    tmp_path: Path,
) -> None:
    """A TID 1500 SR whose region references the slide (no bulk annotations): drawn on the
    slide as its own group, flown to, and no longer drawn once the reader rejects it."""
    slide = generate_slide(demo_slide_spec(seed=7, size=SIZE))
    outline = ((300.0, 200.0), (700.0, 220.0), (650.0, 600.0), (320.0, 560.0), (300.0, 200.0))
    finding = Finding(
        tracking_uid=generate_uid(),
        tracking_id="Mitotic hotspot 1",
        finding=Code("108369006", "SCT", "Neoplasm"),
        site=None,
        certainty=0.81,
        urgency=Urgency.ROUTINE,
        algorithm=Algorithm("Hotspot AI", "2.0", "Acme"),
        regions=(Region("POLYLINE", outline, str(slide.levels[0].SOPInstanceUID)),),
        measurements=(),
        source_sop_uid="",
    )
    sr = build_ai_result_sr(
        [slide.levels[0]],
        finding.algorithm,
        [finding],
        series_instance_uid=generate_uid(),
        sop_instance_uid=generate_uid(),
    )
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*slide.levels, sr])
    window = _window(archive, services, qtbot)
    try:
        _open_the_study(window, loop)
        viewer = window.study_view.slide.viewer
        assert viewer is not None
        (layer,) = viewer.layers
        assert layer.group.label == "Mitotic hotspot 1" and layer.group.graphic_type == "POLYGON"
        np.testing.assert_allclose(layer.group.shapes[0], outline, atol=1e-3)
        assert window.study_view.slide.legend.checks[layer.group.number].text() == layer.group.label

        press(qtbot, window, "J")
        vp = viewer.viewport
        assert 300 <= vp.cx <= 700 and 200 <= vp.cy <= 600
        card = window.findings_panel.card(finding.tracking_uid)
        assert "Region: Polyline (on the slide)" in [w.text() for w in card.findChildren(QLabel)]
        loop.until(lambda: not viewer.pending_tiles(), timeout=30)
        grab_png(window, tmp_path / "slide-sr-region.png")

        answered = reject_with_reason(qtbot, window)
        assert answered and viewer.layers == []  # the rejected region is not drawn
    finally:
        dispose(window)
