"""The fault-injection proxy itself, against the real Orthanc: it relays, holds an exchange
at each point, drops or resumes it, refuses connections while "down", and its record of
answered STOWs shows a second store that Orthanc itself hides."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from app.archive.client import open_dicomweb
from app.errors import ArchiveError
from tests.reliability.rig import answered_uids, is_stow, request_sop_uid
from tests.support import dicom_data, orthanc
from tests.support.tcp_proxy import AFTER_RESPONSE, BEFORE_FORWARD, MID_BODY, TcpProxy

pytestmark = pytest.mark.orthanc


@pytest.fixture()
def proxy(empty_orthanc: orthanc.OrthancServer) -> Iterator[TcpProxy]:
    with TcpProxy(empty_orthanc.http_port) as proxy:
        yield proxy


def _copies(server: orthanc.OrthancServer, sop_uid: str) -> int:
    response = requests.get(f"{server.dicomweb_url}/instances",
                            params={"SOPInstanceUID": sop_uid}, timeout=30)
    response.raise_for_status()
    return len(response.json()) if response.content else 0


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except ArchiveError as exc:  # the caller inspects what happened
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_proxy_holds_drops_and_resumes_exchanges(
    proxy: TcpProxy, empty_orthanc: orthanc.OrthancServer
) -> None:
    archive = open_dicomweb(f"{proxy.url}/dicom-web", timeout=10)
    first, second, third = (dicom_data.sr(f"proxy-{i}", prefix="proxy") for i in range(3))

    # Held before forwarding, then dropped: the server never sees it, the client is reset.
    pause = proxy.pause(BEFORE_FORWARD, path_contains="/studies")
    thread, outcome = _in_thread(lambda: archive.store([first]))
    held = pause.wait(10)
    assert held.forwarded == "none" and request_sop_uid(held.request_body) == first.SOPInstanceUID
    assert _copies(empty_orthanc, first.SOPInstanceUID) == 0
    pause.drop()
    thread.join(10)
    assert isinstance(outcome[0], ArchiveError)
    assert _copies(empty_orthanc, first.SOPInstanceUID) == 0

    # Held after the server answered: stored, but the client never hears of it.
    pause = proxy.pause(AFTER_RESPONSE, path_contains="/studies")
    thread, outcome = _in_thread(lambda: archive.store([second]))
    held = pause.wait(10)
    assert held.status == 200 and answered_uids(held) == [second.SOPInstanceUID]
    assert _copies(empty_orthanc, second.SOPInstanceUID) == 1
    pause.drop()
    thread.join(10)
    assert isinstance(outcome[0], ArchiveError) and not held.delivered

    # Half the body reached the server, then the rest: it completes as usual.
    pause = proxy.pause(MID_BODY, path_contains="/studies")
    thread, outcome = _in_thread(lambda: archive.store([third]))
    assert pause.wait(10).forwarded == "partial"
    pause.resume()
    thread.join(10)
    assert not isinstance(outcome[0], Exception) and pause.exchange is not None
    assert proxy.wait_for(lambda _: bool(pause.exchange and pause.exchange.delivered), 5)
    assert pause.exchange.status == 200

    # A second store of the same instance: Orthanc keeps one copy and answers 200 again,
    # so only the proxy's record shows the duplicate.
    archive.store([second])
    assert _copies(empty_orthanc, second.SOPInstanceUID) == 1
    answered = [u for ex in proxy.exchanges if is_stow(ex) for u in answered_uids(ex)]
    assert answered.count(second.SOPInstanceUID) == 2
    assert answered.count(first.SOPInstanceUID) == 0


def test_proxy_refuses_connections_while_down(proxy: TcpProxy) -> None:
    assert requests.get(f"{proxy.url}/system", timeout=10).ok
    proxy.stop_listening()
    with pytest.raises(requests.ConnectionError, match="refused"):
        requests.get(f"{proxy.url}/system", timeout=10)
    proxy.start_listening()
    assert requests.get(f"{proxy.url}/system", timeout=10).ok
    # (the proxy marks an answer delivered just after the client may have read it)
    assert proxy.wait_for(lambda ex: [e.delivered for e in ex] == [True, True], 5)
