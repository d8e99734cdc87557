"""A pathology study in the study view: the whole-slide viewer, its AI groups, fly to findings.

``SlideStudy`` replaces the slice viewer when the opened study's image series is VL
Whole Slide Microscopy (modality SM). It reads the series' pyramid and the study's
bulk annotations (ANN) on a worker, then shows the slide over the archive's tiles
with the AI's annotation groups drawn on it, and a legend under it: per group its
colour, label and count with a show / hide box, and the derived positive fraction
where the groups carry one (e.g. Ki-67 positive / (positive + negative) nuclei).
A finding card's click (and J / K) flies to its region, framed; O hides or shows
every group. While tiles of the view are still coming, ``sig_tiles`` reports
(done, total); tiles that never come stay blank and are reported as missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QVBoxLayout, QWidget

from app.archive.protocol import ImageArchive
from app.archive.slide_pyramid import SlidePyramid, read_pyramid
from app.archive.tiles import TileSource
from app.domain import Finding, SeriesRef
from app.errors import ArchiveError, ResultParseError
from app.results.ann_reader import (
    AnnotationGroupInfo,
    groups_by_tracking_uid,
    read_bulk_annotations,
)
from app.review.slide_regions import on_base_pixels
from app.review.slide_sr import sr_groups, sr_numbers
from ui.async_ops import AsyncOps, OpFailed
from viewers.segment_legend import swatch
from viewers.slide_highlight import HighlightSlideViewer

MIN_REGION_PX = 256.0  # a point or a tiny region is shown with this much slide around it
STALL_S = 4.0  # no tile for this long while some are missing: report them as missing
FIRST_VIEW_TIMEOUT_S = 20.0
TILE_CACHE_MB = 256.0
PLURALS = {"nucleus": "nuclei", "cell": "cells", "mitotic figure": "mitotic figures"}


@dataclass(frozen=True)
class SlideMaterial:
    """What a slide study shows: the pyramid, the AI groups, and what could not be read."""

    pyramid: SlidePyramid
    groups: tuple[AnnotationGroupInfo, ...]
    problems: tuple[str, ...] = ()


def read_slide_material(archive: ImageArchive, series: SeriesRef) -> SlideMaterial:
    """Blocking: the series' pyramid and the study's bulk annotations that refer to it
    (an ANN object naming no image is taken to be about this slide)."""
    pyramid = read_pyramid(archive, series.study_uid, series.series_uid)
    levels = {lvl.sop_uid for lvl in pyramid.levels}
    groups: list[AnnotationGroupInfo] = []
    problems: list[str] = []
    for ref in archive.search_instances(series.study_uid, modality="ANN"):
        try:
            ann = read_bulk_annotations(
                archive.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid)
            )
        except (ArchiveError, ResultParseError) as exc:
            problems.append(f"AI annotations {ref.sop_uid}: {exc}")
            continue
        if ann.referenced_sop_uids and not set(ann.referenced_sop_uids) & levels:
            continue  # about another slide of the study
        for g in ann.groups:
            placed = on_base_pixels(g, pyramid)
            if isinstance(placed, str):
                problems.append(f"AI annotations {ref.sop_uid}: {placed}")
                continue
            groups.append(placed)
    return SlideMaterial(pyramid, tuple(groups), tuple(problems))


def region_box(
    finding: Finding, pyramid: SlidePyramid | None = None
) -> tuple[float, float, float, float] | None:
    """The bounding box (x0, y0, x1, y1) of a finding's regions in base-level pixels,
    at least ``MIN_REGION_PX`` wide and high; regions in slide coordinates (mm) are
    placed with ``pyramid``'s geometry; None when nothing can be placed."""
    xs: list[float] = []
    ys: list[float] = []
    for region in finding.regions:
        points = np.asarray(region.coordinates, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] < 2:
            continue  # no point, or not one kind of point
        if region.is_3d:
            if pyramid is None or not pyramid.has_slide_geometry or points.shape[1] != 3:
                continue
            points = pyramid.slide_to_base(points)
        xs.extend(points[:, 0].tolist())
        ys.extend(points[:, 1].tolist())
    if not xs:
        return None
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = max(x1 - x0, MIN_REGION_PX) / 2, max(y1 - y0, MIN_REGION_PX) / 2
    return cx - half_w, cy - half_h, cx + half_w, cy + half_h


def fraction_text(groups: Sequence[AnnotationGroupInfo]) -> str:
    """The positive fraction of each pair of groups carrying one, e.g. "Ki-67 ... 23.4 %"."""
    lines = []
    seen: set[tuple[str, str]] = set()
    for g in groups:
        key = (g.property_type.value, g.property_type.scheme)
        if g.positive_fraction is None or key in seen or not g.label.lower().endswith("positive"):
            continue
        seen.add(key)
        pair = [o for o in groups if (o.property_type.value, o.property_type.scheme) == key]
        total = sum(o.count for o in pair if o.positive_fraction is not None)
        what = g.property_type.meaning.lower()
        name = g.label[: -len("positive")].strip()
        name = name.removesuffix(what).strip() or name
        things = PLURALS.get(what, f"{what}s")
        lines.append(
            f"{name} positive fraction {100 * g.positive_fraction:.1f} % "
            f"({g.count:,} of {total:,} {things})"
        )
    return "\n".join(lines)


class SlideLegend(QWidget):
    """Per AI group: [x] swatch label (count), and the positive fraction where there is one."""

    sig_group_toggled = Signal(int, bool)  # group number, shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QLabel("AI annotations", self)
        self.heading.setObjectName("muted")
        self.fraction = QLabel("", self)
        self.fraction.setObjectName("heading")
        self.fraction.setWordWrap(True)
        self._grid = QGridLayout()
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(14)
        self._grid.setVerticalSpacing(2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        layout.addWidget(self.heading)
        layout.addLayout(self._grid)
        layout.addWidget(self.fraction)
        self.checks: dict[int, QCheckBox] = {}
        self.counts: dict[int, QLabel] = {}
        self._entries: list[QWidget] = []

    def set_groups(self, groups: Sequence[AnnotationGroupInfo], tip: str = "") -> None:
        for widget in self._entries:
            widget.setParent(None)
            widget.deleteLater()
        self._entries, self.checks, self.counts = [], {}, {}
        for row, g in enumerate(groups):
            check = QCheckBox(g.label, self)
            check.setIcon(swatch(g.colour, 14))
            check.setChecked(True)
            check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            check.setToolTip(
                f"{g.property_type.meaning} ({g.category.meaning}), {g.graphic_type.lower()}s: "
                f"show / hide" + (f" — {tip}" if tip else "")
            )
            check.toggled.connect(lambda on, n=g.number: self.sig_group_toggled.emit(n, on))
            kind = "region" if not g.is_points else "point"
            count = QLabel(f"{g.count:,} {kind}{'' if g.count == 1 else 's'}", self)
            count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            share = QLabel(
                f"{100 * g.positive_fraction:.1f} % positive"
                if g.positive_fraction is not None and g.label.lower().endswith("positive")
                else "",
                self,
            )
            share.setObjectName("muted")
            self._grid.addWidget(check, row, 0)
            self._grid.addWidget(count, row, 1)
            self._grid.addWidget(share, row, 2)
            self._entries += [check, count, share]
            self.checks[g.number], self.counts[g.number] = check, count
        self._grid.setColumnStretch(3, 1)
        self.fraction.setText(fraction_text(groups))
        self.fraction.setVisible(bool(self.fraction.text()))
        self.heading.setText("AI annotations" if groups else "No AI annotations on this slide")

    def set_checked(self, number: int, shown: bool) -> None:
        check = self.checks.get(number)
        if check is not None:
            check.blockSignals(True)
            check.setChecked(shown)
            check.blockSignals(False)


class SlideStudy(QWidget):
    """One slide series of a study: viewer + legend; built by ``open``, emptied by ``close``."""

    sig_tiles = Signal(int, int)  # tiles of the view on screen, tiles the view needs
    sig_missing = Signal(int)  # tiles of the view that did not arrive (shown blank)
    sig_viewer = Signal(object)  # the new slide viewer, or None when it is gone (review editor)

    def __init__(self, archive: ImageArchive, ops: AsyncOps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._archive = archive
        self._ops = ops
        self.viewer: HighlightSlideViewer | None = None
        self.source: TileSource | None = None
        self.material: SlideMaterial | None = None
        self.legend = SlideLegend(self)
        self.legend.sig_group_toggled.connect(self.set_group_visible)
        self.placeholder = QLabel("", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setObjectName("muted")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.placeholder, 1)
        self._layout.addWidget(self.legend)
        self._findings: list[Finding] = []
        self._hidden: set[str] = set()  # findings whose card says "hidden"
        self._group_of: dict[str, int] = {}  # AI finding (Tracking UID) -> its group number
        self.highlighted: str | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll_tiles)
        self._last_done = -1
        self._last_change = 0.0
        self._generation = 0
        self._tip = ""

    # -- opening / closing ---------------------------------------------------------------
    async def open(self, series: SeriesRef, findings: Sequence[Finding], tip: str = "") -> bool:
        """Read the slide and its AI groups, show the whole slide; True once its first
        view's tiles are in (or the wait is over: missing tiles stay blank)."""
        self.close()
        generation = self._generation
        self._findings = list(findings)
        self.placeholder.setText(f"Loading {series.description or 'slide'}…")
        self.placeholder.show()
        try:
            material = await self._ops.run(
                "Reading the slide", lambda _r: read_slide_material(self._archive, series)
            )
        except OpFailed as exc:
            if generation == self._generation:
                self.placeholder.setText(f"Cannot show this slide:\n{exc}")
            return False
        if generation != self._generation:
            return False
        self.material = material
        # TID 1500 SR findings drawn on the slide too, one group each
        numbers = sr_numbers(self._findings)
        groups = (*material.groups, *sr_groups(self._findings, material.pyramid, numbers))
        self._group_of = {**groups_by_tracking_uid(material.groups), **numbers}
        self.source = TileSource(self._archive, material.pyramid, cache_mb=TILE_CACHE_MB)
        self.viewer = HighlightSlideViewer(self.source, groups, self)
        self.viewer.sig_view_changed.connect(self._watch_tiles)
        # the progress follows each tile, not only the 100 ms poll (no stale "0/N")
        self.viewer.sig_tile_arrived.connect(self._on_tile_arrived)
        self.viewer.sig_groups_changed.connect(self._on_groups_changed)
        self._tip = tip
        self.placeholder.hide()
        self._layout.insertWidget(0, self.viewer, 1)
        self.legend.set_groups(groups, tip)
        self.viewer.show()
        self.sig_viewer.emit(self.viewer)
        self._watch_tiles()
        deadline = time.monotonic() + FIRST_VIEW_TIMEOUT_S
        while generation == self._generation and self._timer.isActive():
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        return generation == self._generation

    def close(self) -> None:
        """Drop the slide (its tile fetches are cancelled, its cache freed)."""
        self._generation += 1
        self._timer.stop()
        self._findings = []
        self._hidden = set()
        self._group_of = {}
        self.highlighted = None
        self.material = None
        if self.viewer is not None:
            self.sig_viewer.emit(None)
            self.viewer.close()
            self.viewer.setParent(None)
            self.viewer.deleteLater()
            self.viewer = None
        if self.source is not None:
            self.source.close()
            self.source = None
        self.legend.set_groups([])
        self.placeholder.setText("")

    # -- findings and groups -------------------------------------------------------------
    def set_findings(self, findings: Sequence[Finding]) -> None:
        self._findings = list(findings)

    def show_finding(self, tracking_uid: str) -> bool:
        """Fly to a finding's region (centred, zoomed to its box) and frame it."""
        finding = next((f for f in self._findings if f.tracking_uid == tracking_uid), None)
        pyramid = self.material.pyramid if self.material is not None else None
        box = region_box(finding, pyramid) if finding is not None else None
        if self.viewer is None or box is None:
            return False
        self.highlighted = tracking_uid
        self.viewer.set_highlight(box)
        self.viewer.show_region(*box)
        return True

    def set_finding_visible(self, tracking_uid: str, shown: bool) -> None:
        """A card's Shown box: a group is drawn while any of its findings is shown (a group
        is drawn whole: one finding per point group, one per region of a region group)."""
        if self.viewer is None:
            return
        if shown:
            self._hidden.discard(tracking_uid)
        else:
            self._hidden.add(tracking_uid)
        number = self._group_of.get(tracking_uid)
        if number is None:
            return  # not an annotation of the slide's AI groups
        mine = [uid for uid, n in self._group_of.items() if n == number]
        self.set_group_visible(number, any(uid not in self._hidden for uid in mine))

    def _on_groups_changed(self) -> None:
        """The viewer shows the reader's version of the groups (a region rejected, moved or
        added): the legend counts what is drawn."""
        if self.viewer is None:
            return
        self.legend.set_groups([layer.group for layer in self.viewer.layers], self._tip)
        for layer in self.viewer.layers:
            self.legend.set_checked(layer.group.number, layer.visible)

    def set_group_visible(self, number: int, shown: bool) -> None:
        if self.viewer is not None:
            self.viewer.set_group_visible(number, shown)
        self.legend.set_checked(number, shown)

    def toggle_groups(self) -> bool:
        """Every AI group off when any is shown, else all on; returns whether they are shown."""
        if self.viewer is None:
            return False
        show = not any(layer.visible for layer in self.viewer.layers)
        for layer in self.viewer.layers:
            self.set_group_visible(layer.group.number, show)
        return show

    # -- tile progress -------------------------------------------------------------------
    def pending(self) -> tuple[int, int]:
        """(tiles of the view on screen, tiles it needs)."""
        if self.viewer is None:
            return 0, 0
        visible = self.viewer.viewport.visible_tiles()
        source = self.viewer.source
        # a tile that failed shows blank and is not waited for, but it is not on screen
        pending = set(self.viewer.pending_tiles())
        failed = sum(1 for k in visible if k not in pending and source.has_failed(k))
        return len(visible) - len(pending) - failed, len(visible)

    def _watch_tiles(self) -> None:
        if self.viewer is None:
            return
        self._last_done = -1
        self._last_change = time.monotonic()
        if not self._timer.isActive():
            self._timer.start()
        self._poll_tiles()

    def _on_tile_arrived(self) -> None:
        if self._timer.isActive():  # still watching this view's tiles
            self._poll_tiles()

    def _poll_tiles(self) -> None:
        if self.viewer is None:
            self._timer.stop()
            return
        done, total = self.pending()
        # progress is tiles on screen, not deliveries: a failed tile is delivered (blank)
        # and asked for again, over and over, without the view getting any further
        if done != self._last_done:
            self._last_done = done
            self._last_change = time.monotonic()
        self.sig_tiles.emit(done, total)
        if done >= total:
            self._timer.stop()
        elif time.monotonic() - self._last_change > STALL_S:
            self._timer.stop()
            self.sig_missing.emit(total - done)
