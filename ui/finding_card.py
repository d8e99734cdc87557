"""One finding card: what the AI found (IHE AIR's display items) and the reader's verdict.

A click (or Enter on a focused card) emits the finding's Tracking UID; with a review
item the card shows its state in words and colour and has Confirm / Reject / Modify
buttons, which only emit ``sig_action``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QEnterEvent, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.archive.slide_pyramid import VL_WSI
from app.domain import Finding, Measurement, Region, Verdict
from app.review.session import ReviewItem
from ui import theme
from ui.review_keys import key

VERDICT_TEXT = {
    Verdict.UNDECIDED: "Undecided",
    Verdict.CONFIRMED: "Confirmed",
    Verdict.REJECTED: "Rejected",
    Verdict.MODIFIED: "Modified",
    Verdict.ADDED: "Added by reader",
}


def certainty_text(certainty: float | None) -> str:
    return "–" if certainty is None else f"{certainty:.2f}"


def measurement_text(m: Measurement) -> str:
    unit = m.unit.value
    value = f"{m.value:.3g}" if abs(m.value) < 1000 else f"{m.value:.0f}"
    suffix = "" if unit in ("1", "") else f" {unit}"
    return f"{m.concept.meaning}: {value}{suffix}"


def on_a_slide(finding: Finding) -> bool:
    """A whole-slide annotation, or an SR finding whose region is on a whole-slide image."""
    return finding.template == "ANN" or any(
        r.referenced_sop_class_uid == VL_WSI for r in finding.regions
    )


def region_text(regions: Sequence[Region], *, slide: bool = False) -> str:
    """Where a finding is, in a few words; ``slide``: a whole-slide annotation, whose
    3D coordinates are the slide's (mm), not the patient's."""
    if not regions:
        return "No image region"
    parts = []
    for r in regions:
        if r.is_3d:
            where = "slide coordinates, mm" if slide else "3D, patient coordinates"
        else:
            where = "on the slide" if slide else "on one image"
        parts.append(f"{r.graphic_type.title()} ({where})")
    return "Region: " + "; ".join(parts)


def changes(before: Finding, after: Finding) -> list[str]:
    """What the reader changed, in a few words for the card."""
    out = []
    if not before.finding.same_concept(after.finding):
        out.append(f"type → {after.finding.meaning}")
    if (before.site is None) != (after.site is None) or (
        before.site and after.site and not before.site.same_concept(after.site)
    ):
        out.append(f"site → {after.site.meaning if after.site else 'none'}")
    if before.urgency != after.urgency:
        out.append(f"urgency → {after.urgency.label}")
    if before.certainty != after.certainty:
        out.append(f"certainty → {certainty_text(after.certainty)}")
    if before.measurements != after.measurements:
        out.append("measurement")
    if before.regions != after.regions:
        out.append("region")
    return out


class FindingCard(QFrame):
    """One finding; click or Enter activates it."""

    sig_activated = Signal(str)
    sig_action = Signal(str, str)  # action name (confirm, reject, modify, clear), Tracking UID
    sig_visibility = Signal(str, bool)  # Tracking UID, shown on the image
    sig_hovered = Signal(str, bool)  # Tracking UID, the mouse is over the card

    def __init__(
        self,
        finding: Finding,
        parent: QWidget | None = None,
        *,
        review: ReviewItem | None = None,
        shown: bool = True,
    ) -> None:
        super().__init__(parent)
        self.finding = finding
        self.review = review
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
        # show/hide this finding's region on the image (IHE AIR: show/hide per result)
        self.eye = QToolButton(self)
        self.eye.setCheckable(True)
        self.eye.setChecked(shown)
        self.eye.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.eye.setEnabled(bool(finding.regions))
        self._show_eye(shown)
        self.eye.toggled.connect(self._on_eye)
        head = QHBoxLayout()
        head.addWidget(title, 1)
        head.addWidget(self.eye, 0, Qt.AlignmentFlag.AlignTop)
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
        layout.addWidget(
            self._line(region_text(finding.regions, slide=on_a_slide(finding)), muted=True)
        )
        algo = finding.algorithm
        maker = f" · {algo.manufacturer}" if algo.manufacturer else ""
        made_by = f"{algo.name} {algo.version}{maker}".strip() if algo.name else "Reader's finding"
        self.algorithm_label = self._line(made_by, muted=True)
        layout.addWidget(self.algorithm_label)
        if not finding.editable:
            layout.addWidget(self._line("Read-only result (not TID 1500)", muted=True))
        self.verdict_label: QLabel | None = None
        self.buttons: dict[str, QPushButton] = {}
        if review is not None:
            self.verdict_label = QLabel(self)
            self.verdict_label.setObjectName("verdict")
            self.verdict_label.setWordWrap(True)
            layout.addWidget(self.verdict_label)
            row = QHBoxLayout()
            row.setSpacing(6)
            for name, text in (("confirm", "Confirm"), ("reject", "Reject"), ("modify", "Modify")):
                button = QPushButton(text, self)
                button.setToolTip(key(name).tip())
                button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys act on the selected card
                button.clicked.connect(lambda _c=False, n=name: self._act(n))
                row.addWidget(button)
                self.buttons[name] = button
            layout.addLayout(row)
            self._show_verdict(review)

    @property
    def shown(self) -> bool:
        """Whether the finding's region is drawn on the image."""
        return self.eye.isChecked()

    def _show_eye(self, shown: bool) -> None:
        self.eye.setText("Shown" if shown else "Hidden")
        self.eye.setToolTip(
            "Hide this finding's region on the image"
            if shown
            else "Show this finding's region on the image"
        )

    def _on_eye(self, shown: bool) -> None:
        self._show_eye(shown)
        self.sig_visibility.emit(self.finding.tracking_uid, shown)

    def enterEvent(self, event: QEnterEvent) -> None:
        self.sig_hovered.emit(self.finding.tracking_uid, True)
        super().enterEvent(event)

    def leaveEvent(self, event: object) -> None:
        self.sig_hovered.emit(self.finding.tracking_uid, False)
        super().leaveEvent(event)  # type: ignore[arg-type]

    @property
    def verdict(self) -> Verdict | None:
        return self.review.verdict if self.review else None

    def set_review(self, review: ReviewItem) -> None:
        """A new decision on the same finding (its shown content unchanged)."""
        self.review = review
        self._show_verdict(review)

    def _show_verdict(self, review: ReviewItem) -> None:
        assert self.verdict_label is not None
        verdict = review.verdict
        text = VERDICT_TEXT[verdict]
        decision = review.decision
        if decision is not None and decision.reason is not None:
            text += f": {decision.reason.meaning}"
        if decision is not None and decision.comment:
            text += f" — “{decision.comment}”"
        if verdict is Verdict.MODIFIED and decision is not None and review.original is not None:
            text += f" ({', '.join(changes(review.original, decision.finding)) or 'no change'})"
        self.verdict_label.setText(text)
        fg = theme.VERDICT_COLOURS[verdict]
        self.verdict_label.setStyleSheet(f"color: {fg}; font-weight: 600;")
        self.setProperty("verdict", verdict.value)
        self.style().unpolish(self)
        self.style().polish(self)
        added = verdict is Verdict.ADDED
        self.buttons["confirm"].setVisible(not added)
        self.buttons["reject"].setVisible(not added)
        self.buttons["confirm"].setEnabled(verdict is not Verdict.CONFIRMED)
        self.buttons["reject"].setText("Reject…" if verdict is not Verdict.REJECTED else "Reason…")
        self.buttons["modify"].setText("Edit…" if added else "Modify…")

    def _act(self, name: str) -> None:
        self.sig_activated.emit(self.finding.tracking_uid)
        self.sig_action.emit(name, self.finding.tracking_uid)

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
