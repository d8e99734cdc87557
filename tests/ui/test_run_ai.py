"""Run AI on the open study: the shipped demo model in its worker process, on the CPU.

The offline demo archive (app/demo) is real DICOM in a real local archive; the model
is the shipped MONAI bundle. The result shows as finding cards like a server's, is
kept as files (SR + SEG), and can be confirmed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.archive.client import DicomClientArchive
from app.archive.volume import display_series
from app.demo import ensure_demo_archive
from app.domain import Verdict
from app.review.services import ReviewServices, open_review_services
from app.settings import Settings, data_dir
from app.worklist.service import WorklistService
from tests.ui.qt_helpers import LoopDriver, dispose
from ui.app import window_size
from ui.main_window import MainWindow
from ui.run_ai import ModelsDialog, RunAi
from ui.theme import apply_theme

pytestmark = pytest.mark.gui
SETTINGS = Settings(reader_id="dr.ai", reader_name="RUN^AI")


@pytest.fixture()
def demo_window(
    tmp_path: Path, memory_keyring: object, qtbot: QtBot, loop: LoopDriver
) -> Iterator[tuple[MainWindow, RunAi, ReviewServices]]:
    archive = ensure_demo_archive(tmp_path / "demo")
    services = open_review_services(SETTINGS, destination="demo", demo=True)
    apply_theme(QApplication.instance())  # type: ignore[arg-type]
    window = MainWindow(archive, WorklistService(archive, SETTINGS.weights), SETTINGS,
                        mode_label="Offline demo", review=services)
    window.resize(*window_size())
    run_ai = RunAi(window, SETTINGS)
    window.show()
    qtbot.waitExposed(window)
    yield window, run_ai, services
    dispose(window)
    services.close()


def copy_study(archive: DicomClientArchive, study_uid: str, tag: str, body_part: str | None) -> str:
    """Store a copy of a demo study's image series under new UIDs with another Body Part
    Examined (None: without one); returns the copy's study UID."""
    (series,) = display_series(archive, study_uid)
    new_study = generate_uid(entropy_srcs=[study_uid, tag])
    new_series = generate_uid(entropy_srcs=[series.series_uid, tag])
    copies = []
    for ds in archive.iter_series(study_uid, series.series_uid):
        ds.StudyInstanceUID, ds.SeriesInstanceUID = new_study, new_series
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), tag])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.AccessionNumber = tag[:16]
        ds.StudyDescription = f"CT {body_part or 'UNKNOWN PART'} ({tag})"
        if body_part is None:
            del ds.BodyPartExamined
        else:
            ds.BodyPartExamined = body_part
        copies.append(ds)
    archive.store(copies)
    return new_study


def overlay_pixels(window: MainWindow, tracking_uid: str) -> np.ndarray:
    """The pixels the finding's overlay changes on screen: rendered with it shown minus
    rendered with it hidden (the archive's own results on the same lesion stay out)."""
    view, viewer = window.study_view, window.study_view.viewer
    viewer.set_text_visible(False)
    shown = viewer.rendered_rgb().astype(int)
    view.set_finding_visible(tracking_uid, False)
    hidden = viewer.rendered_rgb().astype(int)
    view.set_finding_visible(tracking_uid, True)
    return np.abs(shown - hidden).max(axis=2) > 60


def test_run_ai_shows_reviewable_findings_and_keeps_the_objects(
    demo_window: tuple[MainWindow, RunAi, ReviewServices],
    loop: LoopDriver,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    window, run_ai, _services = demo_window
    built = loop.run(window.refresh())
    assert built is not None
    head = next(i for i in built.items if "HEAD" in i.study.description.upper() and i.critical)
    assert loop.run(window.open_study(head.study.study_uid), 120)
    before = {c.finding.tracking_uid for c in window.findings_panel.cards}

    # "Run AI with…" (Ctrl+Shift+I): the chooser lists the model, preselected; Enter runs it.
    task = run_ai.start_with_choice()
    loop.until(lambda: run_ai.chooser is not None and run_ai.chooser.isVisible(), 30)
    chooser = run_ai.chooser
    assert chooser is not None and chooser.current is not None
    assert chooser.current.entry.name == "ich_demo_ct" and not chooser.current.unverified
    assert "CT HEAD" in chooser.heading.text()
    qtbot.keyClick(chooser.list, Qt.Key.Key_Return)
    assert loop.run(task, 300)
    cards = [c for c in window.findings_panel.cards if c.finding.tracking_uid not in before]
    assert cards, "the model's findings show as cards"
    assert all(c.finding.algorithm.name == "ICH Demo (synthetic)" for c in cards)
    assert cards[0].finding.finding.meaning == "Intracranial hemorrhage"
    assert run_ai.last_where == "kept on this computer"
    kept = list((data_dir() / "ai-results" / head.study.study_uid).glob("*.dcm"))
    assert sorted(p.name.split("-")[0] for p in kept) == ["SEG", "SR"]

    # The finding's outline is drawn on the viewer, on its slice, where its region is.
    finding = cards[0].finding
    (region,) = finding.regions
    assert window.study_view.show_finding(finding.tracking_uid)
    viewer = window.study_view.viewer
    volume = viewer.volume
    assert volume.sop_uids[viewer.slice_index] == region.referenced_sop_uid
    assert finding.tracking_uid in {o.owner for o in viewer.overlays.outlines}
    drawn = overlay_pixels(window, finding.tracking_uid)
    ys, xs = np.nonzero(drawn)
    assert ys.size > 20, "the outline changes pixels on screen"
    cols = [c for c, _r in region.coordinates]
    rows = [r for _c, r in region.coordinates]
    _, dy, dx = volume.spacing
    # SCOORD (column, row) -> world mm: pixel (i, j) has its centre at SCOORD (i + .5, j + .5)
    x0, y0 = viewer.world_to_widget((min(cols) - 0.5) * dx, (min(rows) - 0.5) * dy)
    x1, y1 = viewer.world_to_widget((max(cols) - 0.5) * dx, (max(rows) - 0.5) * dy)
    tol = 4  # the line's width, plus rounding
    outline = xs <= max(x0, x1) + tol  # right of it: the measurement label ("Volume 24 ml")
    xs_o, ys_o = xs[outline], ys[outline]
    assert abs(xs_o.min() - min(x0, x1)) <= tol and abs(xs_o.max() - max(x0, x1)) <= tol
    assert abs(ys_o.min() - min(y0, y1)) <= tol and abs(ys_o.max() - max(y0, y1)) <= tol
    label_ys = ys[~outline]
    assert label_ys.size and abs(label_ys.min() - min(y0, y1)) <= 12, "label at its top right"
    window.screen().grabWindow(window.winId()).save(str(tmp_path / "run-ai.png"))

    # They are ordinary findings: the reader confirms one.
    window.review.act("confirm", cards[0].finding.tracking_uid)
    card = window.findings_panel.card(cards[0].finding.tracking_uid)
    assert card is not None and card.verdict is Verdict.CONFIRMED

    # A later session (a new window) finds the kept result when the study opens.
    fresh = MainWindow(window.archive, WorklistService(window.archive, SETTINGS.weights),
                       SETTINGS, mode_label="Offline demo")
    try:
        results, _srs = fresh._review_material(head.study.study_uid)
        assert any(r.algorithm and r.algorithm.name == "ICH Demo (synthetic)" for r in results)
    finally:
        dispose(fresh)

    dialog = ModelsDialog(run_ai.registry.models(), window)
    texts = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert "ich_demo_ct" in " ".join(texts) or "ICH" in " ".join(texts)
    assert "torch 2." in dialog.machine.text()  # what it runs on here: the CPU
    assert dialog.table.item(0, 5).text() in ("GPU or CPU", "GPU (half precision) or CPU")
    dialog.close()


def test_run_ai_refuses_a_series_the_model_does_not_fit_and_asks_when_it_cannot_tell(
    demo_window: tuple[MainWindow, RunAi, ReviewServices],
    loop: LoopDriver,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    """A chest CT: the head model is refused before anything runs, with the reason. A CT
    without Body Part Examined: the chooser opens and says what to check; Esc runs nothing."""
    window, run_ai, _services = demo_window
    archive = window.archive
    head = next(
        s.study_uid
        for s in archive.search_studies()
        if "HEAD" in (s.description or "").upper() and "CT" in s.modalities
    )
    chest = copy_study(archive, head, "chest-copy", "CHEST")
    unknown = copy_study(archive, head, "no-part-copy", None)
    assert loop.run(window.refresh()) is not None

    assert loop.run(window.open_study(chest), 120)
    assert not loop.run(run_ai.run(), 60)
    assert run_ai.last_message.startswith("No model fits this CT CHEST series")
    assert "takes body part HEAD/BRAIN, this series is CHEST" in run_ai.last_message
    assert window.banner.isVisible() and "CHEST" in window.banner.label.text()
    assert run_ai._service is None, "no worker was started: nothing ran"
    assert not (data_dir() / "ai-results" / chest).exists()
    # Naming the model does not get round the check.
    assert not loop.run(run_ai.run(model="ich_demo_ct"), 60)
    assert run_ai.last_message.startswith("ich_demo_ct does not fit this series")

    assert loop.run(window.open_study(unknown), 120)
    task = run_ai.start()  # Ctrl+I: the fit cannot be checked, so the reader is asked
    loop.until(lambda: run_ai.chooser is not None and run_ai.chooser.isVisible(), 30)
    chooser = run_ai.chooser
    assert chooser is not None and chooser.current is not None
    assert "no Body Part Examined" in chooser.note.text()
    chooser.grab().save(str(tmp_path / "chooser.png"))
    qtbot.keyClick(chooser.list, Qt.Key.Key_Escape)
    assert not loop.run(task, 30)
    assert run_ai._service is None
    assert not (data_dir() / "ai-results" / unknown).exists()


def test_auto_run_rules_run_the_model_on_new_studies_without_ai(
    tmp_path: Path, memory_keyring: object, qtbot: QtBot, loop: LoopDriver
) -> None:
    # body_part matches only when the series' Body Part Examined is read from the archive
    rule = {"model": "ich_demo_ct", "modality": "CT", "body_part": ["HEAD"]}
    settings = Settings(autorun_rules=[rule])
    archive = ensure_demo_archive(tmp_path / "demo")
    window = MainWindow(archive, WorklistService(archive, settings.weights), settings,
                        mode_label="Offline demo")
    run_ai = RunAi(window, settings)
    try:
        window.show()
        qtbot.waitExposed(window)
        built = loop.run(window.refresh())
        assert built is not None
        no_ai_ct = [i.study.study_uid for i in built.items
                    if i.ai_status.value == "none" and "CT" in i.study.modalities]
        assert no_ai_ct
        loop.until(lambda: bool(run_ai.auto_runs), 300)
        assert sorted(uid for uid, _n in run_ai.auto_runs) == sorted(no_ai_ct)
        # The study now has the model's result ("ran, found N") beside the archive's.
        study_uid = run_ai.auto_runs[0][0]
        results, _srs = window._review_material(study_uid)
        ours = [r for r in results if r.algorithm and r.algorithm.name == "ICH Demo (synthetic)"]
        assert len(ours) == 1 and len(ours[0].findings) == run_ai.auto_runs[0][1]
        # The next refresh does not run it again.
        loop.run(window.refresh())
        assert len(run_ai.auto_runs) == len(no_ai_ct)
    finally:
        dispose(window)
