"""The review keyboard: one table, no key used twice, none taken from the image viewer,
and the shortcuts sheet lists every key."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from ui.review_keys import AI_KEYS, KEYS, ShortcutsSheet

# Keys the slice viewer handles itself (viewers/slice_viewer.py, region editor).
VIEWER = {"Up", "Down", "PgUp", "PgDown", "Home", "End", "T", "R", "Esc", "Return", "Enter",
          *(str(n) for n in range(1, 9))}


def test_no_key_is_used_twice_or_taken_from_the_viewer() -> None:
    seen: dict[str, str] = {}
    for k in (*KEYS, *AI_KEYS):
        for seq in k.keys:
            text = QKeySequence(seq).toString()
            assert text, f"{k.name}: {seq!r} is not a key sequence"
            assert text not in seen, f"{text} is both {seen.get(text)} and {k.name}"
            assert text not in VIEWER, f"{k.name} takes {text} from the image viewer"
            seen[text] = k.name


@pytest.mark.gui
def test_shortcuts_sheet_lists_every_key(qtbot: QtBot) -> None:
    sheet = ShortcutsSheet()
    qtbot.addWidget(sheet)
    texts = {label.text() for label in sheet.findChildren(QLabel)}
    for k in (*KEYS, *AI_KEYS):
        assert k.text in texts and k.shown in texts
    assert "Window presets" in texts and "Cancel a region edit" in texts
