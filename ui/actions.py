"""One way to give a window a keyboard action (its shortcut works while the window is active)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


def window_action(
    widget: QWidget, text: str, shortcut: QKeySequence, slot: Callable[..., object]
) -> QAction:
    """Add an action named ``text`` with ``shortcut`` to ``widget``'s window; returns it."""
    action = QAction(text, widget)
    action.setShortcut(shortcut)
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(slot)
    widget.addAction(action)
    return action
