"""``companion outbox ...``: see and drive the outbox from the command line.

    companion outbox status [--json]
    companion outbox flush [--demo | --server URL] [--timeout S]
    companion outbox retry ID
    companion outbox discard ID

``add_parsers`` adds these to the app's parser; ``run`` executes the parsed args.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from app.archive.protocol import ImageArchive
from app.delivery.outbox import Outbox, OutboxItem
from app.delivery.sender import RunReport, Sender
from app.errors import CompanionError, ConfigError

DEFAULT_FLUSH_TIMEOUT_S = 60.0


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``outbox`` and its subcommands to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "outbox", help="show or send what waits to be stored in the archive"
    )
    parser.add_argument(
        "--outbox-file", metavar="PATH", type=Path, default=None,
        help="the outbox database (default: DATA_DIR/outbox.sqlite3)",
    )
    actions = parser.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)

    st = actions.add_parser("status", help="counts, and parked items with their reasons")
    st.add_argument("--json", action="store_true", help="JSON on stdout")

    fl = actions.add_parser("flush", help="send every due item now, then exit")
    group = fl.add_mutually_exclusive_group()
    # Suppressed defaults keep a --demo/--server given before the subcommand.
    group.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                       help="send to the embedded offline demo archive")
    group.add_argument("--server", metavar="URL", default=argparse.SUPPRESS,
                       help="DICOMweb root URL of the archive")
    fl.add_argument("--timeout", type=float, default=DEFAULT_FLUSH_TIMEOUT_S, metavar="S",
                    help=f"stop after this many seconds (default {DEFAULT_FLUSH_TIMEOUT_S:g})")

    for name, text in (("retry", "send a parked item again"), ("discard", "give up an item")):
        one = actions.add_parser(name, help=text)
        one.add_argument("item_id", type=int, metavar="ID")
    return parser


def run(args: argparse.Namespace) -> int:
    """Execute ``companion outbox ...``; the exit code."""
    try:
        outbox = Outbox(getattr(args, "outbox_file", None))
        try:
            command = args.outbox_command
            if command == "status":
                return _status(outbox, json_out=bool(getattr(args, "json", False)))
            if command == "flush":
                return _flush(outbox, args)
            if command == "retry":
                outbox.retry(args.item_id)
                print(f"outbox item {args.item_id} will be sent again")
                return 0
            if command == "discard":
                outbox.discard(args.item_id)
                print(f"outbox item {args.item_id} discarded")
                return 0
            raise ConfigError(f"unknown outbox action {command!r}")
        finally:
            outbox.close()
    except CompanionError as exc:
        print(f"companion: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _status(outbox: Outbox, *, json_out: bool) -> int:
    status = outbox.status()
    if json_out:
        print(json.dumps(status.to_json(), indent=2))
        return 0
    counts = status.counts
    print(
        f"pending: {status.pending}  sent: {counts['sent']}  parked: {counts['parked']}"
        f"  discarded: {counts['discarded']}"
    )
    for item in status.parked:
        print(_line("parked", item))
    return 0


def _flush(outbox: Outbox, args: argparse.Namespace) -> int:
    sender = Sender(outbox, _archive(args))
    deadline = time.monotonic() + max(0.0, float(args.timeout))
    total = RunReport()
    while time.monotonic() < deadline:
        report = sender.run_once()
        total.sent += report.sent
        total.parked += report.parked
        total.retrying += report.retrying
        if report.unreachable:
            total.unreachable = report.unreachable
            break
        if not report.attempted:
            break
    for what, ids in (("sent", total.sent), ("parked", total.parked)):
        for item_id in ids:
            print(_line(what, outbox.get(item_id)))
    left = len(outbox.pending())
    if total.unreachable:
        print(
            f"companion: error: the archive at {sender.archive.description} is unreachable "
            f"({total.unreachable}); {left} item(s) still pending",
            file=sys.stderr,
        )
        return 1
    print(f"outbox: {len(total.sent)} sent, {len(total.parked)} parked, {left} still pending")
    return 0


def _archive(args: argparse.Namespace) -> ImageArchive:
    from app.connect import connect
    from app.settings import load_settings

    connection = connect(
        load_settings(),
        demo=bool(getattr(args, "demo", False)),
        server=getattr(args, "server", None),
    )
    return connection.archive


def _line(what: str, item: OutboxItem) -> str:
    text = f"{what:<7} #{item.id} {item.label or 'object'} {item.sop_instance_uid}"
    if item.reason:
        text += f": {item.reason}"
    if item.server_message:
        text += f" — server said: {item.server_message[:200]}"
    return text
