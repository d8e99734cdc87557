"""The slide's annotation groups as the reader has left them, for display (Qt-free).

``reader_groups`` applies a review session's decisions to the AI's groups (as
``ann_reader`` read them): rejected annotations disappear, modified ones show the
reader's geometry, and findings the reader added appear in one extra group per
graphic type, labelled "(reader-added)". What is shown is what the edited bulk
annotations (``app.results.edited_ann``) will hold, drawn in the AI groups'
colours; group numbers of the AI's groups stay, so show/hide per group keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from app.archive.slide_pyramid import SlidePyramid
from app.domain import Code, Region, Verdict
from app.errors import ReviewError
from app.results.ann_reader import AnnotationGroupInfo, annotation_tracking_uid
from app.review.session import ReviewItem, ReviewSession

ADDED_LABEL = "(reader-added)"
ADDED_COLOUR = (0, 230, 255)  # cyan: not one of the demo's AI colours
_AS_IS = (Verdict.UNDECIDED, Verdict.CONFIRMED)
READER = Code("READER_ADDED", "99AIRC", "Reader-added region")


def reader_groups(
    groups: Sequence[AnnotationGroupInfo], items: Sequence[ReviewItem]
) -> tuple[AnnotationGroupInfo, ...]:
    """``groups`` with the decisions of ``items`` (a session's ``items``) applied."""
    by_uid = {i.tracking_uid: i for i in items}
    out: list[AnnotationGroupInfo] = []
    for g in groups:
        if g.is_points:
            item = by_uid.get(annotation_tracking_uid(g.uid, -1))
            out.append(_points(g, item) if item is not None else g)
            continue
        decided = [by_uid.get(annotation_tracking_uid(g.uid, i)) for i in range(g.count)]
        if all(i is None or i.verdict in _AS_IS for i in decided):
            out.append(g)  # the same object: the view need not redo anything
            continue
        shapes: list[np.ndarray] = []
        probs: list[float] = []
        for index, shape in enumerate(g.shapes):
            item = decided[index]
            prob = float(g.probabilities[index]) if g.probabilities is not None else np.nan
            if item is None or item.verdict in _AS_IS:
                shapes.append(shape)
                probs.append(prob)
            elif item.verdict is Verdict.MODIFIED:
                shapes.append(shape if _same_geometry(item) else _shape(item))
                cert = item.current.certainty
                probs.append(float(cert) if cert is not None else np.nan)
        out.append(
            replace(
                g,
                shapes=tuple(shapes),
                probabilities=(
                    np.asarray(probs, dtype=np.float32) if g.probabilities is not None else None
                ),
            )
        )
    out.extend(_added(items, next_number=max((g.number for g in groups), default=0) + 1))
    return tuple(out)


def _points(g: AnnotationGroupInfo, item: ReviewItem) -> AnnotationGroupInfo:
    if item.verdict is Verdict.REJECTED:
        return replace(g, shapes=(), probabilities=None)
    if item.verdict is not Verdict.MODIFIED or _same_geometry(item):
        return g
    points = _shape(item)
    return replace(g, shapes=tuple(p.reshape(1, 2) for p in points), probabilities=None)


def _same_geometry(item: ReviewItem) -> bool:
    """A modified annotation drawn where the AI put it: no region, or one in slide
    coordinates (mm), whose outline cannot be edited (only its type and certainty)."""
    return not item.current.regions or item.current.regions[0].is_3d


def _shape(item: ReviewItem) -> np.ndarray:
    coords = item.current.regions[0].coordinates
    return np.asarray([p[:2] for p in coords], dtype=np.float32).reshape(-1, 2)


def _added(items: Sequence[ReviewItem], next_number: int) -> list[AnnotationGroupInfo]:
    by_type: dict[str, list[np.ndarray]] = {}
    for item in items:
        if item.verdict is Verdict.ADDED and item.current.regions:
            kind = item.current.regions[0].graphic_type
            kind = "POINT" if kind == "MULTIPOINT" else kind
            shape = _shape(item)
            if kind == "POINT":
                by_type.setdefault(kind, []).extend(p.reshape(1, 2) for p in shape)
            else:
                by_type.setdefault(kind, []).append(shape)
    return [
        AnnotationGroupInfo(
            number=next_number + n,
            uid=f"reader-added-{kind}",
            label=ADDED_LABEL,
            category=READER,
            property_type=READER,
            graphic_type=kind,
            colour=ADDED_COLOUR,
            shapes=tuple(shapes),
            probabilities=None,
        )
        for n, (kind, shapes) in enumerate(sorted(by_type.items()))
    ]


def on_base_pixels(g: AnnotationGroupInfo, pyramid: SlidePyramid) -> AnnotationGroupInfo | str:
    """A group in slide coordinates (mm) mapped onto the base level's pixels, as the
    viewer draws; a 2D group as it is; why not, when the slide cannot place it."""
    if g.coordinate_type != "3D":
        return g
    base_for = pyramid.base.frame_of_reference_uid
    if g.frame_of_reference_uid and base_for and g.frame_of_reference_uid != base_for:
        return f"group {g.label!r} is in another frame of reference than the slide"
    if not pyramid.has_slide_geometry:
        return (
            f"group {g.label!r} is in slide coordinates, and the slide gives no "
            "Total Pixel Matrix Origin / Image Orientation (Slide) to place it"
        )
    if not g.shapes:
        return replace(g, coordinate_type="2D", frame_of_reference_uid="")
    # one transform for the whole group (a group of nuclei holds thousands of points)
    flat = pyramid.slide_to_base(np.concatenate(g.shapes)).astype(np.float32)
    ends = np.cumsum([len(s) for s in g.shapes])[:-1]
    shapes = tuple(np.split(flat, ends))
    return replace(g, shapes=shapes, coordinate_type="2D", frame_of_reference_uid="")


def slide_image_uid(session: ReviewSession) -> str:
    """The slide image the study's AI annotations are on ("" when it has none)."""
    for result in session.results:
        if result.template == "ANN":
            for finding in result.findings:
                for region in finding.regions[:1]:
                    if region.referenced_sop_uid:
                        return region.referenced_sop_uid
    return ""


def slide_region(session: ReviewSession, tracking_uid: str) -> Region | None:
    """The current region of a slide finding (an AI annotation, or one the reader added on
    the slide image); None for any other finding or one without a region."""
    try:
        item = session.item(tracking_uid)
    except ReviewError:
        return None
    finding = item.current
    if not finding.regions:
        return None
    region = finding.regions[0]
    on_slide = finding.template == "ANN" or (
        item.verdict is Verdict.ADDED
        and bool(region.referenced_sop_uid)
        and region.referenced_sop_uid == slide_image_uid(session)
    )
    return region if on_slide else None
