"""FHIRcast-driven study switching: the PACS opens a study, the companion follows.

No FHIRcast hub can be installed on this machine: the tests run the small hub in
tests/support/fhircast_hub.py that follows the STU3 spec (subscription, websocket
events, acks, current context) on loopback. Everything else is real: the
subscriber, the sidecar and main window, the local archive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.context.fhircast import FhircastConfig, FhircastSubscriber
from tests.support.fhircast_hub import TOKEN, FhircastHub, study_context
from tests.ui.qt_helpers import LoopDriver
from tests.ui.review_data import ReviewData
from ui.context_follow import ContextFollower
from ui.workstation import Workstation

pytestmark = pytest.mark.gui


@pytest.fixture()
def hub() -> Iterator[FhircastHub]:
    server = FhircastHub().start()
    yield server
    server.stop()


def test_the_sidecar_follows_the_study_the_pacs_opens(
    station: Workstation, station_data: ReviewData, hub: FhircastHub, loop: LoopDriver, qtbot: QtBot
) -> None:
    window, sidecar = station.window, station.sidecar
    assert loop.run(window.refresh()) is not None
    station.show_sidecar()

    def make(on_context, on_status):  # type: ignore[no-untyped-def]
        config = FhircastConfig(hub_url=hub.url, topic=hub.topic)
        return FhircastSubscriber(config, token=lambda: TOKEN, on_context=on_context,
                                  on_status=on_status)

    follower = ContextFollower(station, make)
    station.follower = follower
    loop.until(lambda: follower.label.text() == "FHIRcast: subscribed", 10)

    sent = time.monotonic()
    hub.publish("ImagingStudy-open", study_context(station_data.head_study, "ACC-HEAD"))
    loop.until(lambda: sidecar.findings.count() == 1)
    elapsed = time.monotonic() - sent
    assert "Intracranial hemorrhage" in sidecar.findings.item(0).text()
    assert window.study_view.study_uid == station_data.head_study
    print(f"findings on screen {elapsed * 1000:.0f} ms after the PACS opened the study")
    assert elapsed < 1.0, "the sidecar must show the new study's findings within a second"

    hub.publish("ImagingStudy-open", study_context(station_data.chest_study))
    loop.until(lambda: window.study_view.study_uid == station_data.chest_study)
    loop.until(lambda: "pneumothorax" in sidecar.findings.item(0).text().lower()
                    if sidecar.findings.count() else False)

    hub.publish("ImagingStudy-close", study_context(station_data.chest_study))
    loop.until(lambda: window.study_view.study_uid is None)
    loop.until(lambda: sidecar.findings.count() == 0)
    assert window.findings_panel.state.text() == "The study was closed in the PACS"

    follower.stop()
    assert hub.unsubscribes, "the subscription must be ended on exit"

