"""A segmentation network's output -> findings the app shows like a server's (numpy only).

The probability map (on the model's coarser grid) is thresholded; each 3D connected
component at least the manifest's minimum volume becomes one ``Finding``: the
manifest's finding type and site, certainty = the mean probability inside it,
urgency from the manifest's rules, its volume in ml, and as region the outline
(a closed SCOORD POLYLINE in the image's pixels) on the slice where it is largest.
The outline on every slice it touches is kept for the viewer's overlay, and the
mask, on the image grid, for the DICOM SEG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.uid import generate_uid

from app.domain import Finding, Measurement, Region
from app.results import codes
from inference.bundle import ModelManifest


@dataclass(frozen=True)
class Grid:
    """Where the image slices are: what a region must reference."""

    shape: tuple[int, int, int]  # (z, y, x) of the image volume
    spacing: tuple[float, float, float]  # (z, y, x) mm
    sop_uids: tuple[str, ...]
    sop_class_uids: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Lesion:
    """One connected component: its finding, its outline on every slice it touches,
    and its voxels on the model grid ((n, 3) indices)."""

    finding: Finding
    outlines: tuple[Region, ...]
    indices: np.ndarray


def _f32(value: float) -> float:
    """Rounded so that it survives DICOM's 32-bit float Graphic Data unchanged."""
    return float(np.float32(round(value, 2)))


def components(mask: np.ndarray) -> list[np.ndarray]:
    """6-connected components of a 3D boolean mask, each as an (n, 3) index array.

    Label propagation in numpy: every set voxel starts with its own label and takes the
    smallest label among its set neighbours until nothing changes (as many rounds as the
    longest path through a component: a few dozen on a model grid)."""
    if not mask.any():
        return []
    big = np.iinfo(np.int64).max
    labels = np.where(mask, np.arange(mask.size, dtype=np.int64).reshape(mask.shape), big)
    while True:
        best = labels.copy()
        for axis in range(3):
            for step in (1, -1):
                shifted = np.full_like(labels, big)
                src = [slice(None)] * 3
                dst = [slice(None)] * 3
                src[axis] = slice(None, -1) if step == 1 else slice(1, None)
                dst[axis] = slice(1, None) if step == 1 else slice(None, -1)
                shifted[tuple(dst)] = labels[tuple(src)]
                np.minimum(best, shifted, out=best)
        best[~mask] = big
        if np.array_equal(best, labels):
            break
        labels = best
    idx = np.argwhere(mask)
    values = labels[mask]
    order = np.argsort(values, kind="stable")
    _, starts = np.unique(values[order], return_index=True)
    return [idx[order[a:b]] for a, b in zip(starts, [*starts[1:], len(order)], strict=True)]


def outline(mask2d: np.ndarray) -> list[tuple[float, float]]:
    """The outer boundary of a 2D mask as a closed polygon of pixel corners (x, y).

    Pixel (row r, column c) covers x in [c, c+1], y in [r, r+1]. Edges between a set
    pixel and an unset one are chained into loops; the longest loop is the outline.
    Collinear vertices are dropped. Empty for an empty mask.
    """
    m = np.pad(mask2d.astype(bool), 1)
    edges: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def add(a: tuple[int, int], b: tuple[int, int]) -> None:
        edges.setdefault(a, []).append(b)

    for r, c in np.argwhere(m):
        y, x = int(r) - 1, int(c) - 1  # corner coordinates in the unpadded image
        if not m[r - 1, c]:
            add((x, y), (x + 1, y))  # top edge, left to right (clockwise on screen)
        if not m[r, c + 1]:
            add((x + 1, y), (x + 1, y + 1))
        if not m[r + 1, c]:
            add((x + 1, y + 1), (x, y + 1))
        if not m[r, c - 1]:
            add((x, y + 1), (x, y))
    best: list[tuple[int, int]] = []
    while edges:
        start = next(iter(edges))
        loop = [start]
        point = start
        while True:
            targets = edges.get(point)
            if not targets:
                break
            nxt = targets.pop()
            if not targets:
                del edges[point]
            if nxt == start:
                break
            loop.append(nxt)
            point = nxt
        if len(loop) > len(best):
            best = loop
    if not best:
        return []
    simple = [
        p
        for i, p in enumerate(best)
        if (best[i - 1][0] - p[0]) * (best[(i + 1) % len(best)][1] - p[1])
        != (best[i - 1][1] - p[1]) * (best[(i + 1) % len(best)][0] - p[0])
    ]
    points = [(float(x), float(y)) for x, y in simple]
    return points + [points[0]]


def upsample_mask(mask: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A model-grid mask on the image grid (nearest: image voxel centre -> model voxel)."""
    index = [
        np.minimum(((np.arange(n) + 0.5) * m / n).astype(np.int64), m - 1)
        for n, m in zip(shape, mask.shape, strict=True)
    ]
    return mask[np.ix_(*index)]


def lesions_from_probabilities(
    probs: np.ndarray,
    manifest: ModelManifest,
    grid: Grid,
    source_sop_uid: str,
) -> list[Lesion]:
    """Findings from the probability map (model grid, (z, y, x)), largest first."""
    fz, fy, fx = (n / m for n, m in zip(grid.shape, probs.shape, strict=True))
    voxel_ml = float(np.prod(grid.spacing)) * fz * fy * fx / 1000.0
    mask = probs >= manifest.threshold
    found = []
    for idx in components(mask):
        volume_ml = len(idx) * voxel_ml
        if volume_ml < manifest.min_lesion_ml:
            continue
        found.append((idx, volume_ml))
    found.sort(key=lambda t: -len(t[0]))
    lesions = []
    for number, (idx, volume_ml) in enumerate(found, start=1):
        certainty = round(float(np.mean(probs[tuple(idx.T)], dtype=np.float64)), 2)
        one = np.zeros(mask.shape, dtype=bool)
        one[tuple(idx.T)] = True
        outlines = []
        areas = []
        for z in range(grid.shape[0]):
            mz = min(int((z + 0.5) / fz), mask.shape[0] - 1)
            plane = one[mz]
            if not plane.any():
                continue
            poly = outline(plane)
            outlines.append(
                Region(
                    "POLYLINE",
                    tuple((_f32(x * fx), _f32(y * fy)) for x, y in poly),
                    referenced_sop_uid=grid.sop_uids[z],
                    referenced_sop_class_uid=grid.sop_class_uids[z],
                )
            )
            areas.append(int(plane.sum()))
        if not outlines:
            continue
        biggest = outlines[int(np.argmax(areas))]
        finding = Finding(
            tracking_uid=generate_uid(),
            tracking_id=f"{manifest.finding.meaning} {number}"[:64],
            finding=manifest.finding,
            site=manifest.site,
            certainty=certainty,
            urgency=manifest.urgency_for(volume_ml, certainty),
            algorithm=manifest.algorithm,
            regions=(biggest,),
            measurements=(Measurement(codes.VOLUME, round(volume_ml, 1), codes.MILLILITER),),
            source_sop_uid=source_sop_uid,
        )
        lesions.append(Lesion(finding, tuple(outlines), idx))
    return lesions
