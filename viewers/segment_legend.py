"""The overlay bar under the image: the global overlay switch and one entry per SEG segment.

Each segment shows its recommended display colour as a swatch, its label and what it
is (segmented property type); its check box shows or hides it and its slider sets its
opacity. The bar only drives ``OverlayLayers``; it holds no state the layers do not.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QWidget

from app.results.seg_source import SegmentLayer
from viewers.overlay_layers import OverlayLayers


def swatch(rgb: tuple[int, int, int], size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


class SegmentLegend(QWidget):
    """Overlays on/off, then per segment: [x] swatch label, opacity slider."""

    def __init__(self, overlays: OverlayLayers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._overlays = overlays
        self.toggle = QCheckBox("Overlays", self)
        self.toggle.setChecked(overlays.visible)
        self.toggle.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.toggle.toggled.connect(overlays.set_visible)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(4, 2, 4, 2)
        self._layout.setSpacing(10)
        self._layout.addWidget(self.toggle)
        self._layout.addStretch(1)
        self.checks: dict[str, QCheckBox] = {}
        self.sliders: dict[str, QSlider] = {}
        self._entries: list[QWidget] = []

    def set_toggle_tip(self, tip: str) -> None:
        self.toggle.setToolTip(tip)

    def sync(self) -> None:
        """Show the layers' global state (after the key toggled it)."""
        self.toggle.blockSignals(True)
        self.toggle.setChecked(self._overlays.visible)
        self.toggle.blockSignals(False)

    def set_layers(self, layers: Sequence[SegmentLayer]) -> None:
        for widget in self._entries:
            widget.setParent(None)
            widget.deleteLater()
        self._entries, self.checks, self.sliders = [], {}, {}
        for layer in layers:
            entry = QWidget(self)
            row = QHBoxLayout(entry)
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(4)
            check = QCheckBox(layer.segment.label, entry)
            check.setIcon(swatch(layer.segment.colour))
            check.setChecked(layer.key not in self._overlays.masks.hidden)
            check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            what = layer.segment.property_type.meaning if layer.segment.property_type else ""
            source = layer.result.series_description or "SEG"
            check.setToolTip(f"{what} ({source}): show / hide".strip())
            check.toggled.connect(lambda on, k=layer.key: self._overlays.set_segment_visible(k, on))
            slider = QSlider(Qt.Orientation.Horizontal, entry)
            slider.setRange(0, 100)
            slider.setFixedWidth(70)
            slider.setValue(round(100 * self._overlays.masks.opacity.get(layer.key, 0.45)))
            slider.setToolTip(f"Opacity of {layer.segment.label}")
            slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            slider.valueChanged.connect(
                lambda v, k=layer.key: self._overlays.set_segment_opacity(k, v / 100.0)
            )
            row.addWidget(check)
            row.addWidget(slider)
            self._layout.insertWidget(self._layout.count() - 1, entry)
            self._entries.append(entry)
            self.checks[layer.key], self.sliders[layer.key] = check, slider
        if layers:
            label = QLabel("Segmentation:", self)
            label.setObjectName("muted")
            self._layout.insertWidget(1, label)
            self._entries.append(label)
