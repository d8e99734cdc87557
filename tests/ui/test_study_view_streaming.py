"""The study view shows the first image while the rest of the series is still on the wire.

Real parts: Orthanc behind the loopback TCP proxy, which holds the loader's series
stream (the third request naming the series: metadata, the preferred slice's
instance, then the whole series) until the test has looked at the screen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid
from pytestqt.qtbot import QtBot

from app.archive.client import open_dicomweb
from tests.app.test_volume import make_ct_series
from tests.support.orthanc import OrthancServer
from tests.support.tcp_proxy import AFTER_RESPONSE, TcpProxy
from tests.ui.qt_helpers import LoopDriver, dispose
from ui.async_ops import AsyncOps
from ui.study_view import StudyView

pytestmark = [pytest.mark.gui, pytest.mark.orthanc]

N, SIZE = 12, 64


def test_first_image_is_shown_before_the_series_finishes(
    empty_orthanc: OrthancServer, loop: LoopDriver, qtbot: QtBot, tmp_path: Path
) -> None:
    hu = np.full((N, SIZE, SIZE), -1000, dtype=np.int16)
    hu[:, 16:48, 16:48] = 1000  # a bright square on every slice, air around it
    slices = make_ct_series(generate_uid(), n=N, size=SIZE, volume=hu, window=(0.0, 400.0))
    study_uid, series_uid = slices[0].StudyInstanceUID, slices[0].SeriesInstanceUID
    with TcpProxy(empty_orthanc.http_port) as proxy:
        archive = open_dicomweb(f"{proxy.url}/dicom-web")
        archive.store(slices)
        view = StudyView(archive, AsyncOps())
        view.resize(500, 500)
        view.show()
        qtbot.waitExposed(view)
        try:
            held = proxy.pause(AFTER_RESPONSE, method="GET", path_contains=series_uid, nth=3)
            opened = loop.loop.create_task(view.open_study(study_uid, "Streaming test", []))
            loop.wait_signal(view.sig_first_image, timeout=30)
            exchange = held.wait(30)
            assert exchange.target.endswith(f"/series/{series_uid}")  # the whole series, held

            volume = view.viewer.volume
            assert volume is not None and not volume.complete
            assert view.viewer.slice_index == N // 2 and volume.is_loaded(N // 2)
            assert sum(volume.is_loaded(z) for z in range(N)) == 1
            assert view.progress.isVisible()
            view.viewer.render()
            rgb = view.viewer.rendered_rgb()
            view.screen().grabWindow(view.winId()).save(str(tmp_path / "first_image.png"))
            h, w, _ = rgb.shape
            assert rgb[h // 2, w // 2].min() > 200  # the square is on screen, white
            assert rgb[h // 2, 5].max() < 30  # air at the window's low end, black
            # the switcher's thumbnail is the middle slice, made from what is already here
            icon = view.series_combo.itemIcon(view.series_combo.findData(series_uid))
            thumb = icon.pixmap(32, 32).toImage()
            assert thumb.pixelColor(16, 16).lightness() > 200
            assert thumb.pixelColor(2, 16).lightness() < 30

            held.resume()
            assert loop.run(opened, timeout=30) is True
            assert volume.complete and not volume.gaps and not view.progress.isVisible()
            assert np.array_equal(volume.pixels, hu)
        finally:
            proxy.disarm()
            dispose(view)
