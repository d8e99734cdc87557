"""``companion --self-test``: every check can fail, and the exit code says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import selftest
from app.settings import ConnectionProfile, Settings
from tests.support import orthanc


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "--self-test", *args],
                          capture_output=True, text=True, timeout=180, check=False, env=env)


def test_decoders_cover_every_common_transfer_syntax() -> None:
    checks = selftest.decoders()
    assert len(checks) == len(selftest.TRANSFER_SYNTAXES)
    assert all(c.status == "ok" for c in checks), [c for c in checks if c.status != "ok"]


def test_folders_ok_and_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [c.status for c in selftest.folders()] == ["ok"] * 3
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("COMPANION_HOME", str(blocker / "home"))  # under a file: not creatable
    checks = selftest.folders()
    assert [c.status for c in checks] == ["failed"] * 3
    assert selftest.exit_code(checks) == 1


def test_keyring_secure_or_warned(memory_keyring: object) -> None:
    assert selftest.keyring_backend().status == "ok"
    import keyring
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())  # the fixture puts the previous one back
    check = selftest.keyring_backend()
    assert check.status == "warning" and "cannot store secrets" in check.detail


def test_archives_reachable_and_not(orthanc_server: orthanc.OrthancServer) -> None:
    dead = f"http://127.0.0.1:{orthanc.free_port()}/dicom-web"
    settings = Settings(profiles=[
        ConnectionProfile("pacs", orthanc_server.dicomweb_url),
        ConnectionProfile("gone", dead),
    ])
    ok, failed = selftest.archives(settings)
    assert ok.status == "ok" and ok.name == "archive pacs"
    assert failed.status == "failed" and "Cannot reach" in failed.detail


def test_cli_json_under_xvfb_reports_qt_and_opengl() -> None:
    proc = _run("--json")
    report = json.loads(proc.stdout)
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["Qt platform"]["status"] == "ok", by_name["Qt platform"]
    assert by_name["VTK OpenGL"]["status"] == "ok" and "OpenGL" in by_name["VTK OpenGL"]["detail"]
    assert by_name["torch"]["status"] in ("ok", "warning")
    assert proc.returncode == (0 if report["ok"] else 1)
    assert report["ok"] is not any(c["status"] == "failed" for c in report["checks"])


def test_cli_without_a_display_fails_with_the_reason() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY",
                                                            "QT_QPA_PLATFORM")}
    proc = _run(env=env)
    assert proc.returncode == 1
    line = next(ln for ln in proc.stdout.splitlines() if "Qt platform" in ln)
    assert line.startswith("FAILED") and "did not load" in line
    assert proc.stdout.strip().splitlines()[-1].startswith("self-test: ")
