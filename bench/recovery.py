"""`python -m bench recovery`: how a Redis outage heals. Its phases, in order:

0. Start a redis-server of the benchmark's own on a spare port (the machine's
   Redis is never touched), recreate and seed metricstream_bench_recovery, start the
   server with REDIS_URL pointing at the own Redis, open the streams.
A. Steady: committers call store_submission at a moderate rate; every stream
   must receive every batch of its tenant.
B. Outage: stop the own Redis; commit K batches spread over the tenants (their
   PUBLISH fails; they are in PostgreSQL). The server must report the broker
   disconnected and every stream behind, with the streams still open.
C. Healing: start Redis again on the same port at T0 and measure, from the
   clients' receipts, when every stream had every batch (T_all - T0), and, by
   polling Redis's CLIENT LIST and the server's status, when the hub reconnected.

Every (tenant, seq) each stream receives is recorded, so lost and duplicated
deliveries are counted exactly. Writes bench/results/recovery.json.
"""

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import bulkcommit, committer, fixtures, harness, ownredis, procstat, streams, tables
from bench.children import Child, pump_until, results_of
from bench.console import say
from bench.recovery_summary import since, summarise
from bench.sampler import Sampler

NAME = "recovery"
SUMMARY = "Redis outage: time for every stream to catch up once Redis is back (recovery.json)"
CHILD_READY_TIMEOUT_SECONDS = 120.0
HUB_NOTICE_TIMEOUT_SECONDS = 15.0
# Catch-ups triggered by the loss itself must be over before the outage's commits start.
SETTLE_QUIET_SECONDS = 0.5
SETTLE_TIMEOUT_SECONDS = 30.0
STATUS_POLL_SECONDS = 0.1
REDIS_POLL_SECONDS = 0.02
START_DELAY_SECONDS = 0.5
RESTORED_LOG_LINE = "Redis Pub/Sub connection restored"
LOST_LOG_LINE = "Redis Pub/Sub connection lost"


@dataclass(frozen=True)
class Parameters:
    streams: int
    tenants: int
    clients: int
    committers: int
    rate: float
    steady_seconds: float
    outage_batches: int
    metrics_per_batch: int
    timeout: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_world_arguments(parser, tenants=100)
    add = parser.add_argument
    add("--committers", type=int, default=2, help="committer processes (default: %(default)s)")
    add(
        "--rate",
        type=float,
        default=200.0,
        help="phase A: batches committed per second (default: %(default)s)",
    )
    add(
        "--steady-seconds",
        type=float,
        default=5.0,
        help="phase A: seconds of steady committing (default: %(default)s)",
    )
    add(
        "--outage-batches",
        type=int,
        default=2000,
        help="phase B: batches committed while Redis is down, K (default: %(default)s)",
    )
    add(
        "--timeout",
        type=float,
        default=120.0,
        help="longest wait for the streams to catch up, per phase (default: %(default)s s)",
    )


def parameters(args: argparse.Namespace) -> tuple[Parameters, list[str]]:
    checks = [
        *harness.world_checks(args),
        (1 <= args.committers <= args.tenants, "--committers must be 1..--tenants"),
        (args.rate > 0, "--rate must be positive"),
        (args.steady_seconds > 0, "--steady-seconds must be positive"),
        (args.outage_batches >= args.tenants, "--outage-batches must be at least --tenants"),
        (args.timeout > 0, "--timeout must be positive"),
    ]
    p = Parameters(
        streams=args.streams,
        tenants=args.tenants,
        clients=args.clients,
        committers=args.committers,
        rate=args.rate,
        steady_seconds=args.steady_seconds,
        outage_batches=args.outage_batches,
        metrics_per_batch=args.metrics_per_batch,
        timeout=args.timeout,
    )
    return p, [message for ok, message in checks if not ok]


class Run(harness.OwnRedisRun):
    """The processes of one run and what was observed, phase by phase."""

    def __init__(self, p: Parameters, workdir: Path, own: ownredis.OwnRedis) -> None:
        super().__init__(workdir, own)
        self.p = p
        self.steady: list[Child] = []
        self.bulk: list[Child] = []

    def feeders(self) -> list[Child]:
        return self.steady + self.bulk


def run(p: Parameters) -> int:
    return harness.execute(
        NAME, lambda workdir, own: Run(p, workdir, own), phases, summarise, table
    )


def phases(r: Run, env: dict[str, str]) -> None:
    start(r, env)
    steady_phase(r)
    outage_phase(r)
    healing_phase(r)


def start(r: Run, env: dict[str, str]) -> None:
    p = r.p
    say(
        f"{p.streams} streams over {p.tenants} tenants; steady {p.rate:g} batches/s for "
        f"{p.steady_seconds:g}s, then {p.outage_batches} batches while Redis is down"
    )
    seeded = r.start_server(env, p.tenants)
    rate = p.rate / p.committers
    r.steady = [
        Child(
            f"committer-{k}",
            committer.run,
            committer.CommitterConfig(
                k, p.committers, seeded.tenant_ids, rate, p.metrics_per_batch
            ),
        )
        for k in range(p.committers)
    ]
    r.bulk = [
        Child(
            f"outage-committer-{k}",
            bulkcommit.run,
            bulkcommit.BulkConfig(k, p.metrics_per_batch, True),
        )
        for k in range(p.committers)
    ]
    r.open_streams(p.streams, p.clients, max_seconds=p.steady_seconds + 3 * p.timeout + 900)
    pump_until(
        r.feeders(),
        lambda: all(c.ready is not None for c in r.feeders()),
        CHILD_READY_TIMEOUT_SECONDS,
        "the committers to set Django up",
    )


def steady_phase(r: Run) -> None:
    p = r.p
    assert r.seeded is not None and r.opened is not None
    say(f"phase A: committing {p.rate:g} batches/s for {p.steady_seconds:g}s")
    start_at = time.time() + START_DELAY_SECONDS
    stop_at = start_at + p.steady_seconds
    for c in r.steady:
        c.send(("go", start_at, stop_at))
    next_line = start_at + 1.0
    deadline = stop_at + 60.0

    def done() -> bool:
        nonlocal next_line
        for c in r.clients:
            c.pump()
        if time.time() >= next_line:
            committed = sum(c.progress[0] for c in r.steady if c.progress)
            say(f"  committed {committed:,}, frames {streams.frames_received(r.clients):,}")
            next_line += 1.0
        return all(c.result is not None for c in r.steady)

    pump_until(r.steady, done, deadline - time.time(), "the phase A committers")
    committed_at = [t for c in r.steady for t in c.result.commit_times]
    targets = fixtures.last_seqs(r.seeded.tenant_ids)
    generation = streams.set_targets(r.clients, targets)
    complete = streams.wait_complete(r.clients, generation, r.opened.count, p.timeout, "phase A")
    window = (max(committed_at) - min(committed_at)) if committed_at else 0.0
    r.found["steady"] = {
        "targets": targets,
        "committed": sum(targets.values()),
        "commit_rate_per_second": round(len(committed_at) / window, 1) if window else None,
        "last_commit": max(committed_at, default=0.0),
        "every_stream_complete": complete,
        "complete_seen_at": time.time(),
    }
    say(f"phase A: {sum(targets.values()):,} batches committed; every stream complete: {complete}")
    if not complete:
        r.warnings.warn("phase A: not every stream received every batch in time")


def outage_phase(r: Run) -> None:
    p = r.p
    assert r.seeded is not None
    before = r.poll_status()
    say("phase B: stopping the own redis-server")
    asked = time.time()
    stopped = r.own.stop()
    noticed = wait_for_status(
        r, lambda s: s["broker"] == "disconnected", HUB_NOTICE_TIMEOUT_SECONDS
    )
    if noticed is None:
        r.warnings.warn("the server never reported the broker disconnected")
    settled = settle(r)
    say(f"phase B: hub disconnected; committing {p.outage_batches:,} batches with Redis down")
    tenants = r.seeded.tenant_ids
    share = {
        t: p.outage_batches // p.tenants + (i < p.outage_batches % p.tenants)
        for i, t in enumerate(tenants)
    }
    for k, c in enumerate(r.bulk):
        c.request(("commit", {t: share[t] for t in tenants[k :: len(r.bulk)]}))
    timeout = 60.0 + p.outage_batches / 20
    commits: list[bulkcommit.BulkResult] = results_of(r.bulk, timeout, "the outage commits")
    targets = fixtures.last_seqs(tenants)
    during = r.poll_status()
    assert r.server is not None
    logged = [t for t in fixtures.log_times(r.server.log, LOST_LOG_LINE) if t >= asked - 1]
    r.found["outage"] = {
        "stop_asked": asked,
        "redis_stopped_s": since(asked, stopped),
        "server_log_lost_s": since(asked, logged[0] if logged else None),
        # Polled: its requests queue behind the catch-ups the loss itself starts.
        "status_disconnected_by_s": since(asked, noticed),
        "status_before": strip(before),
        "status_after_loss_catch_ups": strip(settled),
        "committed": sum(c.committed for c in commits),
        "not_stored": sum(c.not_stored for c in commits),
        "publish_calls": sum(c.publish_calls for c in commits),
        "publish_failures": sum(c.publish_failures for c in commits),
        "commit_seconds": round(max(c.seconds for c in commits), 3),
        "targets": targets,
        "status_during": strip(during),
    }
    ok = during["broker"] == "disconnected" and during["streams_behind"] == during["streams"]
    r.found["outage"]["status_as_expected"] = ok and during["streams"] == r.opened.count
    say(
        f"phase B: {r.found['outage']['committed']:,} committed, "
        f"{r.found['outage']['publish_failures']:,} PUBLISHes failed; server: broker "
        f"{during['broker']}, streams {during['streams']}, behind {during['streams_behind']}"
    )
    if not r.found["outage"]["status_as_expected"]:
        r.warnings.warn(f"unexpected status while Redis was down: {strip(during)}")


def healing_phase(r: Run) -> None:
    p = r.p
    assert r.opened is not None and r.server is not None
    targets = r.found["outage"]["targets"]
    generation = streams.set_targets(r.clients, targets)
    baseline = r.poll_status()
    redis_probe = Sampler(
        "redis", lambda: (len(r.own.hub_clients()), r.own.channels()), REDIS_POLL_SECONDS
    )
    status_probe = Sampler("status", r.poll_status, STATUS_POLL_SECONDS)
    with redis_probe, status_probe:
        say("phase C: starting the own redis-server again (T0)")
        t0 = r.own.start()
        # The own redis-server is in procstat's "redis" (every redis-server process).
        groups = {
            "server": [r.server.popen.pid],
            "sse_clients": [c.process.pid for c in r.clients],
        }
        cpu_before = procstat.snapshot(time.time(), groups)
        ready = r.own.wait_ready()
        complete = streams.wait_complete(
            r.clients, generation, r.opened.count, p.timeout, "phase C", every=1.0
        )
        cpu_after = procstat.snapshot(time.time(), groups)
        # The status poll may trail the clients (its requests queue behind the catch-up reads).
        deadline = time.time() + 10.0
        while time.time() < deadline and not status_probe.first(
            lambda s: s["broker"] == "connected", t0
        ):
            time.sleep(0.05)
    after = r.patient_status()
    hub_seen = redis_probe.first(lambda v: v[0] > 0, t0)
    channels_seen = redis_probe.first(lambda v: v[1] >= r.p.tenants, t0)
    status_seen = status_probe.first(lambda s: s["broker"] == "connected", t0)
    status_last_down = status_probe.last_before(
        status_seen.answered if status_seen else math.inf, lambda s: s["broker"] == "disconnected"
    )
    logged = [t for t in fixtures.log_times(r.server.log, RESTORED_LOG_LINE) if t >= t0 - 1]
    r.found["healing"] = {
        "t0": t0,
        "redis_answering_s": round(ready - t0, 3),
        "hub_connection_in_client_list_s": since(t0, hub_seen.answered if hub_seen else None),
        "all_channels_subscribed_s": since(t0, channels_seen.answered if channels_seen else None),
        "status_connected_s": since(t0, status_seen.answered if status_seen else None),
        "status_last_disconnected_asked_s": since(
            t0, status_last_down.asked if status_last_down else None
        ),
        "server_log_restored_s": since(t0, logged[0] if logged else None),
        "every_stream_complete": complete,
        "status_before": strip(baseline),
        "status_after": strip(after),
        "catch_up_batches_delta": after["catch_up_batches"] - baseline["catch_up_batches"],
        "catch_ups_delta": after["catch_ups"] - baseline["catch_ups"],
        "reconnects_delta": after["reconnects"] - baseline["reconnects"],
        "cpu_percent_of_one_core": procstat.usage(cpu_before, cpu_after),
        "poll_errors": {"redis": redis_probe.errors, "status": status_probe.errors},
    }
    if not complete:
        r.warnings.warn("phase C: not every stream caught up within --timeout")


def wait_for_status(r: Run, predicate: Any, timeout: float) -> float | None:
    """Poll the status until `predicate` holds; the time it was seen, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate(r.poll_status()):
            return time.time()
        time.sleep(0.02)
    return None


def settle(r: Run) -> dict:
    """Wait until the catch-ups the loss itself triggered are over (catch_ups stops moving)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    status = r.poll_status()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = r.poll_status()
        if now["catch_ups"] != status["catch_ups"]:
            quiet_since = time.monotonic()
        status = now
        if time.monotonic() - quiet_since >= SETTLE_QUIET_SECONDS:
            break
    return status


def strip(status: dict) -> dict:
    return {k: v for k, v in status.items() if k != "channels"}


def table(document: dict[str, Any]) -> str:
    return tables.recovery_table(document)
