"""Read-only finding cards: what the AI found, how sure it is, and who made the AI.

One card per ``Finding``, showing what IHE AI Results asks a display to show:
the finding and its site, certainty, urgency, the algorithm (name, version,
manufacturer), each measurement with its unit, and the kind of region. A click
(or Enter on a focused card) emits the finding's Tracking UID so the viewer
can jump to its slice.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.domain import AIStatus, Finding, Measurement, Region
from ui import theme


def certainty_text(certainty: float | None) -> str:
    return "–" if certainty is None else f"{certainty:.2f}"


def measurement_text(m: Measurement) -> str:
    unit = m.unit.value
    value = f"{m.value:.3g}" if abs(m.value) < 1000 else f"{m.value:.0f}"
    suffix = "" if unit in ("1", "") else f" {unit}"
    return f"{m.concept.meaning}: {value}{suffix}"


def region_text(regions: Sequence[Region]) -> str:
    if not regions:
        return "No image region"
    parts = []
    for r in regions:
        where = "3D, patient coordinates" if r.is_3d else "on one image"
        parts.append(f"{r.graphic_type.title()} ({where})")
    return "Region: " + "; ".join(parts)


class FindingCard(QFrame):
    """One finding; click or Enter activates it."""

    sig_activated = Signal(str)

    def __init__(self, finding: Finding, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.finding = finding
        self.setObjectName("card")
        self.setProperty("selected", False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Show this finding on the image (click or Enter)")

        title = QLabel(finding.finding.meaning, self)
        title.setObjectName("heading")
        title.setWordWrap(True)
        self.badge = QLabel(finding.urgency.label.upper(), self)
        self.badge.setObjectName("badge")
        self.badge.setStyleSheet(theme.badge_style(finding.urgency))
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        head = QHBoxLayout()
        head.addWidget(title, 1)
        head.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(3)
        layout.addLayout(head)
        site = finding.site.meaning if finding.site else "Site not given"
        self.site_label = self._line(f"Site: {site}")
        self.certainty_label = self._line(f"Certainty: {certainty_text(finding.certainty)}")
        for label in (self.site_label, self.certainty_label):
            layout.addWidget(label)
        for m in finding.measurements:
            layout.addWidget(self._line(measurement_text(m)))
        layout.addWidget(self._line(region_text(finding.regions), muted=True))
        algo = finding.algorithm
        maker = f" · {algo.manufacturer}" if algo.manufacturer else ""
        self.algorithm_label = self._line(f"{algo.name} {algo.version}{maker}".strip(), muted=True)
        layout.addWidget(self.algorithm_label)
        if not finding.editable:
            layout.addWidget(self._line("Read-only result (not TID 1500)", muted=True))

    def _line(self, text: str, *, muted: bool = False) -> QLabel:
        label = QLabel(text, self)
        label.setWordWrap(True)
        if muted:
            label.setObjectName("muted")
        return label

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", selected)
        self.style().unpolish(self)
        self.style().polish(self)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.sig_activated.emit(self.finding.tracking_uid)
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.sig_activated.emit(self.finding.tracking_uid)
            return
        super().keyPressEvent(event)


class FindingsPanel(QWidget):
    """The study's AI findings as cards, or a clear empty state."""

    sig_finding_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(260)
        self.heading = QLabel("AI findings", self)
        self.heading.setObjectName("heading")
        self.state = QLabel("Select a study", self)
        self.state.setObjectName("muted")
        self.state.setWordWrap(True)
        self.state.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self._cards_host = QWidget()
        self._cards_layout = QVBoxLayout(self._cards_host)
        self._cards_layout.setContentsMargins(0, 0, 4, 0)
        self._cards_layout.setSpacing(8)
        self._cards_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self._cards_host)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 8, 8)
        layout.addWidget(self.heading)
        layout.addWidget(self.state)
        layout.addWidget(scroll, 1)
        self.cards: list[FindingCard] = []
        self._selected: str | None = None

    @property
    def selected(self) -> str | None:
        return self._selected

    def set_loading(self, text: str = "Loading AI results…") -> None:
        self._clear_cards()
        self.heading.setText("AI findings")
        self._set_state(text)

    def set_findings(
        self,
        findings: Sequence[Finding],
        status: AIStatus = AIStatus.DONE,
        problems: Sequence[str] = (),
    ) -> None:
        """Show ``findings``; with none, say why (no AI, AI found nothing, unreadable, pending)."""
        self._clear_cards()
        self.heading.setText(f"AI findings ({len(findings)})" if findings else "AI findings")
        reason = "; ".join(problems) if problems else "unknown reason"
        if status is AIStatus.UNREADABLE:
            self._set_state(f"AI result unreadable: {reason}", warn=True)
        elif status is AIStatus.PENDING:
            self._set_state(f"AI result not retrieved yet: {reason}", warn=True)
        elif findings:
            self._set_state("")
        elif status is AIStatus.NONE:
            self._set_state("No AI findings\nNo AI result is stored for this study.")
        else:
            self._set_state("AI: no finding\nThe AI analysed this study and reported nothing.")
        ordered = sorted(findings, key=lambda f: (-int(f.urgency), -(f.certainty or 0.0)))
        for finding in ordered:
            card = FindingCard(finding, self._cards_host)
            card.sig_activated.connect(self._on_card_activated)
            self._cards_layout.insertWidget(self._cards_layout.count() - 1, card)
            self.cards.append(card)

    def select(self, tracking_uid: str | None) -> None:
        """Mark one card as the finding on screen (no signal)."""
        self._selected = tracking_uid
        for card in self.cards:
            card.set_selected(card.finding.tracking_uid == tracking_uid)

    def clear(self, text: str = "Select a study") -> None:
        self._clear_cards()
        self.heading.setText("AI findings")
        self._set_state(text)

    # -- internals ---------------------------------------------------------------------
    def _on_card_activated(self, tracking_uid: str) -> None:
        self.select(tracking_uid)
        self.sig_finding_activated.emit(tracking_uid)

    def _set_state(self, text: str, *, warn: bool = False) -> None:
        self.state.setText(text)
        self.state.setVisible(bool(text))
        colour = theme.URGENT if warn else theme.TEXT_MUTED
        self.state.setStyleSheet(f"color: {colour};")

    def _clear_cards(self) -> None:
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards = []
        self._selected = None
