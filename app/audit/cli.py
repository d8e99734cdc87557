"""``companion audit verify`` and ``companion audit export``.

``app/main.py`` adds these with ``add_parsers(sub)`` and dispatches
``args.command == "audit"`` to ``run(args)``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import AuditError, ConfigError


def _iso_time(text: str) -> datetime:
    """An ISO 8601 date or date-time; a time without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 date or date-time, got {text!r}"
        ) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``audit verify`` and ``audit export`` to the main parser's subparsers."""
    audit = subparsers.add_parser("audit", help="check or export the audit trail")
    audit.add_argument(
        "--db",
        type=Path,
        default=None,
        metavar="FILE",
        help="audit database (default: journal.sqlite3 in the app's data folder)",
    )
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    actions.add_parser(
        "verify", help="check the HMAC chain; exit 1 and name the first bad entry if broken"
    )
    export = actions.add_parser(
        "export", help="write DICOM PS3.15 A.5 audit messages (XML) for a period"
    )
    export.add_argument(
        "--from",
        dest="start",
        type=_iso_time,
        default=None,
        metavar="ISO",
        help="first time included (default: the beginning)",
    )
    export.add_argument(
        "--to",
        dest="end",
        type=_iso_time,
        default=None,
        metavar="ISO",
        help="first time excluded (default: now)",
    )
    export.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        metavar="FILE",
        help="write here instead of stdout",
    )
    return audit


def run(args: argparse.Namespace) -> int:
    """Run an ``audit`` action; returns the process exit status."""
    from app.audit.log import AuditLog, default_path

    path: Path = args.db or default_path()
    if args.audit_command == "verify":
        if not path.exists():
            print(f"0 entries, chain intact (no audit log at {path} yet)")
            return 0
        with AuditLog(path) as log:
            result = log.verify()
        print(result.message(), file=sys.stdout if result.ok else sys.stderr)
        return 0 if result.ok else 1
    if args.audit_command == "export":
        from app.audit.dicom_export import export_dicom_audit_messages

        start = args.start or datetime(1970, 1, 1, tzinfo=UTC)
        end = args.end or datetime.now(UTC)
        if end <= start:
            raise ConfigError(
                f"--to ({end.isoformat()}) must be later than --from ({start.isoformat()})"
            )
        with AuditLog(path) as log:
            try:
                check = log.verify()
                if not check.ok:
                    print(f"companion: warning: {check.message()}", file=sys.stderr)
            except AuditError as exc:
                print(f"companion: warning: audit log not verified: {exc}", file=sys.stderr)
            xml = export_dicom_audit_messages(log, start, end)
        if args.output is None:
            sys.stdout.write(xml)
        else:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(xml, encoding="utf-8")
            print(f"wrote {xml.count('<AuditMessage>')} audit messages to {args.output}")
        return 0
    raise ConfigError(f"unknown audit action {args.audit_command!r}")
