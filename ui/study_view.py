"""The centre of the window: one study's image series in the slice viewer (or, for a
whole-slide series, modality SM, in the slide viewer: ``ui.slide_study``).

Opening a study lists its image series and streams the biggest in the
background: the slice of its most urgent AI finding (else the middle slice)
is loaded first and shown as soon as it arrives, then the rest fills in under
a progress bar. Opening another study, or picking another series, cancels a
load in flight.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from app.archive.protocol import ImageArchive
from app.archive.series_cache import SeriesCache
from app.archive.series_loader import SeriesLoader
from app.archive.volume import (
    ImageVolume,
    LoadCancelled,
    display_series,
    slice_index_for_region,
)
from app.domain import Finding, SeriesRef
from app.results.seg_source import segmentations_for_volume
from ui import theme
from ui.async_ops import AsyncOps, OpFailed
from ui.elided_label import ElidedLabel
from ui.review_keys import key
from ui.slide_study import SlideStudy
from viewers.reformat import ACQUIRED
from viewers.segment_legend import SegmentLegend
from viewers.slice_viewer import SliceViewer
from viewers.thumbnail import series_thumbnail

THUMBNAIL = 32  # px, the series switcher's icons
SLIDE_MODALITY = "SM"  # VL Whole Slide Microscopy: shown by the slide viewer


SERIES_LABEL_CHARS = 24  # the combo is this wide; a longer label is shortened, whole in its tip


def series_label(text: str, limit: int = SERIES_LABEL_CHARS) -> str:
    """``text`` shortened in the middle to ``limit`` characters (the image count stays)."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head):]}"


def finding_slice(volume: ImageVolume, finding: Finding) -> int | None:
    """The slice where ``finding`` has a region in ``volume``, or None."""
    for region in finding.regions:
        index = slice_index_for_region(volume, region)
        if index is not None:
            return index
    return None


def by_importance(findings: Sequence[Finding]) -> list[Finding]:
    """Most urgent first, then most certain."""
    return sorted(findings, key=lambda f: (-int(f.urgency), -(f.certainty or 0.0)))


def _target(volume: ImageVolume, findings: Sequence[Finding]) -> tuple[Finding, int] | None:
    """The first of ``findings`` with a region in ``volume``, and its slice."""
    for finding in findings:
        index = finding_slice(volume, finding)
        if index is not None:
            return finding, index
    return None


class StudyView(QWidget):
    """Series switcher + slice viewer + load progress for one study."""

    sig_image_shown = Signal(str)  # study UID, once a whole volume is loaded and on screen
    sig_first_image = Signal(str)  # study UID, when the first slice of a series is on screen
    sig_finding_shown = Signal(str)  # Tracking UID of the finding now highlighted
    sig_slide_viewer = Signal(object)  # a slide viewer was opened (None: it is gone)

    def __init__(
        self,
        archive: ImageArchive,
        ops: AsyncOps,
        parent: QWidget | None = None,
        *,
        loader: SeriesLoader | None = None,
        cache_mb: float = 1024,
    ) -> None:
        super().__init__(parent)
        self._archive = archive
        self.loader = loader or SeriesLoader(archive, SeriesCache(cache_mb))
        self._ops = ops
        self.has_no_images = False  # the open study has no image series to show
        self.series_combo = QComboBox(self)
        self.series_combo.setToolTip("Image series of this study")
        self.series_combo.setMinimumContentsLength(SERIES_LABEL_CHARS)
        self.series_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.series_combo.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.title = ElidedLabel("No study open", self)
        self.title.setObjectName("heading")
        self.status = ElidedLabel("", self, minimum=40)
        self.status.setObjectName("muted")
        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(100)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.viewer = SliceViewer(self)
        self.legend = SegmentLegend(self.viewer.overlays, self)
        self.legend.set_toggle_tip(key("overlays").tip())

        bar = QHBoxLayout()
        self.bar = bar  # others add their buttons (Run AI)
        bar.addWidget(self.title, 1)
        bar.addWidget(self.status)
        bar.addWidget(self.progress)
        bar.addWidget(self.series_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 4, 8)
        layout.addLayout(bar)
        layout.addWidget(self.viewer, 1)
        layout.addWidget(self.legend)
        self.slide = SlideStudy(archive, ops, self)
        self.slide.hide()
        self.slide.sig_tiles.connect(self._on_slide_tiles)
        self.slide.sig_missing.connect(self._on_slide_missing)
        self.slide.sig_viewer.connect(self.sig_slide_viewer)
        layout.addWidget(self.slide, 1)
        self.showing_slide = False  # the open series is a whole slide (the slide viewer shows it)

        self._study_uid: str | None = None
        self._series: list[SeriesRef] = []
        self._findings: list[Finding] = []
        self._cancel = threading.Event()
        self._generation = 0
        self._highlight: str | None = None
        self._series_of_sop: dict[str, str] = {}
        self._pending_finding: str | None = None  # to show once its series is loaded
        self._streaming: ImageVolume | None = None  # the volume a load is filling
        self.series_combo.activated.connect(self._on_series_picked)

    # -- public -----------------------------------------------------------------------
    @property
    def study_uid(self) -> str | None:
        return self._study_uid

    @property
    def volume(self) -> ImageVolume | None:
        return self.viewer.volume

    async def open_study(self, study_uid: str, title: str, findings: Sequence[Finding]) -> bool:
        """List the study's image series and show the first; False if nothing could be shown."""
        self._cancel.set()
        self._generation += 1
        generation = self._generation
        self._study_uid = study_uid
        self._findings = list(findings)
        self._series = []
        self._series_of_sop = {}
        self._pending_finding = None
        self._highlight = None
        self.has_no_images = False
        self._show_slide_view(False)
        self.series_combo.show()
        self.viewer.overlays.hidden_findings.clear()  # the findings panel starts all shown
        self.viewer.overlays.hover = None
        self.title.setText(title)
        self.title.setToolTip(title)
        self.series_combo.clear()
        self._set_status("")
        self.viewer.clear("Loading study…")
        try:
            series, series_of_sop = await self._ops.run(
                "Listing image series", lambda _r: self._list_series(study_uid)
            )
        except OpFailed as exc:
            if generation == self._generation:
                self.viewer.clear(f"Cannot list the study's series:\n{exc}")
            return False
        if generation != self._generation:
            return False
        self._series = series
        for ref in series:
            count = f" ({ref.num_instances})" if ref.num_instances else ""
            label = f"{ref.modality} {ref.description or 'series'}{count}".strip()
            self.series_combo.addItem(series_label(label), ref.series_uid)
            self.series_combo.setItemData(
                self.series_combo.count() - 1, label, Qt.ItemDataRole.ToolTipRole
            )
        if not series:
            # A real state, not a failure: e.g. a study that holds only reports.
            self.has_no_images = True
            self.viewer.clear("This study has no image series")
            return False
        self._series_of_sop = series_of_sop
        slide = next((s for s in series if (s.modality or "").upper() == SLIDE_MODALITY), None)
        if slide is not None:
            return await self._open_slide(slide, generation)
        return await self._load(self._series_for_findings() or series[0], generation)

    def _list_series(self, study_uid: str) -> tuple[list[SeriesRef], dict[str, str]]:
        """Blocking: the image series, and which series each instance is in."""
        series = display_series(self._archive, study_uid)
        wanted = {r.referenced_sop_uid for f in self._findings for r in f.regions}
        if not wanted - {None} or len(series) < 2:
            return series, {}
        instances = self._archive.search_instances(study_uid)
        return series, {i.sop_uid: i.series_uid for i in instances if i.sop_uid in wanted}

    def _series_for_findings(self, tracking_uid: str | None = None) -> SeriesRef | None:
        """The series holding the image of a finding (the most important one by default)."""
        findings = by_importance(self._findings)
        if tracking_uid is not None:
            findings = [f for f in findings if f.tracking_uid == tracking_uid]
        for finding in findings:
            for region in finding.regions:
                uid = self._series_of_sop.get(region.referenced_sop_uid or "")
                ref = next((s for s in self._series if s.series_uid == uid), None)
                if ref is not None:
                    return ref
        return None

    def set_findings(self, findings: Sequence[Finding]) -> None:
        """Replace the findings drawn over the images (e.g. after a refresh)."""
        self._findings = list(findings)
        self.slide.set_findings(self._findings)
        self.viewer.set_findings(self._findings, self._highlight)

    def show_finding(self, tracking_uid: str) -> bool:
        """Go to the slice of a finding and highlight it; False if it is not in this series."""
        if self.showing_slide:
            return self._show_slide_finding(tracking_uid)
        finding = next((f for f in self._findings if f.tracking_uid == tracking_uid), None)
        volume = self.viewer.volume
        self._highlight = tracking_uid
        self.viewer.set_findings(self._findings, tracking_uid)
        if finding is None or volume is None:
            return False
        index = finding_slice(volume, finding)
        other = self._series_for_findings(tracking_uid)
        if index is None and other is not None and other.series_uid != volume.series_uid:
            self._cancel.set()
            self._generation += 1
            self._pending_finding = tracking_uid
            self._ops.start(self._load(other, self._generation))
            return True
        if index is None:
            why = "has no image region" if not finding.regions else "is not in this series"
            self._set_status(f"{finding.finding.meaning} {why}", warn=True)
            return False
        self.viewer.set_plane(ACQUIRED)  # the regions are drawn on the acquired slices
        self.viewer.set_slice(index)
        centre = self.viewer.overlays.centre_of(tracking_uid)
        if centre is not None:
            self.viewer.center_on(*centre)
        self._set_status("")
        self.sig_finding_shown.emit(tracking_uid)
        return True

    # -- overlay controls (finding cards, the O key) ----------------------------------
    def set_finding_visible(self, tracking_uid: str, visible: bool) -> None:
        if self.showing_slide:
            self.slide.set_finding_visible(tracking_uid, visible)
        self.viewer.overlays.set_finding_visible(tracking_uid, visible)

    def hover_finding(self, tracking_uid: str) -> None:
        """Highlight a finding's region while the mouse is over its card ("" for none)."""
        self.viewer.overlays.set_hover(tracking_uid or None)

    def toggle_overlays(self) -> bool:
        """All overlays off or on; returns whether they are now shown."""
        if self.showing_slide:
            return self.slide.toggle_groups()
        shown = self.viewer.overlays.toggle()
        self.legend.sync()
        return shown

    async def _load_segments(self, generation: int) -> None:
        """The study's SEG segments that lie on the series now shown, as masks."""
        volume = self.viewer.volume
        if volume is None:
            return
        try:
            found = await self._ops.run(
                "Loading segmentations", lambda _r: segmentations_for_volume(self._archive, volume)
            )
        except OpFailed as exc:
            if generation == self._generation:
                self._set_status(f"Segmentations not shown: {exc}", warn=True)
            return
        if generation != self._generation or self.viewer.volume is not volume:
            return
        self.viewer.overlays.set_segments(found.layers)
        self.legend.set_layers(found.layers)
        if found.problems:
            self._set_status(f"{len(found.problems)} segmentation(s) not shown", warn=True)
            self.status.setToolTip("\n".join(found.problems))

    def close_study(self, message: str = "No study open") -> None:
        self._cancel.set()
        self._generation += 1
        self._study_uid = None
        self._findings = []
        self.series_combo.clear()
        self.title.setText("No study open")
        self._set_status("")
        self.progress.hide()
        self.legend.set_layers([])
        self._show_slide_view(False)
        self.viewer.clear(message)

    # -- internals ---------------------------------------------------------------------
    def _on_series_picked(self, index: int) -> None:
        if 0 <= index < len(self._series):
            self._cancel.set()
            self._generation += 1
            ref = self._series[index]
            if (ref.modality or "").upper() == SLIDE_MODALITY:
                self._ops.start(self._open_slide(ref, self._generation))
            else:
                self._show_slide_view(False)
                self._ops.start(self._load(ref, self._generation))

    async def _load(self, ref: SeriesRef, generation: int) -> bool:
        self._cancel = cancel = threading.Event()
        self.series_combo.setCurrentIndex(max(self.series_combo.findData(ref.series_uid), 0))
        self.viewer.clear(f"Loading {ref.description or 'series'}…")
        self.progress.setRange(0, 0)
        self.progress.show()
        study_uid = self._study_uid or ref.study_uid
        loop = asyncio.get_running_loop()

        def post(fn: Callable[..., None], *args: Any) -> None:  # from a loader thread
            try:
                loop.call_soon_threadsafe(fn, generation, *args)
            except RuntimeError:  # the loop stopped while the loader ran
                pass

        wanted = [f for f in self._findings if f.tracking_uid == self._pending_finding]
        candidates = wanted + by_importance(self._findings)

        def prefer(volume: ImageVolume) -> int | None:  # runs on the loader thread
            target = _target(volume, candidates)
            return target[1] if target else None

        self._streaming = None
        try:
            volume = await self._ops.run(
                "Loading images",
                lambda report: self.loader.load(
                    study_uid,
                    ref.series_uid,
                    prefer=prefer,
                    on_volume=lambda v: post(self._on_volume, v),
                    on_slice=lambda z: post(self._on_slice, z),
                    progress=report,
                    cancel=cancel,
                ),
                on_progress=lambda done, total: self._on_progress(generation, done, total),
                quiet=(LoadCancelled,),
            )
        except LoadCancelled:
            return False
        except OpFailed as exc:
            if generation == self._generation:
                self.progress.hide()
                self.viewer.clear(f"Cannot show this series:\n{exc}")
            return False
        if generation != self._generation:
            return False
        self.progress.hide()
        self._set_status("")
        self._pending_finding = None
        if self.viewer.volume is not volume:  # e.g. every slice came before the UI looked
            self._show_first(volume)
        self.viewer.refresh_slice(self.viewer.slice_index)
        self._set_thumbnail(volume)
        if volume.problems:
            gaps = f"{len(volume.gaps)} image(s) not available" if volume.gaps else ""
            skipped = len(volume.problems) - len(volume.gaps)
            text = ", ".join(t for t in (gaps, f"{skipped} skipped" if skipped else "") if t)
            self._set_status(text, warn=True)
            self.status.setToolTip("\n".join(volume.problems))
        self.sig_image_shown.emit(study_uid)
        if self._highlight:
            self.sig_finding_shown.emit(self._highlight)
        # The study's SEGs are fetched once the series is in (they are placed on its slices).
        self._ops.start(self._load_segments(generation))
        return True

    def _on_volume(self, generation: int, volume: ImageVolume) -> None:
        if generation == self._generation:
            self._streaming = volume

    def _on_slice(self, generation: int, index: int) -> None:
        """A slice has landed (queued from the loader): show the first, refresh the rest."""
        volume = self._streaming
        if generation != self._generation or volume is None:
            return
        if self.viewer.volume is not volume:
            self._show_first(volume)
        else:
            self.viewer.refresh_slice(index)
        self._set_thumbnail(volume)

    def _set_thumbnail(self, volume: ImageVolume) -> None:
        """Give the series' switcher item its middle slice's picture, once that is in."""
        item = self.series_combo.findData(volume.series_uid)
        if item < 0 or not self.series_combo.itemIcon(item).isNull():
            return
        picture = series_thumbnail(volume, THUMBNAIL)
        if picture is not None:
            self.series_combo.setItemIcon(item, QIcon(QPixmap.fromImage(picture)))

    def _show_first(self, volume: ImageVolume) -> None:
        wanted = [f for f in self._findings if f.tracking_uid == self._pending_finding]
        target = _target(volume, wanted + by_importance(self._findings))
        self.legend.set_layers([])
        with self.viewer.batched():  # one frame for the image and its outlines
            self.viewer.show_volume(volume, target[1] if target else None)
            self._highlight = target[0].tracking_uid if target else None
            self.viewer.set_findings(self._findings, self._highlight)
        self.sig_first_image.emit(volume.study_uid)

    def _on_progress(self, generation: int, done: int, total: int) -> None:
        # reports are queued from the worker: one may arrive after the load has finished
        if total > 0 and generation == self._generation and self.progress.isVisible():
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self._set_status(f"Loading {done}/{total}")

    def _set_status(self, text: str, *, warn: bool = False) -> None:
        self.status.setText(text)
        self.status.setToolTip("")
        self.status.setStyleSheet(f"color: {theme.URGENT if warn else theme.TEXT_MUTED};")

    # -- whole-slide series ----------------------------------------------------------------
    def _show_slide_view(self, slide: bool) -> None:
        """The slide viewer in place of the slice viewer (and back, closing the slide)."""
        if not slide:
            self.slide.close()
        self.showing_slide = slide
        self.slide.setVisible(slide)
        self.viewer.setVisible(not slide)
        self.legend.setVisible(not slide)

    async def _open_slide(self, ref: SeriesRef, generation: int) -> bool:
        """Show a whole-slide series; True once its first view is on screen."""
        self.series_combo.setCurrentIndex(max(self.series_combo.findData(ref.series_uid), 0))
        self.series_combo.setVisible(len(self._series) > 1)  # one slide: room for the title
        self._show_slide_view(True)
        self.progress.setRange(0, 0)
        self.progress.show()
        self._set_status("Reading the slide…")
        shown = await self.slide.open(ref, self._findings, key("overlays").tip("all groups"))
        if generation != self._generation:
            return False
        if not shown:
            self.progress.hide()
            self._set_status("The slide could not be shown", warn=True)
            return False
        material = self.slide.material
        if material is not None and material.problems:
            self._set_status(
                f"{len(material.problems)} AI annotation object(s) not shown", warn=True
            )
            self.status.setToolTip("\n".join(material.problems))
        self.sig_image_shown.emit(ref.study_uid)
        return True

    def _show_slide_finding(self, tracking_uid: str) -> bool:
        self._highlight = tracking_uid
        if not self.slide.show_finding(tracking_uid):
            finding = next((f for f in self._findings if f.tracking_uid == tracking_uid), None)
            what = finding.finding.meaning if finding else "This finding"
            self._set_status(f"{what} has no region on this slide", warn=True)
            return False
        self.sig_finding_shown.emit(tracking_uid)
        return True

    def _on_slide_tiles(self, done: int, total: int) -> None:
        if not self.showing_slide:
            return
        if done >= total:
            self.progress.hide()
            self._set_status("")
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.show()
        self._set_status(f"Loading tiles {done}/{total}")

    def _on_slide_missing(self, missing: int) -> None:
        if self.showing_slide:
            self.progress.hide()
            self._set_status(f"{missing} tile(s) not available (shown blank)", warn=True)
