"""The workstation package, built and installed for real (issue 8).

Builds the review bundle with installer/build.sh (PyInstaller, from this test run's
own environment), installs the .deb with dpkg on this machine, and then uses only
the installed files: the self-test, the demo under Xvfb (screenshot kept in the
test's tmp folder), the menu entry and the companion:// handler the desktop knows.
Removes the package at the end. Needs root and dpkg (CI runs as root on Debian);
it takes a few minutes, hence the ``slow`` mark.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "ai-review-companion"
PREFIX = Path("/opt/ai-review-companion")
DESKTOP = Path("/usr/share/applications/ai-review-companion.desktop")


def _run(cmd: list[str], home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COMPANION_HOME=str(home))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _installed(package: str) -> bool:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return "install ok installed" in proc.stdout


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("dpkg-deb") is None:
        pytest.skip("installing a .deb needs root and dpkg (the CI machine has both)")
    for package in (PACKAGE, f"{PACKAGE}-full"):
        if _installed(package):
            pytest.skip(f"{package} is installed on this machine; the test will not replace it")
    work = tmp_path_factory.mktemp("package")
    env = dict(os.environ, BUILD_VENV=sys.prefix, DIST=str(work / "dist"), WORK=str(work / "work"))
    build = subprocess.run(
        ["bash", "installer/build.sh", "review"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    debs = sorted((work / "dist").glob(f"{PACKAGE}_*.deb"))
    assert len(debs) == 1, build.stdout
    install = subprocess.run(["dpkg", "-i", str(debs[0])], capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr
    try:
        yield debs[0]
    finally:
        subprocess.run(["dpkg", "--purge", PACKAGE], capture_output=True, check=False)
    assert not _installed(PACKAGE)
    assert not PREFIX.exists(), "removing the package left its files in /opt"


def test_package_holds_the_bundle_menu_entry_and_icon(deb: Path) -> None:
    info = subprocess.run(
        ["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    assert fields["Package"] == PACKAGE
    # Worked out from the bundle's binaries: OpenGL for VTK and X for Qt come from the system.
    for needed in ("libc6", "libgl1", "libxcb1", "libgl1-mesa-dri"):
        assert needed in fields["Depends"], fields["Depends"]
    assert os.access(PREFIX / "companion", os.X_OK)
    assert os.access("/usr/bin/companion", os.X_OK)
    assert not (PREFIX / "_internal" / "torch").exists(), "the review flavor must not carry torch"
    assert Path("/usr/share/icons/hicolor/256x256/apps/ai-review-companion.png").is_file()
    validate = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True,
                              text=True, check=False)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    entry = DESKTOP.read_text()
    assert "MimeType=x-scheme-handler/companion;" in entry
    assert f"Exec={PREFIX}/companion %u" in entry


def test_the_desktop_knows_the_link_handler(deb: Path) -> None:
    query = subprocess.run(["xdg-mime", "query", "default", "x-scheme-handler/companion"],
                           capture_output=True, text=True, check=False)
    assert query.stdout.strip() == DESKTOP.name


def test_self_test_from_the_installed_files(deb: Path, tmp_path: Path) -> None:
    proc = _run(["/usr/bin/companion", "--self-test", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    status = {c["name"]: c for c in report["checks"]}
    assert status["Qt platform"]["status"] == "ok", status["Qt platform"]
    assert status["VTK OpenGL"]["status"] == "ok", status["VTK OpenGL"]
    decoders = [c for name, c in status.items() if name.startswith("decoder ")]
    assert len(decoders) >= 10 and all(c["status"] == "ok" for c in decoders), decoders
    assert status["torch"]["status"] == "warning" and "not installed" in status["torch"]["detail"]
    assert report["ok"] is True


def test_installed_app_keeps_secrets_in_a_real_secret_service(deb: Path, tmp_path: Path) -> None:
    # A desktop session's keyring: a D-Bus session bus with gnome-keyring's Secret Service,
    # unlocked as a login would. The bundle must find and accept it.
    script = tmp_path / "session.sh"
    script.write_text(
        "set -e\n"
        "echo -n test-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null\n"
        "exec /usr/bin/companion --self-test --json\n"
    )
    env = dict(os.environ, COMPANION_HOME=str(tmp_path / "home"), HOME=str(tmp_path))
    env.pop("PYTHON_KEYRING_BACKEND", None)
    proc = subprocess.run(["dbus-run-session", "--", "sh", str(script)], capture_output=True,
                          text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    keyring = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "keyring")
    assert keyring["status"] == "ok" and "SecretService" in keyring["detail"], keyring


def test_demo_starts_from_the_installed_files(deb: Path, tmp_path: Path) -> None:
    shot = tmp_path / "installed-demo.png"
    proc = _run(["/usr/bin/companion", "--screenshot", str(shot)], tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    image = Image.open(shot).convert("L")
    assert image.size[0] >= 1000 and image.size[1] >= 600
    low, high = image.getextrema()
    assert high - low > 100, "the screenshot is blank"
    print(f"screenshot of the installed demo: {shot}")


def test_a_link_opens_its_study_through_the_registered_handler(deb: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    listing = _run(["/usr/bin/companion", "worklist", "--json"], home)
    assert listing.returncode == 0, listing.stderr
    items = json.loads(listing.stdout)
    # Not the top of the worklist (which a start without a link opens anyway).
    wanted = next(i for i in items[1:] if i["accession"])
    exec_line = next(line for line in DESKTOP.read_text().splitlines() if line.startswith("Exec="))
    link = f"companion://open?accession={wanted['accession']}"
    command = [link if arg == "%u" else arg for arg in shlex.split(exec_line[len("Exec="):])]
    proc = _run([*command, "--screenshot", str(tmp_path / "link.png")], home)
    assert proc.returncode == 0, proc.stderr
    # The audit trail of the installed app says which study was opened.
    journal = home / "data" / "demo-journal.sqlite3"
    export = _run(["/usr/bin/companion", "audit", "--db", str(journal), "export"], home)
    assert export.returncode == 0, export.stderr
    assert wanted["study_uid"] in export.stdout
    assert items[0]["study_uid"] not in export.stdout
