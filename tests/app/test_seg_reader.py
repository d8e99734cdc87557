"""SEG reading: highdicom-written binary and fractional SEGs, stored in the local archive,
read back and aligned to the loaded series by source image and by plane position."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from app.archive.client import open_local
from app.archive.volume import ImageVolume, load_volume
from app.results.seg_reader import SegmentationError, masks_for_volume, read_segmentation
from app.results.seg_source import SeriesSegmentations, segmentations_for_volume
from tests.support.seg_data import ct_series, highdicom_seg


def _load(tmp_path: Path, datasets: list[Dataset]) -> tuple[ImageVolume, SeriesSegmentations]:
    archive = open_local(tmp_path / "archive")
    archive.store(datasets)
    images = [d for d in datasets if d.Modality == "CT"]
    volume = load_volume(archive, images[0].StudyInstanceUID, images[0].SeriesInstanceUID)
    return volume, segmentations_for_volume(archive, volume)


def _masks() -> np.ndarray:
    m = np.zeros((6, 32, 32, 2), dtype=bool)
    m[2:4, 5:10, 20:25, 0] = True  # bleed: slices 2-3, rows 5-9, columns 20-24
    m[4, 1:3, 1:3, 1] = True  # edema: slice 4, rows 1-2, columns 1-2
    return m


def test_binary_seg_lands_on_its_slices_and_pixels(tmp_path: Path) -> None:
    images = ct_series("bin")
    seg = highdicom_seg(images, _masks(), "bin")
    shuffled = [images[k] for k in (3, 0, 5, 1, 4, 2)]  # order on slices, not on arrival
    volume, found = _load(tmp_path, [*shuffled, seg])
    assert found.problems == []
    by_label = {layer.segment.label: layer for layer in found.layers}
    assert set(by_label) == {"Bleed", "Edema"}
    bleed, edema = by_label["Bleed"], by_label["Edema"]
    assert bleed.segment.colour == (255, 0, 0) and edema.segment.colour == (0, 255, 0)
    assert bleed.segment.property_type is not None
    assert bleed.segment.property_type.meaning == "Hemorrhage"
    assert sorted(bleed.masks) == [2, 3] and sorted(edema.masks) == [4]
    want = np.zeros((32, 32), np.uint8)
    want[5:10, 20:25] = 255
    for k in (2, 3):
        assert volume.slice_distance(k) == pytest.approx(2.0 * k)
        np.testing.assert_array_equal(bleed.masks[k], want)
    assert edema.masks[4].sum() == 4 * 255 and edema.masks[4][1:3, 1:3].all()


def test_a_locally_kept_seg_is_shown_once(tmp_path: Path) -> None:
    """Local inference keeps its SEG on this machine (no write-back): it is shown like
    the archive's; once the archive holds the same SEG, only once."""
    images = ct_series("local")
    seg = highdicom_seg(images, _masks(), "local")
    archive = open_local(tmp_path / "archive")
    archive.store(images)
    kept = tmp_path / "ai-results"
    (kept / str(seg.StudyInstanceUID)).mkdir(parents=True)
    seg.save_as(kept / str(seg.StudyInstanceUID) / f"SEG-{seg.SOPInstanceUID}.dcm")
    volume = load_volume(archive, images[0].StudyInstanceUID, images[0].SeriesInstanceUID)
    found = segmentations_for_volume(archive, volume, kept)
    assert found.problems == []
    assert sorted(layer.segment.label for layer in found.layers) == ["Bleed", "Edema"]
    assert sorted(found.layers[0].masks) == [2, 3] or sorted(found.layers[1].masks) == [2, 3]
    archive.store([seg])
    again = segmentations_for_volume(archive, volume, kept)
    assert sorted(layer.segment.label for layer in again.layers) == ["Bleed", "Edema"]


def test_fractional_seg_keeps_its_fractions(tmp_path: Path) -> None:
    images = ct_series("frac")
    masks = np.zeros((6, 32, 32, 1), dtype=np.float32)
    masks[1, 10:20, 10:20, 0] = 0.5
    masks[1, 12:14, 12:14, 0] = 1.0
    seg = highdicom_seg(images, masks, "frac", fractional=True)
    assert seg.SegmentationType == "FRACTIONAL"
    _, found = _load(tmp_path, [*images, seg])
    (layer,) = found.layers
    mask = layer.masks[1]
    assert sorted(layer.masks) == [1]
    assert mask[12, 12] == 255 and mask[10, 10] == 128 and mask[9, 9] == 0
    assert np.count_nonzero(mask) == 100


def test_seg_without_source_references_is_placed_by_plane_position(tmp_path: Path) -> None:
    images = ct_series("pos")
    seg = highdicom_seg(images, _masks(), "pos")
    for item in seg.PerFrameFunctionalGroupsSequence:
        del item.DerivationImageSequence  # e.g. a SEG made on another series of the same FoR
    source = read_segmentation(seg)
    assert all(not f.sources for f in source.frames)
    volume, found = _load(tmp_path, [*images, seg])
    assert {layer.segment.label for layer in found.layers} == {"Bleed", "Edema"}
    masks = masks_for_volume(source, volume)
    assert sorted(masks[1]) == [2, 3] and sorted(masks[2]) == [4]
    assert masks[1][2][5:10, 20:25].all() and masks[1][2].sum() == 25 * 255
    # the same SEG in another frame of reference is not on this series
    other = copy.deepcopy(seg)
    other.FrameOfReferenceUID = "1.2.3.4"
    assert masks_for_volume(read_segmentation(other), volume) == {}


def test_not_a_seg_is_refused_by_name() -> None:
    (image,) = ct_series("refuse", slices=1)
    with pytest.raises(SegmentationError, match="not a Segmentation"):
        read_segmentation(image)
