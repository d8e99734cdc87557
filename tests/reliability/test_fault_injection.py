"""Fault injection: kill the archive and the app in the middle of sending, many times.

Each round submits a fresh review (1-2 AI SRs) to the outbox, starts the app as
a real process — ``companion outbox flush`` or the app's background sender
(``sender_app``) — against a real Orthanc reached through a loopback proxy
(``tests/support/tcp_proxy.py``), and injects one fault at an exact point of one
STOW-RS exchange (the ``k``-th of the round, chosen at random):

- app faults: SIGKILL the app process while its request is held before the
  server got it, while half the body has reached the server, after the server
  stored the instance and answered (answer held), during the lookup by UID that
  follows such a crash (a second crash), or at a random moment after its first
  request; then start the app again and let it finish; or start a second app
  process (``companion outbox flush``) while the first one is sending;
- archive faults: SIGKILL Orthanc at the same three points or at a random moment
  just after a STOW reached it, or stop it gracefully (SIGTERM) while a request is
  held or half sent; restart it on the same storage (the proxy keeps the app's URL
  and refuses connections while it is down) and check that the outbox sends the
  rest — the same flush after a restart, or the background sender, which rides
  out the outage in one process.

After every round: every object of the review is in the archive exactly once
(QIDO-RS by SOPInstanceUID) and no STOW-RS of it was answered twice (Orthanc
silently accepts a second copy, so the proxy's record of answered STOWs is what
shows a duplicate). At the end, for all rounds: the same, plus the stored bytes
match the committed SHA-256, the archive holds nothing else, and
``companion outbox status --json`` shows nothing pending, sending or parked.

CI runs one round per fault type; ``RELIABILITY_ROUNDS=120`` runs the long version
(figures in docs/reliability.md). ``RELIABILITY_SEED`` picks the random choices.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.delivery.outbox import OutgoingObject
from tests.reliability.rig import COMPANION, REPO, Rig, answered_uids, is_lookup, is_stow
from tests.support import dicom_data, orthanc
from tests.support.tcp_proxy import AFTER_RESPONSE, BEFORE_FORWARD, MID_BODY, Exchange

pytestmark = pytest.mark.orthanc

SEED = int(os.environ.get("RELIABILITY_SEED", "20261128"))
WAIT_S = 30.0  # for one event of a round (the machines are shared and slow at times)


@dataclass(frozen=True)
class Fault:
    name: str
    target: str  # "app" or "orthanc"
    point: str | None  # the proxy pause point of the STOW, None for a random moment
    how: str


FAULTS = (
    Fault("app_kill_before_request", "app", BEFORE_FORWARD,
          "SIGKILL the app while the proxy holds its STOW (the server never got it)"),
    Fault("app_kill_mid_request", "app", MID_BODY,
          "SIGKILL the app when half the STOW body has reached the server"),
    Fault("app_kill_after_answer", "app", AFTER_RESPONSE,
          "SIGKILL the app after the server stored and answered (answer held)"),
    Fault("app_kill_again_in_lookup", "app", AFTER_RESPONSE,
          "as app_kill_after_answer, then SIGKILL the restarted app during its lookup by UID"),
    Fault("app_kill_at_random", "app", None,
          "SIGKILL the app 0-30 ms after its first request of the round reached the proxy"),
    Fault("second_app_while_sending", "app", BEFORE_FORWARD,
          "start `companion outbox flush` while the app's background sender has a STOW in "
          "flight (held); it must wait, not resend"),
    Fault("orthanc_kill_before_request", "orthanc", BEFORE_FORWARD,
          "SIGKILL Orthanc while the proxy holds the STOW; restart it"),
    Fault("orthanc_kill_mid_request", "orthanc", MID_BODY,
          "SIGKILL Orthanc when half the STOW body has reached it; restart it"),
    Fault("orthanc_kill_after_answer", "orthanc", AFTER_RESPONSE,
          "SIGKILL Orthanc after it stored and answered (answer never delivered); restart it"),
    Fault("orthanc_kill_at_random", "orthanc", None,
          "SIGKILL Orthanc 0-15 ms after the round's first STOW reached the proxy; restart it"),
    Fault("orthanc_stop_before_request", "orthanc", BEFORE_FORWARD,
          "SIGTERM Orthanc while the proxy holds a STOW, then forward it; restart it"),
    Fault("orthanc_stop_mid_request", "orthanc", MID_BODY,
          "SIGTERM Orthanc with half a STOW body received, then send the rest; restart it"),
)
ROUNDS = max(1, int(os.environ.get("RELIABILITY_ROUNDS") or len(FAULTS)))


# -- the rig and one round ----------------------------------------------------------
@dataclass
class RoundResult:
    fault: str
    mode: str
    uids: list[str]
    k: int
    seconds: float
    app_starts: int
    kill_landed: bool
    left_at_fault: int  # items pending or sending in the outbox right after the fault
    exchanges: list[Exchange] = field(default_factory=list)


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    if not orthanc.available():
        pytest.fail("Orthanc with the DICOMweb plugin is not installed (apt: orthanc orthanc-dicomweb)")
    if not COMPANION.exists():
        pytest.fail(f"the companion command is not installed next to {sys.executable}")
    rig = Rig(tmp_path)
    try:
        yield rig
    finally:
        rig.close()


# -- one round ------------------------------------------------------------------------
def _submit_review(rig: Rig, tag: str, n: int) -> list[str]:
    img = dicom_data.image(tag, prefix=f"rel{SEED}")
    srs = [dicom_data.sr(f"{tag}-{i}", img, prefix=f"rel{SEED}") for i in range(n)]
    outbox = rig.outbox()
    try:
        outbox.submit([OutgoingObject(ds, "AI SR") for ds in srs])
    finally:
        outbox.close()
    return [str(ds.SOPInstanceUID) for ds in srs]


def _left_in_outbox(rig: Rig) -> int:
    outbox = rig.outbox()
    try:
        return len(outbox.pending())
    finally:
        outbox.close()


def _item_reason(rig: Rig, sop_uid: str) -> str:
    outbox = rig.outbox()
    try:
        (item,) = [i for i in outbox.items() if i.sop_instance_uid == sop_uid]
        return f"{item.state}: {item.reason}"
    finally:
        outbox.close()


def _second_app_round(rig: Rig, tag: str, k: int, rng: random.Random) -> int:
    """A flush started while the app's background sender has a STOW in flight must wait
    for it, not take the in-flight item for a crashed one and store it again."""
    pause = rig.proxy.pause(BEFORE_FORWARD, path_contains="/studies", nth=k)
    first = rig.start_app("sender", tag)  # the running app's background sender
    held = pause.wait(WAIT_S)
    second = rig.start_app("flush", f"{tag}-second")
    log = rig.last_log
    # Until the flush says it waits — or, were it not to wait, sends or ends.
    deadline = time.monotonic() + WAIT_S
    while b"sending this outbox; waiting" not in log.read_bytes():
        if second.poll() is not None or any(
            is_stow(ex) for ex in rig.proxy.exchanges if ex.seq > held.seq
        ):
            break
        assert time.monotonic() < deadline, f"{tag}: the second app did nothing"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.5))
    left = _left_in_outbox(rig)
    pause.resume()
    assert rig.finish(first) == 0, f"{tag}: the first app did not finish"
    assert rig.finish(second) == 0, f"{tag}: the second app (flush) failed"
    return left


def _app_round(rig: Rig, tag: str, fault: Fault, k: int, rng: random.Random,
               first_exchange: int) -> tuple[int, bool]:
    """SIGKILL the app at the fault's point; (items left in the outbox, kill landed)."""
    if fault.point is not None:
        pause = rig.proxy.pause(fault.point, path_contains="/studies", nth=k)
        app = rig.start_app("flush", tag)
        pause.wait(WAIT_S)
        landed = rig.kill(app)
        pause.drop()
    else:
        app = rig.start_app("flush", tag)
        seen = rig.proxy.wait_for(lambda ex: len(ex) > first_exchange, WAIT_S)
        assert seen, f"{tag}: the app sent nothing"
        time.sleep(rng.uniform(0.0, 0.03))
        landed = rig.kill(app)
    left = _left_in_outbox(rig)
    if fault.name == "app_kill_again_in_lookup":
        point = rng.choice((BEFORE_FORWARD, AFTER_RESPONSE))
        lookup = rig.proxy.pause(point, method="GET", path_contains="/instances")
        app = rig.start_app("flush", f"{tag}-lookup")
        lookup.wait(WAIT_S)
        rig.kill(app)
        lookup.drop()
    return left, landed


def _orthanc_round(rig: Rig, tag: str, fault: Fault, k: int, mode: str, rng: random.Random,
                   first_exchange: int) -> int:
    """Kill or stop Orthanc at the fault's point and restart it; the items left."""
    pause = None
    if fault.point is not None:
        pause = rig.proxy.pause(fault.point, path_contains="/studies", nth=k)
    app = rig.start_app(mode, tag)
    if pause is not None:
        pause.wait(WAIT_S)
    else:
        seen = rig.proxy.wait_for(
            lambda ex: any(is_stow(e) for e in ex[first_exchange:]), WAIT_S
        )
        assert seen, f"{tag}: the app sent nothing"
        time.sleep(rng.uniform(0.0, 0.015))
    rig.take_orthanc_down(fault.name.startswith("orthanc_stop"), pause)
    left = _left_in_outbox(rig)
    if mode == "flush":
        rc = rig.finish(app, 60)  # it gives up at the first "unreachable", or is done
        assert rc in (0, 1), f"{tag}: flush exited {rc}"
        rig.bring_orthanc_back()
    else:
        time.sleep(rng.uniform(0.0, 1.0))  # the sender retries against a closed port
        rig.bring_orthanc_back()
        rc = rig.finish(app, 120)
        assert rc == 0, f"{tag}: the background sender did not finish after the restart"
    return left


def _run_round(rig: Rig, number: int, fault: Fault, rng: random.Random) -> RoundResult:
    tag = f"r{number:03d}-{fault.name}"
    n = rng.choice((1, 2))
    k = rng.randint(1, n)  # the STOW of the round that meets the fault
    mode = "flush" if fault.target == "app" else rng.choice(("flush", "sender"))
    if fault.target == "orthanc" and number < len(FAULTS):  # the short run covers both
        mode = ("flush", "sender")[number % 2]
    uids = _submit_review(rig, tag, n)
    started = time.monotonic()
    first_exchange = len(rig.proxy.exchanges)
    starts_before = rig.app_runs
    landed = True
    if fault.name == "second_app_while_sending":
        mode = "sender"
        left = _second_app_round(rig, tag, k, rng)
    elif fault.target == "app":
        left, landed = _app_round(rig, tag, fault, k, rng, first_exchange)
    else:
        left = _orthanc_round(rig, tag, fault, k, mode, rng, first_exchange)
    rig.drain(tag)  # "restart the app" until nothing is left to send
    rig.proxy.disarm()

    result = RoundResult(fault.name, mode, uids, k, time.monotonic() - started,
                         rig.app_runs - starts_before, landed, left,
                         list(rig.proxy.exchanges[first_exchange:]))
    # After every round: each object of the review is in the archive once, answered once.
    answered = Counter(u for ex in result.exchanges if is_stow(ex) for u in answered_uids(ex))
    for uid in uids:
        assert rig.copies(uid) == 1, f"{tag}: {uid} is in the archive {rig.copies(uid)} times"
        assert answered[uid] <= 1, f"{tag}: {uid} was stored {answered[uid]} times"
    if fault.point == AFTER_RESPONSE and landed:
        # The instance was stored before the crash: the restarted app found it by UID.
        reason = _item_reason(rig, uids[k - 1])
        assert reason.startswith("sent: found in the archive by UID"), f"{tag}: {reason}"
    return result


# -- the test -------------------------------------------------------------------------
@pytest.mark.timeout(120 + 40 * ROUNDS)
def test_every_review_reaches_the_archive_exactly_once_through_crashes(rig: Rig) -> None:
    rng = random.Random(SEED)
    began = time.monotonic()
    results: list[RoundResult] = []
    shas: dict[str, str] = {}
    for number in range(ROUNDS):
        # Every fault type once first (all of the short CI run), then random ones.
        fault = FAULTS[number] if number < len(FAULTS) else rng.choice(FAULTS)
        results.append(_run_round(rig, number, fault, rng))
        outbox = rig.outbox()
        try:
            shas.update({i.sop_instance_uid: i.sha256 for i in outbox.items()})
        finally:
            outbox.close()
    elapsed = time.monotonic() - began

    submitted = [uid for r in results for uid in r.uids]
    assert len(set(submitted)) == len(submitted)
    # The archive: every UID once, with the committed bytes, and nothing else.
    for uid in submitted:
        assert rig.copies(uid) == 1, uid
        assert rig.stored_sha256(uid) == shas[uid], f"{uid}: stored bytes differ"
    assert rig.instance_count() == len(submitted)
    # The wire: no STOW of any UID was answered twice.
    exchanges = [ex for r in results for ex in r.exchanges]
    answered = Counter(u for ex in exchanges if is_stow(ex) for u in answered_uids(ex))
    duplicates = sum(max(0, answered[uid] - 1) for uid in submitted)
    assert duplicates == 0, {uid: n for uid, n in answered.items() if n > 1}
    # The outbox, as the CLI reports it.
    status = json.loads(subprocess.run(
        [str(COMPANION), "outbox", "--outbox-file", str(rig.outbox_path), "status", "--json"],
        cwd=REPO, env=dict(os.environ),
        capture_output=True, check=True, timeout=60,
    ).stdout)
    assert status["counts"]["pending"] == 0 and status["counts"]["sending"] == 0, status
    assert status["counts"]["parked"] == 0 and status["pending"] == 0, status
    assert status["counts"]["sent"] == len(submitted), status
    assert {r.fault for r in results} == {f.name for f in FAULTS} or ROUNDS < len(FAULTS)

    _print_summary(results, answered, duplicates, elapsed, rig)


def _print_summary(results: list[RoundResult], answered: Counter[str], duplicates: int,
                   elapsed: float, rig: Rig) -> None:
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in results:
        row = rows[r.fault]
        row["rounds"] += 1
        row["objects"] += len(r.uids)
        row["app starts"] += r.app_starts
        row["kills landed"] += int(r.kill_landed)
        row["left at fault"] += r.left_at_fault
        stows = [ex for ex in r.exchanges if is_stow(ex)]
        row["STOW requests"] += len(stows)
        row["STOW reached server"] += sum(ex.forwarded == "full" for ex in stows)
        row["STOW answered"] += sum(len(answered_uids(ex)) for ex in stows)
        row["lookups"] += sum(is_lookup(ex) for ex in r.exchanges)
        row["stored w/o answer"] += sum(answered[u] == 0 for u in r.uids)
        row["seconds"] += r.seconds
        if r.mode == "sender":
            row["sender mode"] += 1
    columns = ["rounds", "objects", "left at fault", "app starts", "STOW requests",
               "STOW reached server", "STOW answered", "lookups", "stored w/o answer",
               "sender mode", "seconds"]
    print()
    print(f"fault injection: {len(results)} rounds, seed {SEED}, {elapsed:.1f} s, "
          f"{rig.app_runs} app starts, {rig.orthanc_restarts} Orthanc restarts, "
          f"{duplicates} duplicates, objects {sum(len(r.uids) for r in results)}")
    slowest = max(results, key=lambda r: r.seconds)
    print(f"slowest round: {slowest.fault} ({slowest.mode}), {slowest.seconds:.1f} s")
    print("| fault | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for f in FAULTS:
        if f.name in rows:
            row = rows[f.name]
            cells = [f"{row[c]:.0f}" if c != "seconds" else f"{row[c] / row['rounds']:.1f}"
                     for c in columns]
            print(f"| {f.name} | " + " | ".join(cells) + " |")
