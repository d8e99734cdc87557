"""The app's background sender as a process of its own, for the fault-injection test.

    python -m tests.reliability.sender_app URL [--outbox-file PATH] [--timeout S]

It does what the running app does with its outbox (``Sender.start``: a daemon
thread that sends, backs off and retries) until nothing is left to send, then
exits 0; 2 when items are still pending after ``--timeout`` seconds. Unlike
``companion outbox flush``, which gives up at the first "archive unreachable",
it rides out an archive that goes down and comes back.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from app.archive.client import open_dicomweb
from app.delivery.outbox import Outbox
from app.delivery.sender import Sender


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sender_app")
    parser.add_argument("url", help="DICOMweb root URL of the archive")
    parser.add_argument("--outbox-file", type=Path, default=None,
                        help="the journal file (default: the app's)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    outbox = Outbox(args.outbox_file)
    sender = Sender(outbox, open_dicomweb(args.url, timeout=10))
    sender.start()
    deadline = time.monotonic() + args.timeout
    try:
        while outbox.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    left = len(outbox.pending())
    outbox.close()
    print(f"sender_app: {left} item(s) still pending")
    return 0 if left == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
