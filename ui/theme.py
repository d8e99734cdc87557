"""The dark reading-room theme: a palette plus one style sheet.

Reading rooms are dim; the interface stays dark grey so it does not outshine
the images, with light text at a contrast ratio above 7:1 (WCAG AAA) for body
text. Red is kept for critical findings and amber for urgent ones, and both
are also marked by text (a "CRITICAL" label, bold rows), never by colour alone.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

from app.domain import AIStatus, Urgency, Verdict

BACKGROUND = "#1b1d21"
SURFACE = "#24272d"  # panels, cards
SURFACE_RAISED = "#2e323a"  # selected card, headers
BORDER = "#3c414b"
TEXT = "#e8eaed"  # 14.9:1 on BACKGROUND
TEXT_MUTED = "#aab1bd"  # 8.4:1 on BACKGROUND
ACCENT = "#5aa9ff"
SELECTION = "#2f4f78"
CRITICAL = "#ff5c5c"
CRITICAL_BG = "#4a1f22"
URGENT = "#ffb84d"
URGENT_BG = "#45361c"
ROUTINE = "#8fd18f"
ROUTINE_BG = "#22382a"

# Review states: each also has its word on the card ("Confirmed", "Rejected: …").
CONFIRMED = "#8fd18f"
REJECTED = "#c3a6ff"
MODIFIED = ACCENT
ADDED = "#5fd4e0"
VERDICT_COLOURS: dict[Verdict, str] = {
    Verdict.UNDECIDED: TEXT_MUTED,
    Verdict.CONFIRMED: CONFIRMED,
    Verdict.REJECTED: REJECTED,
    Verdict.MODIFIED: MODIFIED,
    Verdict.ADDED: ADDED,
}

URGENCY_COLOURS: dict[Urgency, tuple[str, str]] = {  # (text, background)
    Urgency.CRITICAL: (CRITICAL, CRITICAL_BG),
    Urgency.URGENT: (URGENT, URGENT_BG),
    Urgency.ROUTINE: (ROUTINE, ROUTINE_BG),
}

AI_STATUS_TEXT: dict[AIStatus, str] = {
    AIStatus.DONE: "AI done",
    AIStatus.PENDING: "AI pending",
    AIStatus.NONE: "No AI",
    AIStatus.UNREADABLE: "AI unreadable",
}

STYLE_SHEET = f"""
QWidget {{
    background-color: {BACKGROUND};
    color: {TEXT};
    font-size: 10pt;
}}
QMainWindow::separator, QSplitter::handle {{ background-color: {BORDER}; }}
QSplitter::handle:horizontal {{ width: 3px; }}
QToolTip {{
    background-color: {SURFACE_RAISED}; color: {TEXT}; border: 1px solid {BORDER}; padding: 4px;
}}
QLabel#heading {{ font-size: 11pt; font-weight: 600; color: {TEXT}; }}
QLabel#muted, QLabel[muted="true"] {{ color: {TEXT_MUTED}; }}
QLabel#detail {{ color: {TEXT}; background-color: {SURFACE}; border: 1px solid {BORDER}; border-radius: 4px; padding: 6px; }}
QTableView {{
    background-color: {SURFACE};
    alternate-background-color: #282b32;
    gridline-color: {BORDER};
    selection-background-color: {SELECTION};
    border: 1px solid {BORDER};
}}
QHeaderView::section {{
    background-color: {SURFACE_RAISED};
    color: {TEXT};
    padding: 4px 6px;
    border: none;
    border-right: 1px solid {BORDER};
    border-bottom: 1px solid {BORDER};
    font-weight: 600;
}}
QPushButton, QComboBox, QLineEdit {{
    background-color: {SURFACE_RAISED};
    color: {TEXT};
    border: 1px solid {BORDER};
    border-radius: 4px;
    padding: 4px 8px;
    min-height: 20px;
}}
QPushButton:hover, QComboBox:hover {{ border-color: {ACCENT}; }}
QPushButton:pressed {{ background-color: {SELECTION}; }}
QPushButton:disabled {{ color: {TEXT_MUTED}; }}
QLineEdit:focus, QComboBox:focus, QPushButton:focus {{ border-color: {ACCENT}; }}
QComboBox QAbstractItemView {{
    background-color: {SURFACE_RAISED}; color: {TEXT}; selection-background-color: {SELECTION};
}}
QProgressBar {{
    background-color: {SURFACE};
    border: 1px solid {BORDER};
    border-radius: 3px;
    text-align: center;
    color: {TEXT};
    max-height: 14px;
}}
QProgressBar::chunk {{ background-color: {ACCENT}; }}
QScrollArea {{ border: none; }}
QScrollBar:vertical {{ background: {SURFACE}; width: 12px; }}
QScrollBar::handle:vertical {{ background: {BORDER}; min-height: 24px; border-radius: 4px; }}
QStatusBar {{ background-color: {SURFACE}; color: {TEXT}; border-top: 1px solid {BORDER}; }}
QStatusBar QLabel {{ background-color: transparent; }}
QFrame#card {{
    background-color: {SURFACE};
    border: 1px solid {BORDER};
    border-radius: 6px;
}}
QFrame#card:hover {{ border-color: {ACCENT}; }}
QFrame#card[selected="true"] {{ background-color: {SURFACE_RAISED}; border: 2px solid {ACCENT}; }}
QFrame#card QLabel {{ background-color: transparent; }}
QFrame#card[verdict="confirmed"] {{ border-left: 5px solid {CONFIRMED}; }}
QFrame#card[verdict="rejected"] {{ border-left: 5px solid {REJECTED}; }}
QFrame#card[verdict="modified"] {{ border-left: 5px solid {MODIFIED}; }}
QFrame#card[verdict="added"] {{ border-left: 5px solid {ADDED}; }}
QFrame#card[verdict="undecided"] {{ border-left: 5px solid {BORDER}; }}
QPushButton#primary {{ background-color: {SELECTION}; border-color: {ACCENT}; font-weight: 600; }}
QPushButton#primary:disabled {{ background-color: {SURFACE_RAISED}; border-color: {BORDER}; }}
QLabel#keys {{ color: {ACCENT}; font-family: monospace; }}
QFrame#banner {{ background-color: {CRITICAL_BG}; border: 1px solid {CRITICAL}; border-radius: 4px; }}
QFrame#banner QLabel {{ background-color: transparent; color: {TEXT}; }}
QLabel#badge {{ border-radius: 3px; padding: 1px 6px; font-weight: 700; font-size: 9pt; }}
"""


def badge_style(urgency: Urgency) -> str:
    """Style for an urgency badge: coloured text on a tinted ground, with a border."""
    fg, bg = URGENCY_COLOURS[urgency]
    return f"color: {fg}; background-color: {bg}; border: 1px solid {fg};"


def apply_theme(app: QApplication) -> None:
    """Fusion style, the dark palette (for what QSS does not reach) and the style sheet."""
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: SURFACE,
        QPalette.ColorRole.AlternateBase: "#282b32",
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: SURFACE_RAISED,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: SELECTION,
        QPalette.ColorRole.HighlightedText: TEXT,
        QPalette.ColorRole.ToolTipBase: SURFACE_RAISED,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: TEXT_MUTED,
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(TEXT_MUTED))
    palette.setColor(
        QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(TEXT_MUTED)
    )
    app.setPalette(palette)
    font = QFont(app.font())
    font.setPointSizeF(max(font.pointSizeF(), 10.0))
    app.setFont(font)
    app.setStyleSheet(STYLE_SHEET)
