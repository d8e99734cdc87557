"""One running companion: later launches hand their request over (real sockets, real processes)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path

import pytest

from app.context import single_instance
from app.context.single_instance import HandOver, claim, hand_over


def test_a_later_launch_hands_its_request_to_the_running_one(tmp_path: Path) -> None:
    got: list[HandOver] = []
    arrived = threading.Event()
    server = claim(HandOver(), lambda r: (got.append(r), arrived.set()), tmp_path)
    assert server is not None
    try:
        request = HandOver(study_uid="1.2.3", sidecar=True)
        assert claim(request, lambda r: None, tmp_path) is None  # handed over, not a second one
        assert arrived.wait(5)
        assert got == [request]
    finally:
        server.close()
    assert not (tmp_path / "instance.sock").exists()
    # With the first one gone, the next launch runs itself.
    again = claim(HandOver(), lambda r: None, tmp_path)
    assert again is not None
    again.close()


def test_a_socket_left_by_a_crash_is_replaced(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "instance.sock"))
    stale.close()  # the file stays; nobody listens
    (tmp_path / "instance.key").write_bytes(b"k" * 32)
    assert hand_over(HandOver(study_uid="1.2"), tmp_path) is False
    server = claim(HandOver(), lambda r: None, tmp_path)
    assert server is not None
    server.close()


def test_a_client_without_the_users_key_is_refused(tmp_path: Path) -> None:
    got: list[HandOver] = []
    server = claim(HandOver(), got.append, tmp_path)
    assert server is not None
    try:
        address = str(tmp_path / "instance.sock")
        with (
            pytest.raises((AuthenticationError, EOFError, OSError)),
            Client(address, family="AF_UNIX", authkey=b"x" * 32) as c,
        ):
            c.send({"study_uid": "9.9"})
        assert (tmp_path / "instance.key").stat().st_mode & 0o077 == 0
        assert hand_over(HandOver(study_uid="1.5"), tmp_path)  # the real key still works
    finally:
        server.close()
    assert [r.study_uid for r in got] == ["1.5"]


def test_launches_at_the_same_moment_elect_one_instance(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, threading, time
        from pathlib import Path
        from app.context.single_instance import HandOver, claim
        got = []
        server = claim(HandOver(study_uid=sys.argv[1]), got.append, Path({str(tmp_path)!r}))
        if server is None:
            print("handed")
        else:
            time.sleep(4)
            server.close()
            print("primary", len(got))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, f"1.{n}"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    lines = [out.strip() for out, _err in outs]
    assert all(p.returncode == 0 for p in procs), [err for _out, err in outs]
    primaries = [line for line in lines if line.startswith("primary")]
    assert len(primaries) == 1, lines
    assert primaries[0] == "primary 3", lines  # every other launch's request arrived


def test_runtime_dir_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPANION_HOME", str(tmp_path))
    folder = single_instance.runtime_dir()
    assert folder == tmp_path / "run" and folder.stat().st_mode & 0o077 == 0
