"""Command line and composition root: the one place that wires core, archive and Qt.

    companion [--demo | --server URL] [--open STUDY_UID | --accession ACC | companion://open?...]
              [--screenshot FILE.png]
    companion worklist [--demo | --server URL] [--json]
    companion findings STUDY_UID [--demo | --server URL] [--json]
    companion seed-demo TARGET [--seed N] [--slide-size WxH]
    companion --self-test [--json]
    companion outbox status [--json] | flush [--demo | --server URL] | retry ID | discard ID
    companion audit verify | export [--from ISO] [--to ISO] [--output FILE]
    companion infer STUDY_UID [--demo | --server URL] [--model NAME] [--store] [--json]
    companion models [--json]
    companion sign-out [--profile NAME]

Errors the user can act on (``CompanionError``) end the command with one line
on stderr and a non-zero exit; nothing patient-identifying is printed to logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from app.context.launch import LaunchRequest, study_for_request
from app.errors import CompanionError

log = logging.getLogger("app")


def _add_source(parser: argparse.ArgumentParser, *, sub: bool = False) -> None:
    # In a subcommand the defaults are suppressed, so `companion --demo worklist` keeps --demo.
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--demo",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="use the embedded offline demo archive",
    )
    group.add_argument(
        "--server",
        metavar="URL",
        default=argparse.SUPPRESS if sub else None,
        help="DICOMweb root URL of the archive",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="companion",
        description="AI Review Companion: review AI results beside your PACS.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more to stderr")
    _add_source(parser)
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--open", metavar="STUDY_UID", help="open this study at start")
    start.add_argument(
        "--accession", metavar="ACC", help="open the study with this accession number at start"
    )
    # A companion://open?study=UID link given as an argument (the desktop's URL handler
    # passes it on its own) arrives here through main()'s argv rewrite.
    start.add_argument("--url", metavar="LINK", help=argparse.SUPPRESS)
    parser.add_argument(
        "--sidecar",
        action="store_true",
        help="start in the compact sidecar window beside the PACS viewer",
    )
    parser.add_argument(
        "--screenshot",
        metavar="FILE.png",
        type=Path,
        help="wait until the worklist (and opened study) is shown, save a screenshot, exit",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check whether this machine can run the companion (display, OpenGL, decoders, "
        "keyring, GPU, folders, archives); exit 1 on any failure",
    )
    parser.add_argument("--json", action="store_true", help="with --self-test: JSON on stdout")
    parser.add_argument("--self-test-probe", action="store_true", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    wl = sub.add_parser("worklist", help="print the ranked worklist")
    _add_source(wl, sub=True)
    wl.add_argument("--json", action="store_true", help="JSON on stdout")

    fd = sub.add_parser("findings", help="print the AI findings of a study")
    fd.add_argument("study_uid", metavar="STUDY_UID")
    _add_source(fd, sub=True)
    fd.add_argument("--json", action="store_true", help="JSON on stdout")

    sd = sub.add_parser("seed-demo", help="store the demo data set into an archive")
    sd.add_argument("target", metavar="TARGET", help="DICOMweb root URL or a local folder")
    sd.add_argument("--seed", type=int, default=0, help="demo data seed (default 0)")
    sd.add_argument(
        "--slide-size",
        metavar="WxH",
        default=None,
        help="base level of the demo whole-slide image in pixels (default 20480x15360, "
        "or $COMPANION_DEMO_SLIDE_SIZE)",
    )

    from app.audit import cli as audit_cli
    from app.delivery import cli as outbox_cli
    from app.security import cli as security_cli
    from inference import cli as inference_cli

    outbox_cli.add_parsers(sub)
    audit_cli.add_parsers(sub)
    inference_cli.add_parsers(sub)
    security_cli.add_parsers(sub)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line; a bare ``companion://...`` argument becomes ``--url``."""
    from app.context.launch import is_launch_url

    raw = list(sys.argv[1:] if argv is None else argv)
    # `companion companion://open?...` is what the desktop and Windows URL handlers run.
    raw = [part for arg in raw for part in (["--url", arg] if is_launch_url(arg) else [arg])]
    return build_parser().parse_args(raw)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.self_test_probe:  # the display half of --self-test, in a child process
            from ui.self_test_probe import probe

            return probe()
        if args.self_test:
            from app import selftest
            from app.settings import load_settings

            checks = selftest.run_all(load_settings())
            print(selftest.report(checks, as_json=args.json))
            return selftest.exit_code(checks)
        if args.command == "worklist":
            return _worklist(args)
        if args.command == "findings":
            return _findings(args)
        if args.command == "seed-demo":
            return _seed_demo(args)
        if args.command == "outbox":
            from app.delivery import cli as outbox_cli

            return outbox_cli.run(args)
        if args.command == "audit":
            from app.audit import cli as audit_cli

            return audit_cli.run(args)
        if args.command == "sign-out":
            from app.security import cli as security_cli

            return security_cli.run(args)
        if args.command in ("infer", "models"):
            from inference import cli as inference_cli

            return inference_cli.run(args)
        return _gui(args)
    except CompanionError as exc:
        print(f"companion: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: one line for the user, the trace in the log
        log.debug("unexpected error", exc_info=True)
        print(f"companion: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _console_progress(what: str):  # type: ignore[no-untyped-def]
    def report(done: int, total: int) -> None:
        if sys.stderr.isatty() or done in (0, total):
            print(f"\r{what}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr)

    return report


def _services(args: argparse.Namespace, progress=None):  # type: ignore[no-untyped-def]
    from app.connect import connect
    from app.settings import load_settings
    from app.worklist.service import WorklistService

    settings = load_settings()
    connection = connect(
        settings,
        demo=args.demo,
        server=args.server,
        progress=progress or _console_progress("Preparing the offline demo archive"),
    )
    service = WorklistService(
        connection.archive,
        settings.weights,
        full_resync_seconds=settings.full_resync_seconds,
    )
    return settings, connection, service


def _worklist(args: argparse.Namespace) -> int:
    _, _connection, service = _services(args)
    worklist = service.build()
    if args.json:
        json.dump([i.to_json() for i in worklist.items], sys.stdout, indent=2)
        print()
    else:
        print(f"Worklist from {worklist.archive_description}, {len(worklist.items)} studies")
        for item in worklist.items:
            flag = "!" if item.critical else " "
            print(
                f"{item.rank:3d} {flag} {item.score:7.1f}  {item.study.modality:6s} "
                f"{item.study.accession:12s} {item.reason}"
            )
    for error in worklist.errors:
        print(f"companion: warning: {error}", file=sys.stderr)
    return 0


def _findings(args: argparse.Namespace) -> int:
    from app.errors import NotFoundError

    _, connection, service = _services(args)
    if not connection.archive.search_studies(filters={"StudyInstanceUID": args.study_uid}):
        raise NotFoundError(f"study {args.study_uid} is not in {connection.archive.description}")
    results = service.results_for(args.study_uid)
    findings = [f for r in results if r.readable for f in r.findings]
    if args.json:
        json.dump([f.to_json() for f in findings], sys.stdout, indent=2)
        print()
    else:
        for r in results:
            state = "read-only" if not r.editable else "editable"
            print(f"AI result {r.sop_instance_uid} ({r.template}, {state})")
            if not r.readable:
                print(f"  unreadable: {r.problem}")
            for f in r.findings:
                cert = f"{f.certainty:.2f}" if f.certainty is not None else "-"
                site = f.site.meaning if f.site else "-"
                extra = "".join(f" · {m.concept.meaning} {m.value:g}" for m in f.measurements)
                print(f"  [{f.urgency.label}] {f.finding.meaning} · {site} · certainty {cert}{extra}")
    for r in results:
        if not r.readable:
            print(
                f"companion: warning: AI result {r.sop_instance_uid}: {r.problem}", file=sys.stderr
            )
    return 0


def _seed_demo(args: argparse.Namespace) -> int:
    from app.demo.seed import seed_target

    count = seed_target(
        args.target,
        seed=args.seed,
        progress=_console_progress("Generating, then storing"),
        slide_size=args.slide_size,
    )
    print(f"Stored {count} demo instances into {args.target}")
    return 0


def _gui(args: argparse.Namespace) -> int:
    request, link_problem = _launch_request(args)
    hand_overs = None
    instance = None
    if args.screenshot is None:  # a screenshot run is a one-off, not the reader's app
        import queue

        from app.context.single_instance import HandOver, claim

        later_launches: queue.Queue[HandOver] = queue.Queue()
        hand_overs = later_launches
        mine = HandOver(
            study_uid=args.open, accession=args.accession, link=args.url, sidecar=args.sidecar
        )
        try:
            instance = claim(mine, later_launches.put)
        except OSError as exc:
            log.warning("cannot check for a running companion (%s); starting anyway", exc)
        else:
            if instance is None:
                print("The companion is already running: it was asked to show this.")
                return 0
    try:
        return _run_gui(args, request, link_problem, hand_overs)
    finally:
        if instance is not None:
            instance.close()


def _run_gui(args: argparse.Namespace, request, link_problem: str, hand_overs) -> int:  # type: ignore[no-untyped-def]
    # Qt is imported only here: the CLI commands above stay Qt-free and fast.
    from ui.app import prepare_with_progress, run_gui

    settings, connection, service = prepare_with_progress(
        "Preparing the archive (the offline demo is generated on first start)…",
        lambda report: _services(args, report),
    )

    open_study_uid, start_message = study_for_request(request, connection.archive)
    start_message = link_problem or start_message

    from app.review.services import open_review_services

    review = None
    try:
        review = open_review_services(
            settings,
            destination=connection.destination,
            demo=connection.demo,
            observer=connection.profile is not None and connection.profile.observer,
        )
    except CompanionError as exc:
        # The worklist and images still work; reviews cannot be submitted without a
        # journal and an audit trail, and the window says so.
        print(f"companion: warning: reviews cannot be submitted: {exc}", file=sys.stderr)
        unavailable = str(exc)
    else:
        unavailable = ""
        service.locally_submitted = review.store.submitted_studies
    follow = _fhircast(settings, review)
    try:
        return run_gui(
            connection.archive,
            service,
            settings,
            mode_label=connection.mode_label,
            open_study_uid=open_study_uid,
            start_message=start_message,
            sidecar=args.sidecar,
            hand_overs=hand_overs,
            follow=follow,
            profile=connection.profile,
            screenshot=args.screenshot,
            review=review,
            review_unavailable=unavailable,
        )
    finally:
        if review is not None:
            review.close()


def _fhircast(settings, review):  # type: ignore[no-untyped-def]
    """The FHIRcast subscriber maker when the settings turn it on (its token from the
    profile named by ``fhircast.token_source``)."""
    from app.context.follow import fhircast_factory
    from app.security.http_auth import bearer_token

    source = settings.fhircast.token_source

    def token() -> str | None:
        return bearer_token(settings.profile(source)) if source else None

    return fhircast_factory(
        settings,
        token,
        audit=review.audit if review is not None else None,
        user=review.reader.user_id if review is not None else "",
    )


def _launch_request(args: argparse.Namespace) -> tuple[LaunchRequest | None, str]:
    """What --open, --accession or a companion:// link asks for (None: the top of the worklist).

    A bad --open or --accession ends the command (the user typed it); a bad link, which
    the desktop passed on a click with no terminal to read, opens the window with the
    reason in its status bar instead.
    """
    from app.context.launch import LaunchError, check_study_uid, parse_launch_url

    if args.url:
        try:
            return parse_launch_url(args.url), ""
        except LaunchError as exc:
            return None, f"The link could not be followed: {exc}"
    if args.accession:
        return LaunchRequest(accession=args.accession), ""
    if args.open:
        return LaunchRequest(study_uid=check_study_uid(args.open)), ""
    return None, ""


if __name__ == "__main__":
    sys.exit(main())
