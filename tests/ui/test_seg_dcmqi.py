"""A SEG written by another tool (dcmqi's itkimage2segimage), stored in a real Orthanc,
read through the app's DICOMweb archive and shown: right slices, right pixels, right colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.archive.client import open_dicomweb
from app.archive.volume import load_volume
from app.results.seg_source import segmentations_for_volume
from tests.support.dcmqi import itkimage2segimage, segment_attributes
from tests.support.orthanc import OrthancServer
from tests.support.seg_data import ct_series
from viewers.slice_viewer import SliceViewer

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("kind", ["binary", "labelmap"])
def test_dcmqi_seg_from_orthanc_displays_on_the_right_slices_in_its_colour(
    tmp_path: Path, empty_orthanc: OrthancServer, viewer: SliceViewer, kind: str
) -> None:
    images = ct_series(f"dcmqi-{kind}")
    labels = np.zeros((6, 32, 32), np.uint8)
    labels[2:4, 5:10, 20:25] = 1  # bleed: slices 2-3, rows 5-9, columns 20-24
    labels[4, 1:3, 1:3] = 2  # edema: slice 4
    path = itkimage2segimage(
        tmp_path,
        images,
        labels,
        [
            segment_attributes(1, "Bleed", (0, 0, 255)),
            segment_attributes(2, "Edema", (255, 255, 0)),
        ],
        segmentation_type=kind,
    )
    archive = open_dicomweb(empty_orthanc.dicomweb_url)
    archive.store([*reversed(images), pydicom.dcmread(path)])
    volume = load_volume(archive, images[0].StudyInstanceUID, images[0].SeriesInstanceUID)
    found = segmentations_for_volume(archive, volume)
    assert found.problems == []
    by_label = {layer.segment.label: layer for layer in found.layers}
    assert set(by_label) == {"Bleed", "Edema"}  # a label map's background is no segment
    bleed = by_label["Bleed"]
    assert sorted(bleed.masks) == [2, 3] and sorted(by_label["Edema"].masks) == [4]
    assert all(abs(a - b) <= 2 for a, b in zip(bleed.segment.colour, (0, 0, 255), strict=True))
    want = np.zeros((32, 32), bool)
    want[5:10, 20:25] = True
    np.testing.assert_array_equal(bleed.masks[2] > 0, want)

    viewer.show_volume(volume, slice_index=2)
    viewer.set_text_visible(False)
    viewer.overlays.set_segments(found.layers)
    viewer.overlays.set_segment_opacity(bleed.key, 1.0)
    rgb = viewer.rendered_rgb().astype(int)
    blue = (rgb[..., 2] > 200) & (rgb[..., 0] < 60) & (rgb[..., 1] < 60)
    ys, xs = np.nonzero(blue)
    assert ys.size > 0
    x0, y0 = viewer.world_to_widget(19.5, 4.5)  # the mask's outer pixel edges, world mm
    x1, y1 = viewer.world_to_widget(24.5, 9.5)
    assert abs(xs.min() - x0) <= 2 and abs(xs.max() - x1) <= 2
    assert abs(ys.min() - y0) <= 2 and abs(ys.max() - y1) <= 2
    for other in (0, 1, 5):  # no mask on these slices
        viewer.set_slice(other)
        rgb = viewer.rendered_rgb().astype(int)
        assert not ((rgb.max(axis=2) - rgb.min(axis=2)) > 80).any(), other
