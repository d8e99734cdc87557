"""Everything the slice viewer draws over the image, and the reader's controls for it.

Finding regions (outlines, ``viewers.region_overlay``) with their measurement labels,
and SEG segments (translucent masks, ``viewers.seg_overlay``). The reader can hide one
finding, highlight the one under the mouse in the findings list, hide or fade one
segment, and switch every overlay off and on at once (to see the pixels under them).
Setters call ``on_change`` so the viewer redraws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from vtkmodules.vtkRenderingCore import vtkRenderer

from app.archive.volume import ImageVolume
from app.domain import Finding, Region
from app.results.seg_source import SegmentLayer
from viewers.region_labels import RegionLabels, finding_labels
from viewers.region_overlay import Outline, RegionOverlay, region_outlines
from viewers.seg_overlay import SegOverlay


class OverlayLayers:
    """Outlines, labels and masks of one slice; the show/hide/opacity/hover state."""

    def __init__(self, renderer: vtkRenderer, on_change: Callable[[], None]) -> None:
        self.regions = RegionOverlay(renderer)
        self.masks = SegOverlay(renderer)
        self.labels = RegionLabels(renderer)
        self._on_change = on_change
        self.visible = True
        self.hidden_findings: set[str] = set()
        self.hover: str | None = None
        self._texts: dict[str, str] = {}
        self.outlines: list[Outline] = []  # what is drawn now
        self.placed_labels: list[tuple[str, float, float]] = []

    # -- the reader's controls -------------------------------------------------------------
    def set_visible(self, visible: bool) -> None:
        """All overlays on or off (the global toggle)."""
        self.visible = bool(visible)
        self._on_change()

    def toggle(self) -> bool:
        self.set_visible(not self.visible)
        return self.visible

    def set_finding_visible(self, tracking_uid: str, visible: bool) -> None:
        if visible:
            self.hidden_findings.discard(tracking_uid)
        else:
            self.hidden_findings.add(tracking_uid)
        self._on_change()

    def set_hover(self, tracking_uid: str | None) -> None:
        if tracking_uid != self.hover:
            self.hover = tracking_uid
            self._on_change()

    def set_segments(self, layers: Sequence[SegmentLayer]) -> None:
        self.masks.set_layers(layers)
        self._on_change()

    @property
    def segments(self) -> list[SegmentLayer]:
        return list(self.masks.layers)

    def set_segment_visible(self, key: str, visible: bool) -> None:
        if visible:
            self.masks.hidden.discard(key)
        else:
            self.masks.hidden.add(key)
        self._on_change()

    def set_segment_opacity(self, key: str, opacity: float) -> None:
        self.masks.opacity[key] = min(max(float(opacity), 0.0), 1.0)
        self._on_change()

    def set_findings(self, findings: Sequence[Finding]) -> None:
        """The measurement labels of these findings (no redraw: the viewer redraws)."""
        self._texts = finding_labels(findings)

    # -- drawing (the viewer calls these) --------------------------------------------------
    def draw(
        self,
        volume: ImageVolume,
        index: int,
        regions: Sequence[Region],
        owners: Sequence[str] | None,
        highlight: str | None,
    ) -> None:
        _, rows, cols = volume.shape
        _, dy, dx = volume.spacing
        self.masks.show(index, (rows, cols), (dx, dy), self.visible)
        if not self.visible:
            self.regions.clear()
            self.labels.clear()
            self.outlines, self.placed_labels = [], []
            return
        keep = [
            n
            for n in range(len(regions))
            if owners is None or owners[n] not in self.hidden_findings
        ]
        kept_owners = [owners[n] for n in keep] if owners is not None else None
        outlines = region_outlines(
            [regions[n] for n in keep], volume, index, owners=kept_owners, highlight=highlight
        )
        if self.hover is not None:
            outlines = [
                Outline(o.points, o.closed, True, o.owner) if o.owner == self.hover else o
                for o in outlines
            ]
        self.outlines = outlines
        self.regions.show(outlines)
        self.placed_labels = self.labels.show(outlines, self._texts)

    def clear(self) -> None:
        self.regions.clear()
        self.labels.clear()
        self.masks.clear()
        self.outlines, self.placed_labels = [], []

    def centre_of(self, tracking_uid: str) -> tuple[float, float] | None:
        """The centre (world mm) of what is drawn of a finding on this slice, or None."""
        points = [o.points for o in self.outlines if o.owner == tracking_uid and len(o.points)]
        if not points:
            return None
        stacked = np.concatenate(points)
        lo, hi = stacked.min(axis=0), stacked.max(axis=0)
        return float(lo[0] + hi[0]) / 2.0, float(lo[1] + hi[1]) / 2.0
