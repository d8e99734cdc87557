"""Choose the AI model to run on the shown series ("Run AI with…", Ctrl+Shift+I).

Lists every model: those that fit the series first (the default, the first of them,
is preselected), then the rest, greyed, each with the reason it is refused. Keyboard
first: Up/Down to choose, Enter runs, Esc closes. A fit that could not be checked
(the series has no Body Part Examined) is said under the list before the reader runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)


def choice_text(choice: Any) -> str:
    """One list line: display name, version, and why it is refused (when it is)."""
    manifest = choice.entry.manifest
    name = manifest.display_name if manifest is not None else choice.entry.name
    version = f" {manifest.version}" if manifest is not None else ""
    line = f"{name}{version} ({choice.entry.name})"
    return line if choice.fits else f"{line} — {choice.refusal}"


class ModelChooser(QDialog):
    """The models for one series; ``chosen`` is the entry to run once accepted."""

    def __init__(self, choices: Sequence[Any], series_text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Run AI with…")
        self.resize(640, 300)
        self.choices = list(choices)
        self.heading = QLabel(f"Run a model on {series_text}", self)
        self.heading.setWordWrap(True)
        self.list = QListWidget(self)
        first_fit = -1
        for row, choice in enumerate(self.choices):
            item = QListWidgetItem(choice_text(choice), self.list)
            item.setToolTip(choice.refusal or choice.unverified or "fits this series")
            if not choice.fits:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            elif first_fit < 0:
                first_fit = row
        self.note = QLabel(self)
        self.note.setObjectName("note")
        self.note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.run_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.run_button.setText("Run")
        self.run_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.list.itemActivated.connect(lambda _item: self.accept())
        self.list.currentRowChanged.connect(self._on_row)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        if first_fit >= 0:
            self.list.setCurrentRow(first_fit)
        self._on_row(first_fit)
        self.list.setFocus()

    @property
    def current(self) -> Any | None:
        """The selected choice, if it fits (only those can run)."""
        row = self.list.currentRow()
        if 0 <= row < len(self.choices) and self.choices[row].fits:
            return self.choices[row]
        return None

    @property
    def chosen(self) -> Any | None:
        """The model entry to run, after the dialog was accepted."""
        if self.result() != QDialog.DialogCode.Accepted or self.current is None:
            return None
        return self.current.entry

    def accept(self) -> None:
        if self.current is not None:
            super().accept()

    def _on_row(self, _row: int) -> None:
        choice = self.current
        self.run_button.setEnabled(choice is not None)
        if choice is None:
            self.note.setText("No model fits this series (the reasons are in the list).")
        else:
            intended = choice.entry.manifest.intended_use if choice.entry.manifest else ""
            self.note.setText(
                "\n".join(
                    t for t in (choice.unverified and f"Check: {choice.unverified}.", intended) if t
                )
            )
