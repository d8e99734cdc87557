"""The review keyboard: one table behind the window's actions, the tooltips and the sheet.

Keys avoid the slice viewer's own (arrows, PageUp/Down, Home/End, 1–8 window
presets, T text, R reset, Shift+A/C/S planes) so both work while the image has focus.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class Key:
    name: str  # the action's id
    keys: tuple[str, ...]  # QKeySequence strings, first one shown
    text: str  # what it does, for the sheet and tooltips
    group: str

    @property
    def sequences(self) -> list[QKeySequence]:
        return [QKeySequence(k) for k in self.keys]

    @property
    def shown(self) -> str:
        return " / ".join(
            QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in self.keys
        )

    def tip(self, text: str | None = None) -> str:
        return f"{text or self.text} ({self.shown})"


KEYS: tuple[Key, ...] = (
    Key("next", ("J", "N"), "Next finding", "Findings"),
    Key("previous", ("K", "Shift+N"), "Previous finding", "Findings"),
    Key("jump", ("G",), "Go to the finding's image", "Findings"),
    Key("confirm", ("C",), "Confirm the finding", "Decide"),
    Key("reject", ("X",), "Reject the finding (choose a reason)", "Decide"),
    Key("modify", ("M",), "Modify type, site, urgency, certainty, measurements", "Decide"),
    Key("edit_region", ("E",), "Move or resize the region on the image", "Decide"),
    Key("redraw_region", ("D",), "Redraw the region on the image", "Decide"),
    Key("clear", ("Backspace",), "Clear the decision (back to undecided)", "Decide"),
    Key("add", ("A",), "Add a finding the AI missed (draw, then choose its type)", "Decide"),
    Key("overlays", ("O",), "Show / hide every overlay on the image (regions, masks)", "Findings"),
    Key("undo", ("Ctrl+Z",), "Undo", "Review"),
    Key("redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "Review"),
    Key("submit", ("Ctrl+Return", "Ctrl+Enter"), "Submit the study's review", "Review"),
    Key("outbox", ("Ctrl+Shift+O",), "Show the outbox (what is waiting to be sent)", "Review"),
    Key("shortcuts", ("F1", "?"), "Show this sheet", "Review"),
)

VIEWER_KEYS: tuple[tuple[str, str], ...] = (
    ("Up / Down, wheel", "Previous / next slice"),
    ("PageUp / PageDown, Home / End", "Jump through the series"),
    ("1–8", "Window presets"),
    ("Shift+left drag", "Scroll through the slices"),
    ("Shift+A / Shift+C / Shift+S", "Axial / coronal / sagittal plane (volumetric series)"),
    ("Left drag", "Window / level"),
    ("Right drag, Ctrl+wheel", "Zoom"),
    ("Middle drag", "Pan"),
    ("R", "Reset window and view"),
    ("T", "Show / hide image text"),
    ("Esc", "Cancel a region edit"),
)

# Local AI (ui/run_ai.py binds these; listed here so the sheet shows them and no key clashes).
AI_KEYS: tuple[Key, ...] = (
    Key("run_ai", ("Ctrl+I",), "Run AI: the model that fits the shown series", "AI"),
    Key("run_ai_with", ("Ctrl+Shift+I",), "Run AI with… (choose the model)", "AI"),
    Key("models", ("Ctrl+Shift+M",), "List the AI models (state, intended use, input)", "AI"),
)

BY_NAME = {k.name: k for k in (*KEYS, *AI_KEYS)}


def key(name: str) -> Key:
    return BY_NAME[name]


class ShortcutsSheet(QDialog):
    """Every review and viewer key on one page."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(4)
        row = 0
        groups: dict[str, list[tuple[str, str]]] = {}
        for k in (*KEYS, *AI_KEYS):
            groups.setdefault(k.group, []).append((k.shown, k.text))
        groups["Image"] = list(VIEWER_KEYS)
        for group, rows in groups.items():
            heading = QLabel(group, self)
            heading.setObjectName("heading")
            grid.addWidget(heading, row, 0, 1, 2)
            row += 1
            for shown, text in rows:
                keys = QLabel(shown, self)
                keys.setObjectName("keys")
                keys.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
                grid.addWidget(keys, row, 0)
                grid.addWidget(QLabel(text, self), row, 1)
                row += 1
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(buttons)
