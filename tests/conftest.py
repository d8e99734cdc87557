"""Fixtures shared by every test: a real Orthanc, an in-memory keyring, isolated dirs."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from app.demo.slide_catalog import SIZE_ENV
from tests.support import orthanc

TEST_SLIDE_SIZE = "1024x768"  # 3 levels, 17 tiles


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep settings, caches and the demo archive out of the user's real folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("COMPANION_HOME", str(home))
    # The demo set's whole-slide image at a size that takes a moment, not a minute
    # (the full size is checked by its spec: tests/app/test_demo_slide_cli.py).
    monkeypatch.setenv(SIZE_ENV, TEST_SLIDE_SIZE)


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[orthanc.OrthancServer]:
    """One real Orthanc + DICOMweb plugin for the session; tests clear what they need."""
    if not orthanc.available():
        pytest.fail("Orthanc with the DICOMweb plugin is not installed (apt: orthanc orthanc-dicomweb)")
    server = orthanc.start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def empty_orthanc(orthanc_server: orthanc.OrthancServer) -> orthanc.OrthancServer:
    orthanc_server.clear()
    return orthanc_server



@pytest.fixture()
def memory_keyring() -> Iterator[object]:
    import keyring

    from tests.support.memory_keyring import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Once a test has made the QApplication, garbage is collected on its thread only.

    The app does the same in ``ui.app.ensure_application``; pytest-qt makes the
    QApplication of the tests itself (ui/gc_policy.py says why it matters).
    """
    yield
    widgets = sys.modules.get("PySide6.QtWidgets")
    app = widgets.QApplication.instance() if widgets is not None else None
    if app is not None:
        from ui.gc_policy import collect_in_gui_thread

        collect_in_gui_thread(app)
