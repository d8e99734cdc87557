"""Time from launch to the worklist on screen, in the offline demo.

    xvfb-run -a python installer/measure_start.py [--runs N] -- COMMAND [ARGS...]
    e.g.  ... -- /usr/bin/companion            (the installed .deb)
          ... -- .venv/bin/companion --demo    (a source checkout)

Each run starts COMMAND with ``-v`` and a fresh-or-reused COMPANION_HOME, reads its
log until the app says "worklist shown", and stops it. The first run starts from an
empty home, so it includes generating the demo archive (what a new user waits
for); the later runs reuse it (a normal start). Prints each time and the median of
the warm runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

READY = "worklist shown"


def time_to_worklist(command: list[str], home: str, timeout: float) -> float:
    env = dict(os.environ, COMPANION_HOME=home)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "-v"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seen = threading.Event()
    tail: list[str] = []

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line)
            if READY in line:
                seen.set()
        seen.set()  # the process ended

    threading.Thread(target=watch, daemon=True).start()
    seen.wait(timeout)
    elapsed = time.perf_counter() - start
    ready = any(READY in line for line in tail)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if not ready:
        raise SystemExit(f"the worklist was not shown within {timeout:.0f} s:\n{''.join(tail[-20:])}")
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="runs in all (first one cold)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"]
    if not command or not os.environ.get("DISPLAY"):
        parser.error("give the command after --, and run under a display (xvfb-run -a)")
    with tempfile.TemporaryDirectory(prefix="companion-start-") as home:
        times = [time_to_worklist(command, home, args.timeout) for _ in range(args.runs)]
    print(f"first start (demo generated): {times[0]:.2f} s")
    for n, t in enumerate(times[1:], start=2):
        print(f"start {n}: {t:.2f} s")
    if len(times) > 1:
        print(f"median of later starts: {statistics.median(times[1:]):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
