"""Run a local AI model on the open study ("Run AI", Ctrl+I) and list the models (Ctrl+Shift+M).

The model runs in the inference worker process (``inference.service``), reached from
the window's background pool; progress shows in a dialog whose Cancel stops the run
within a second. The result becomes the same objects a server would store (a TID 1500
SR and a SEG): kept in a local folder or sent through the outbox, as the setting
``ai_results_to_archive`` says, and shown at once as ordinary finding cards and
overlays to confirm, reject or modify.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QProgressDialog,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.errors import CompanionError
from app.results.sr_reader import read_ai_result
from app.settings import Settings
from ui.actions import window_action
from ui.async_ops import OpFailed
from ui.main_window import MainWindow
from ui.model_chooser import ModelChooser
from ui.review_keys import key as review_key

log = logging.getLogger(__name__)
RUN_KEY = review_key("run_ai").sequences[0]
RUN_WITH_KEY = review_key("run_ai_with").sequences[0]
MODELS_KEY = review_key("models").sequences[0]


class RunAi(QObject):
    """The window's "Run AI" and "Models" actions; one inference worker for the app."""

    def __init__(self, window: MainWindow, settings: Settings) -> None:
        super().__init__(window)
        from inference.registry import ModelRegistry

        self.window = window
        self.settings = settings
        self.registry = ModelRegistry.from_settings(settings.models_folder)
        self._service: Any = None  # InferenceService, started on first use
        self.last_where = ""
        self.last_message = ""  # the last refusal shown ("" after a run started)
        self.chooser: ModelChooser | None = None  # while "Run AI with…" is open
        self.button = QPushButton(f"Run AI ({RUN_KEY.toString()})", window.study_view)
        self.button.setToolTip(
            "Run a local AI model on this series (Ctrl+I); choose the model: Ctrl+Shift+I; "
            "Ctrl+Shift+M lists them"
        )
        self.button.clicked.connect(self.start)
        window.study_view.bar.addWidget(self.button)
        window_action(window, "Run AI on this study", RUN_KEY, self.start)
        window_action(window, "Run AI with…", RUN_WITH_KEY, self.start_with_choice)
        window_action(window, "AI models", MODELS_KEY, self.show_models)
        window.sig_closed.connect(self.close)
        self._auto_seen: set[str] = set()  # studies auto-run already looked at
        self.auto_runs: list[tuple[str, int]] = []  # (study UID, findings) per auto-run
        window.sig_worklist_shown.connect(self._on_worklist)

    @property
    def service(self) -> Any:
        if self._service is None:
            from inference.service import InferenceService

            self._service = InferenceService(self.registry, device=self.settings.inference_device)
        return self._service

    def start(self) -> asyncio.Task[Any]:
        return self.window.ops.start(self.run())

    def start_with_choice(self) -> asyncio.Task[Any]:
        return self.window.ops.start(self.run(choose=True))

    def _refuse(self, text: str, *, banner: bool = True) -> bool:
        """Say why nothing runs (status bar, and the banner); always False."""
        self.last_message = text
        self.window.statusBar().showMessage(text, 20_000)
        if banner:
            self.window.banner.show_message(text)
        return False

    async def run(self, *, choose: bool = False, model: str = "") -> bool:
        """Run a model that fits the shown series; True once its findings are shown.

        The series' Body Part Examined, modality, slices and spacing are checked against
        every model first (``inference.choose``, as auto-run and ``companion infer`` do):
        with none that fits, nothing runs and the reason is shown. The chooser opens when
        asked (``choose``, "Run AI with…"), when several models fit, or when the fit cannot
        be checked (no body part in the series); otherwise the one that fits runs.
        ``model`` names the model to run (it still has to fit)."""
        from inference.choose import body_part_of, model_choices, refusal_text
        from inference.outputs import evidence_headers

        window = self.window
        if self.chooser is not None:  # Ctrl+I again while choosing: back to the chooser
            self.chooser.activateWindow()
            return False
        volume = window.study_view.volume
        if volume is None or not window.study_view.study_uid:
            return self._refuse("Open a study with images first", banner=False)
        study_uid, series_uid = volume.study_uid, volume.series_uid
        settings, archive = self.settings, window.archive
        services = window.review_services
        try:
            evidence = await window.ops.run(
                "Reading the series header",
                lambda _report: evidence_headers(archive, study_uid, series_uid),
            )
        except OpFailed:
            return False
        body_part = body_part_of(evidence)
        choices = model_choices(self.registry, volume, body_part)
        fitting = [c for c in choices if c.fits]
        if model:
            named = [c for c in choices if c.entry.name == model]
            if not named:
                return self._refuse(f"No model named {model!r} (Ctrl+Shift+M lists the models)")
            if not named[0].fits:
                return self._refuse(f"{model} does not fit this series: {named[0].refusal}")
            entry = named[0].entry
        elif not fitting:
            return self._refuse(refusal_text(choices, volume.modality, body_part))
        elif choose or len(fitting) > 1 or fitting[0].unverified:
            series = " ".join(p for p in (volume.modality, body_part, volume.description) if p)
            picked = await self._choose(choices, f"{series or 'this series'}")
            if picked is None:
                return False
            entry = picked
        else:
            entry = fitting[0].entry
        self.last_message = ""
        cancel = threading.Event()
        dialog = QProgressDialog(f"Running {entry.name}…", "Cancel", 0, 0, window)
        dialog.setWindowTitle("Run AI")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.canceled.connect(cancel.set)
        dialog.show()
        self.dialog = dialog

        def progress(done: int, total: int) -> None:
            dialog.setMaximum(max(total, 1))
            dialog.setValue(min(done, total))

        def job(report: Any) -> tuple[Any, Any, str]:  # on a pool thread: no Qt here
            from inference.outputs import (
                build_objects,
                keep_local,
                local_results_dir,
                store_via_outbox,
            )

            result = self.service.run(
                volume, entry, body_part=body_part, progress=report, cancel=cancel
            )
            objects = build_objects(result, evidence)
            if settings.ai_results_to_archive and services is not None:
                store_via_outbox(objects, services.outbox, services.destination)
                services.wake_senders()
                where = "queued for the archive (outbox)"
            else:
                keep_local(objects, local_results_dir())
                where = "kept on this computer"
            return result, objects, where

        try:
            result, objects, where = await window.ops.run(
                f"Running {entry.name}", job, on_progress=progress
            )
        except OpFailed:
            return False
        finally:
            dialog.close()
        for message in result.messages:
            window.statusBar().showMessage(message, 15_000)
        window.add_local_result(read_ai_result(objects.sr), objects.sr)
        self.last_where = where
        count = len(result.findings)
        window.statusBar().showMessage(
            f"{entry.name}: {count} finding(s), {where}", 20_000
        )
        if window.study_view.study_uid == study_uid:
            return await window.open_study(study_uid)
        return True

    async def _choose(self, choices: list[Any], series_text: str) -> Any | None:
        """Show the chooser and wait for the reader; the entry to run, or None."""
        chooser = ModelChooser(choices, series_text, self.window)
        self.chooser = chooser
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        chooser.finished.connect(lambda code: done.done() or done.set_result(code))
        chooser.open()
        try:
            await done
            return chooser.chosen
        finally:
            self.chooser = None
            chooser.deleteLater()

    # -- auto-run rules (setting autorun_rules) ----------------------------------------
    def _on_worklist(self) -> None:
        from inference.autorun import needs_autorun, rules_from_settings

        worklist = self.window.worklist
        if worklist is None or not self.settings.autorun_rules:
            return
        rules = rules_from_settings(self.settings.autorun_rules)
        todo = [
            i.study.study_uid
            for i in worklist.items
            if needs_autorun(i) and i.study.study_uid not in self._auto_seen
        ]
        self._auto_seen.update(todo)
        if todo:
            self.window.ops.start(self.auto_run(todo, rules))

    async def auto_run(self, study_uids: list[str], rules: list[Any]) -> int:
        """Run the rules' models on studies that arrived without AI results; how many ran."""
        window = self.window
        archive, settings, services = window.archive, self.settings, window.review_services
        available = [e.name for e in self.registry.models() if e.available]

        def job(_report: Any) -> list[tuple[Any, Any]]:  # a pool thread: no Qt here
            from app.archive.volume import display_series, load_volume
            from inference.autorun import plan_autorun
            from inference.choose import series_body_part
            from inference.outputs import (
                build_objects,
                evidence_headers,
                keep_local,
                local_results_dir,
                store_via_outbox,
            )

            done = []
            for study_uid in study_uids:
                try:
                    series = display_series(archive, study_uid)
                    body_parts = {
                        s.series_uid: series_body_part(archive, study_uid, s.series_uid)
                        for s in series
                    }
                    plan = plan_autorun(rules, series, body_parts, available)
                except CompanionError as exc:
                    log.warning("auto-run: the study's series could not be listed: %s", exc)
                    continue
                for run in plan:
                    try:
                        volume = load_volume(archive, run.study_uid, run.series_uid)
                        result = self.service.run(
                            volume, run.model, body_part=body_parts.get(run.series_uid, "")
                        )
                        evidence = evidence_headers(archive, run.study_uid, run.series_uid)
                        objects = build_objects(result, evidence)
                        if settings.ai_results_to_archive and services is not None:
                            store_via_outbox(objects, services.outbox, services.destination)
                            services.wake_senders()
                        else:
                            keep_local(objects, local_results_dir())
                    except CompanionError as exc:  # e.g. a series the model does not fit
                        log.warning("auto-run of %s skipped a series: %s", run.model, exc)
                        continue
                    done.append((result, objects))
            return done

        try:
            done = await window.ops.run("Running AI models on new studies", job)
        except OpFailed:
            return 0
        for result, objects in done:
            window.add_local_result(read_ai_result(objects.sr), objects.sr)
            self.auto_runs.append((result.study_uid, len(result.findings)))
        if done:
            found = sum(len(r.findings) for r, _ in done)
            window.statusBar().showMessage(
                f"Auto-run: {len(done)} model run(s) on new studies, {found} finding(s)", 20_000
            )
        return len(done)

    def show_models(self) -> None:
        ModelsDialog(self.registry.refresh(), self.window).open()

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None


def takes_text(takes: dict[str, Any]) -> str:
    """A model's input filter in words: "CT · HEAD, BRAIN · at least 16 slices"."""
    parts = []
    for key, value in takes.items():
        if not value:
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        parts.append(f"at least {value} slices" if key == "min_slices" else str(value))
    return " · ".join(parts) or "–"


def machine_text() -> str:
    """What local inference would run on here (torch and GPU), for the Models dialog."""
    from inference.devices import describe

    device = describe()
    if not device.torch_version:
        why = f" ({device.problem})" if device.problem else ""
        return f"torch is not installed{why}: models cannot run (the review flavor)"
    if device.gpu_name:
        return (
            f"GPU {device.gpu_name}, {device.gpu_memory_gib:.0f} GiB "
            f"(torch {device.torch_version})"
        )
    return f"CPU, no CUDA GPU (torch {device.torch_version})"


class ModelsDialog(QDialog):
    """The local models: what each is for, what it takes, and why one is unavailable."""

    COLUMNS = ("Model", "Version", "State", "Intended use", "Takes", "Runs on", "Source")

    def __init__(self, entries: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("AI models")
        self.resize(1100, 380)
        self.table = QTableWidget(len(entries), len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        for row, entry in enumerate(entries):
            info = entry.to_json()
            takes = info.get("input_filter") or {}
            cells = (
                entry.name,
                info.get("version") or "–",
                "available" if entry.available else f"unavailable: {entry.reason}",
                info.get("intended_use") or "–",
                takes_text(takes),
                "GPU only"
                if info.get("requires_gpu")
                else ("GPU (half precision) or CPU" if info.get("half_precision") else "GPU or CPU"),
                entry.source,
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                item.setToolTip(str(text))
                self.table.setItem(row, col, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)  # intended use
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(4, 200)
        self.table.resizeRowsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        self.machine = QLabel(f"This computer: {machine_text()}", self)
        layout = QVBoxLayout(self)
        layout.addWidget(self.machine)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
