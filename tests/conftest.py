"""Fixtures shared by every test: a real Orthanc, an in-memory keyring, isolated dirs;
and, once the whole session is done, the scan for leaked secrets (issue 7): every
password and token the tests registered (tests/support/secret_scan.py) is searched for
in every folder they used; a find fails the session."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from app.demo.slide_catalog import SIZE_ENV
from tests.support import orthanc, secret_scan

TEST_SLIDE_SIZE = "1024x768"  # 3 levels, 17 tiles


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep settings, caches and the demo archive out of the user's real folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("COMPANION_HOME", str(home))
    # The demo set's whole-slide image at a size that takes a moment, not a minute
    # (the full size is checked by its spec: tests/app/test_demo_slide_cli.py).
    monkeypatch.setenv(SIZE_ENV, TEST_SLIDE_SIZE)
    secret_scan.register_folder(home)  # settings, logs, journal (outbox, audit) databases
    secret_scan.register_folder(tmp_path_factory.getbasetemp())  # every tmp_path


@pytest.fixture(scope="session", autouse=True)
def _note_tokens() -> Iterator[None]:
    """Register every token answer the app accepts for the secret scan (observation
    only; behaviour unchanged)."""
    from app.security.tokens import OidcTokens

    original = OidcTokens._accept

    def noting(self: OidcTokens, answer: dict[str, object]) -> None:
        secret_scan.register_secret(
            *(answer.get(key) for key in ("access_token", "refresh_token", "id_token"))
        )
        original(self, answer)

    OidcTokens._accept = noting  # type: ignore[method-assign]
    try:
        yield
    finally:
        OidcTokens._accept = original  # type: ignore[method-assign]


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


_SCAN_LINES: list[str] = []  # what the scan found, for the terminal summary


def check_secrets(session: pytest.Session) -> list[tuple[object, str]]:
    """The end-of-session scan: fail a session that passed when a registered secret is
    in a file the tests left (reported in the terminal summary, or on stderr)."""
    found, summary = secret_scan.scan_session()
    lines = [summary] + ([secret_scan.report(found)] if found else [])
    if session.config.pluginmanager.get_plugin("terminalreporter") is not None:
        _SCAN_LINES[:] = lines
    else:
        print("\n".join(lines), file=sys.stderr)
    if found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return list(found)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    check_secrets(session)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SCAN_LINES:
        failed = len(_SCAN_LINES) > 1
        terminalreporter.write_sep("=", "secret scan", red=failed, green=not failed)
        for line in _SCAN_LINES:
            terminalreporter.write_line(line, red=failed)
