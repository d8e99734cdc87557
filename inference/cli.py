"""``companion infer``: run a local model on a study, headless, and print the findings.

    companion infer STUDY_UID [--demo | --server URL] [--model NAME] [--series UID]
                              [--store] [--json]
    companion models [--json]

The findings are printed with the same fields as ``companion findings --json``
(``Finding.to_json``). The AI result SR and SEG are kept in the local results folder,
or with ``--store`` (or the ``ai_results_to_archive`` setting) committed to the
durable outbox and sent to the archive. Also the way to run a silent validation
over historical studies: a loop over study UIDs.

``add_parsers`` adds these to the app's parser; ``run`` executes the parsed args.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from app.errors import NotFoundError
from inference.registry import ModelEntry, ModelRegistry
from inference.service import StudyNotSuitable

STORE_TIMEOUT_S = 60.0


def add_parsers(subparsers: Any) -> None:
    """Add ``infer`` and ``models`` to ``subparsers`` (from ``add_subparsers``)."""
    infer = subparsers.add_parser("infer", help="run a local AI model on a study")
    infer.add_argument("study_uid", metavar="STUDY_UID")
    group = infer.add_mutually_exclusive_group()
    # Suppressed defaults keep a --demo/--server given before the subcommand.
    group.add_argument(
        "--demo",
        action="store_true",
        default=argparse.SUPPRESS,
        help="use the embedded offline demo archive",
    )
    group.add_argument(
        "--server",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="DICOMweb root URL of the archive",
    )
    infer.add_argument(
        "--model",
        metavar="NAME",
        default=None,
        help="model to run (default: the first that fits the series)",
    )
    infer.add_argument(
        "--series",
        metavar="UID",
        default=None,
        help="series to run on (default: the largest that fits the model)",
    )
    infer.add_argument(
        "--store",
        action="store_true",
        help="store the AI result SR and SEG in the archive (via the outbox)",
    )
    infer.add_argument("--json", action="store_true", help="the findings as JSON on stdout")
    models = subparsers.add_parser("models", help="list the local AI models and their state")
    models.add_argument("--json", action="store_true", help="JSON on stdout")


def run(args: argparse.Namespace) -> int:
    """Execute ``companion infer`` or ``companion models``; the exit code."""
    from app.settings import load_settings

    settings = load_settings()
    registry = ModelRegistry.from_settings(settings.models_folder)
    if args.command == "models":
        return _models(registry, bool(args.json))
    return _infer(args, settings, registry)


def _models(registry: ModelRegistry, json_out: bool) -> int:
    entries = registry.models()
    if json_out:
        json.dump([e.to_json() for e in entries], sys.stdout, indent=2)
        print()
        return 0
    for e in entries:
        m = e.manifest
        state = "available" if e.available else f"unavailable: {e.reason}"
        version = m.version if m else "?"
        print(f"{e.name} {version} ({e.source}) — {state}")
    return 0


def _infer(args: argparse.Namespace, settings: Any, registry: ModelRegistry) -> int:
    from app.archive.series_loader import SeriesLoader
    from app.archive.volume import display_series
    from app.connect import connect
    from inference.outputs import build_objects, evidence_headers, keep_local, local_results_dir
    from inference.service import InferenceService

    demo = bool(getattr(args, "demo", False))
    server = getattr(args, "server", None)
    connection = connect(settings, demo=demo, server=server, progress=_progress("Preparing"))
    archive = connection.archive
    if not archive.search_studies(filters={"StudyInstanceUID": args.study_uid}):
        raise NotFoundError(f"study {args.study_uid} is not in {archive.description}")
    candidates = display_series(archive, args.study_uid)
    if args.series:
        candidates = [s for s in candidates if s.series_uid == args.series]
        if not candidates:
            raise NotFoundError(f"series {args.series} is not an image series of this study")
    if not candidates:
        raise StudyNotSuitable("the study has no image series to run a model on")
    chosen: tuple[Any, ModelEntry] | None = None
    refusals = []
    for series in candidates:
        evidence = evidence_headers(archive, args.study_uid, series.series_uid)
        body_part = str(evidence[0].get("BodyPartExamined", "")) if evidence else ""
        try:
            entry = _pick_model(registry, args.model, series.modality, body_part)
        except StudyNotSuitable as exc:
            refusals.append(str(exc))
            continue
        chosen = (series, entry)
        break
    if chosen is None:
        raise StudyNotSuitable("; ".join(dict.fromkeys(refusals)))
    series, entry = chosen
    parts = entry.manifest.input_filter.body_parts if entry.manifest else ()
    if parts and not body_part:
        print(
            f"companion: note: the series has no Body Part Examined; {entry.name} is made "
            f"for {'/'.join(parts)}",
            file=sys.stderr,
        )
    volume = SeriesLoader(archive).load(
        args.study_uid, series.series_uid, progress=_progress("Loading the series")
    )
    service = InferenceService(registry, device=settings.inference_device)
    try:
        result = service.run(volume, entry, body_part=body_part, progress=_progress("Inference"))
    finally:
        service.close()
    for message in result.messages:
        print(f"companion: note: {message}", file=sys.stderr)
    objects = build_objects(result, evidence)
    if args.store or settings.ai_results_to_archive:
        _store(objects, connection, settings)
    else:
        paths = keep_local(objects, local_results_dir())
        print(f"companion: AI result kept locally: {paths[0].parent}", file=sys.stderr)
    if args.json:
        json.dump([f.to_json() for f in result.findings], sys.stdout, indent=2)
        print()
    else:
        print(
            f"{entry.name} {result.model.version} on {result.device}: "
            f"{len(result.findings)} finding(s)"
        )
        for f in result.findings:
            cert = f"{f.certainty:.2f}" if f.certainty is not None else "-"
            site = f.site.meaning if f.site else "-"
            print(f"  [{f.urgency.label}] {f.finding.meaning} · {site} · certainty {cert}")
    return 0


def _pick_model(
    registry: ModelRegistry, name: str | None, modality: str, body_part: str
) -> ModelEntry:
    if name:
        entry = registry.get(name)
        f = entry.manifest.input_filter if entry.manifest else None
        if f is not None and f.modalities and modality.upper() not in f.modalities:
            raise StudyNotSuitable(
                f"model {name!r} takes {'/'.join(f.modalities)} series, not {modality}"
            )
        return entry
    entry_or_none = registry.default_for(modality, body_part)
    if entry_or_none is None:
        raise StudyNotSuitable(
            f"no available model takes {modality} {body_part or ''} series".replace("  ", " ")
        )
    return entry_or_none


def _store(objects: Any, connection: Any, settings: Any) -> None:
    """Commit to the durable outbox, then send what is due now (the app sends the rest)."""
    from app.delivery.cli import _send_audit
    from app.delivery.outbox import Outbox
    from app.delivery.sender import Sender
    from app.settings import journal_path
    from inference.outputs import store_via_outbox

    outbox = Outbox(journal_path(connection.demo))
    try:
        ids = store_via_outbox(objects, outbox, connection.destination)
        sender = Sender(
            outbox,
            connection.archive,
            journal=_send_audit(outbox, settings, connection.destination, connection.demo),
            destination=connection.destination,
        )
        deadline = time.monotonic() + STORE_TIMEOUT_S
        while time.monotonic() < deadline:
            report = sender.run_once()
            if report.unreachable or not report.attempted:
                break
        states = [outbox.get(i).state for i in ids]
        print(f"companion: AI result objects: {', '.join(states)}", file=sys.stderr)
    finally:
        outbox.close()


def _progress(what: str):  # type: ignore[no-untyped-def]
    def report(done: int, total: int) -> None:
        if sys.stderr.isatty() or done in (0, total):
            print(f"\r{what}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr)

    return report
