"""``companion outbox ...``: see and drive the outbox from the command line.

    companion [--demo] outbox status [--json]
    companion outbox flush [--demo | --server URL] [--timeout S]
    companion [--demo] outbox retry ID
    companion [--demo] outbox discard ID

Like the app, with no server given and no active profile (or with ``--demo``) these act
on the offline demo's own journal.

``add_parsers`` adds these to the app's parser; ``run`` executes the parsed args.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.delivery.outbox import Extra, Outbox, OutboxItem
from app.delivery.policy import Outcome
from app.delivery.sender import RunReport, Sender
from app.errors import AuditError, CompanionError, ConfigError
from app.settings import Settings, journal_path

DEFAULT_FLUSH_TIMEOUT_S = 60.0
BUSY_POLL_S = 0.2


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``outbox`` and its subcommands to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "outbox", help="show or send what waits to be stored in the archive"
    )
    parser.add_argument(
        "--outbox-file", metavar="PATH", type=Path, default=None,
        help="the outbox database (default: journal.sqlite3, with --demo demo-journal.sqlite3, "
        "in the app's data folder)",
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
        from app.connect import is_demo
        from app.settings import load_settings

        demo = is_demo(
            load_settings(),
            demo=bool(getattr(args, "demo", False)),
            server=getattr(args, "server", None),
        )
        outbox = Outbox(getattr(args, "outbox_file", None) or journal_path(demo))
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
    from app.connect import connect
    from app.settings import load_settings

    settings = load_settings()
    connection = connect(
        settings, demo=bool(getattr(args, "demo", False)), server=getattr(args, "server", None)
    )
    sender = Sender(
        outbox,
        connection.archive,
        journal=_send_audit(outbox, settings, connection.destination, connection.demo),
        destination=connection.destination,
    )
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
        if report.busy and not total.busy:
            print("companion: another companion process is sending this outbox; waiting",
                  file=sys.stderr)
        total.busy = report.busy
        if report.busy:  # the running app is sending this outbox: wait for its pass to end
            time.sleep(BUSY_POLL_S)
            continue
        if not report.attempted:
            break
    for what, ids in (("sent", total.sent), ("parked", total.parked)):
        for item_id in ids:
            print(_line(what, outbox.get(item_id)))
    left = len(outbox.pending())
    if total.busy:
        print(
            f"companion: error: another companion process kept sending this outbox for "
            f"{float(args.timeout):g} s; {left} item(s) still pending (it sends them)",
            file=sys.stderr,
        )
        return 1
    if total.unreachable:
        print(
            f"companion: error: the archive at {sender.archive.description} is unreachable "
            f"({total.unreachable}); {left} item(s) still pending",
            file=sys.stderr,
        )
        return 1
    print(f"outbox: {len(total.sent)} sent, {len(total.parked)} parked, {left} still pending")
    return 0


def _send_audit(
    outbox: Outbox, settings: Settings, destination: str, demo: bool
) -> Callable[[OutboxItem, Outcome], Extra] | None:
    """Audit each send in the journal; without a usable audit key the items are still
    sent (they are the reader's committed decisions), with a warning."""
    from app.audit.log import AuditLog
    from app.delivery.journal import send_audit_hook
    from app.review.reader import current_reader
    from app.review.services import audit_key

    try:
        key, notice = audit_key(demo)
    except AuditError as exc:
        print(f"companion: warning: sends are not audited: {exc}", file=sys.stderr)
        return None
    if notice:
        print(f"companion: note: {notice}", file=sys.stderr)
    audit = AuditLog(outbox.path, key=key)
    return send_audit_hook(audit, current_reader(settings).user_id, destination)


def _line(what: str, item: OutboxItem) -> str:
    text = f"{what:<7} #{item.id} {item.label or 'object'} {item.sop_instance_uid}"
    if item.reason:
        text += f": {item.reason}"
    if item.server_message:
        text += f" — server said: {item.server_message[:200]}"
    return text
