"""Dialogs of the review: why a finding is rejected, and what a finding is (modify / add).

Both are keyboard-first: number keys pick a reject reason, Enter accepts, Esc
cancels. They only collect the reader's answer; the caller applies it to the
``ReviewSession``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.domain import Code, Finding, Measurement, Urgency
from app.results import codes
from app.review import code_lists


class RejectDialog(QDialog):
    """Pick a coded reason (1–7 or arrows) and optionally say more."""

    def __init__(self, finding: Finding, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reject finding")
        self.setMinimumWidth(420)
        heading = QLabel(f"Why is “{finding.finding.meaning}” wrong?", self)
        heading.setObjectName("heading")
        heading.setWordWrap(True)
        self.reasons = QListWidget(self)
        for n, (key, code) in enumerate(codes.REJECT_REASONS.items(), start=1):
            item = QListWidgetItem(f"{n}  {code.meaning}")
            item.setData(Qt.ItemDataRole.UserRole, key)
            self.reasons.addItem(item)
        self.reasons.setCurrentRow(0)
        self.reasons.setMinimumHeight(self.reasons.sizeHintForRow(0) * 8)
        self.reasons.itemDoubleClicked.connect(lambda _item: self.accept())
        self.reasons.currentRowChanged.connect(lambda _row: self._update())
        self.comment = QLineEdit(self)
        self.comment.setPlaceholderText("Comment (needed for “Other”)")
        self.comment.textChanged.connect(lambda _text: self._update())
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Reject")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.reasons)
        layout.addWidget(self.comment)
        layout.addWidget(self.buttons)
        # 1-7 pick a reason, in the list or anywhere else except the comment field
        # (the list would take digits for its type-ahead search; a filter sees them first).
        self.reasons.installEventFilter(self)
        self.reasons.setFocus()
        self._update()

    @property
    def reason(self) -> Code:
        key = self.reasons.currentItem().data(Qt.ItemDataRole.UserRole)
        return codes.REJECT_REASONS[str(key)]

    def _update(self) -> None:
        needs_text = self.reason.same_concept(codes.REJECT_REASONS["other"])
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not needs_text or bool(self.comment.text().strip()))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.reasons and event.type() == QEvent.Type.KeyPress:
            return self._digit(event)  # type: ignore[arg-type]
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._digit(event):
            super().keyPressEvent(event)

    def _digit(self, event: QKeyEvent) -> bool:
        row = event.key() - Qt.Key.Key_1
        if (
            0 <= row < self.reasons.count()
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ):
            self._pick(row)
            return True
        return False

    def _pick(self, row: int) -> None:
        """Number key ``row + 1``: that reason; it is final unless it needs a comment."""
        self.reasons.setCurrentRow(row)
        if self.reason.same_concept(codes.REJECT_REASONS["other"]):
            self.comment.setFocus()
        else:
            self.accept()


@dataclass(frozen=True)
class FindingForm:
    """What the finding dialog returns."""

    finding_type: Code
    site: Code | None
    urgency: Urgency
    certainty: float | None
    measurements: tuple[Measurement, ...]
    comment: str

    def apply_to(self, finding: Finding) -> Finding:
        return replace(
            finding,
            finding=self.finding_type,
            site=self.site,
            urgency=self.urgency,
            certainty=self.certainty,
            measurements=self.measurements,
        )


class FindingDialog(QDialog):
    """Modify a finding (type, site, urgency, certainty, measurement values) or describe
    an added one. The region is edited on the image, not here."""

    def __init__(
        self,
        title: str,
        *,
        finding_type: Code | None = None,
        site: Code | None = None,
        urgency: Urgency = Urgency.ROUTINE,
        certainty: float | None = None,
        measurements: Sequence[Measurement] = (),
        comment: str = "",
        slide: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(440)
        self._measurements = list(measurements)
        self._certainty = certainty if certainty is not None else 0.0
        form = QFormLayout()
        # a finding on a whole-slide image is offered pathology types and sites
        types = code_lists.finding_types(finding_type, slide=slide)
        self.type_combo = self._combo(types, finding_type)
        sites = code_lists.sites(site, slide=slide)
        self.site_combo = self._combo(sites, site, none_text="Site not given")
        self.urgency_combo = QComboBox(self)
        for u in sorted(Urgency, reverse=True):
            self.urgency_combo.addItem(u.label.title(), int(u))
        self.urgency_combo.setCurrentIndex(self.urgency_combo.findData(int(urgency)))
        form.addRow("&Finding", self.type_combo)
        form.addRow("&Site", self.site_combo)
        form.addRow("&Urgency", self.urgency_combo)
        self.certainty_spin: QDoubleSpinBox | None = None
        if certainty is not None:  # the AI's certainty; the reader may correct it
            self.certainty_spin = self._spin(certainty, 0.0, 1.0, 2, "")
            form.addRow("&Certainty (0–1)", self.certainty_spin)
        self.measurement_spins: list[QDoubleSpinBox] = []
        for m in self._measurements:
            unit = "" if m.unit.value in ("1", "") else f" {m.unit.value}"
            spin = self._spin(m.value, 0.0, max(1e6, m.value * 10), 2, unit)
            self.measurement_spins.append(spin)
            form.addRow(m.concept.meaning, spin)
        self.comment = QLineEdit(comment, self)
        self.comment.setPlaceholderText("Comment (optional)")
        form.addRow("C&omment", self.comment)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.type_combo.setFocus()

    def _combo(
        self, options: Sequence[Code], current: Code | None, none_text: str = ""
    ) -> QComboBox:
        combo = QComboBox(self)
        if none_text:
            combo.addItem(none_text, None)
        for code in options:
            combo.addItem(code.meaning, code)
        if current is not None:
            for i in range(combo.count()):
                data = combo.itemData(i)
                if isinstance(data, Code) and data.same_concept(current):
                    combo.setCurrentIndex(i)
                    break
        return combo

    def _spin(
        self, value: float, low: float, high: float, decimals: int, suffix: str
    ) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setRange(low, high)
        spin.setDecimals(decimals)
        spin.setSingleStep(0.05 if high <= 1.0 else 1.0)
        spin.setSuffix(suffix)
        spin.setValue(value)
        return spin

    def result_form(self) -> FindingForm:
        site = self.site_combo.currentData()
        certainty = None
        if self.certainty_spin is not None:
            certainty = _edited(self._certainty, self.certainty_spin)
        return FindingForm(
            finding_type=self.type_combo.currentData(),
            site=site if isinstance(site, Code) else None,
            urgency=Urgency(int(self.urgency_combo.currentData())),
            certainty=certainty,
            measurements=tuple(
                replace(m, value=_edited(m.value, spin))
                for m, spin in zip(self._measurements, self.measurement_spins, strict=True)
            ),
            comment=self.comment.text().strip(),
        )


def _edited(original: float, spin: QDoubleSpinBox) -> float:
    """The spin box's value, or the exact original when the reader left it alone (the box
    rounds to its decimals; an untouched value must not count as a modification)."""
    shown = round(original, spin.decimals())
    return original if abs(spin.value() - shown) < 10 ** -(spin.decimals() + 2) else spin.value()
