"""Run AI on the open study: the shipped demo model in its worker process, on the CPU.

The offline demo archive (app/demo) is real DICOM in a real local archive; the model
is the shipped MONAI bundle. The result shows as finding cards like a server's, is
kept as files (SR + SEG), and can be confirmed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

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


def test_run_ai_shows_reviewable_findings_and_keeps_the_objects(
    demo_window: tuple[MainWindow, RunAi, ReviewServices], loop: LoopDriver, tmp_path: Path
) -> None:
    window, run_ai, _services = demo_window
    built = loop.run(window.refresh())
    assert built is not None
    head = next(i for i in built.items if "HEAD" in i.study.description.upper() and i.critical)
    assert loop.run(window.open_study(head.study.study_uid), 120)
    before = {c.finding.tracking_uid for c in window.findings_panel.cards}

    assert loop.run(run_ai.run(), 300)
    cards = [c for c in window.findings_panel.cards if c.finding.tracking_uid not in before]
    assert cards, "the model's findings show as cards"
    assert all(c.finding.algorithm.name == "ICH Demo (synthetic)" for c in cards)
    assert cards[0].finding.finding.meaning == "Intracranial hemorrhage"
    assert run_ai.last_where == "kept on this computer"
    kept = list((data_dir() / "ai-results" / head.study.study_uid).glob("*.dcm"))
    assert sorted(p.name.split("-")[0] for p in kept) == ["SEG", "SR"]

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


def test_auto_run_rules_run_the_model_on_new_studies_without_ai(
    tmp_path: Path, memory_keyring: object, qtbot: QtBot, loop: LoopDriver
) -> None:
    settings = Settings(autorun_rules=[{"model": "ich_demo_ct", "modality": "CT"}])
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
