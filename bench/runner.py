"""`python -m bench latency`: DB-commit -> SSE-receipt latency under load. Its phases, in order:

1. Recreate the database metricstream_bench_latency, migrate it, seed tenants and operators.
2. Start the server (`python -m metricstream.cli serve`), the committer processes
   (they set Django up while the rest starts) and the SSE client process(es).
3. Wait until the server's status reports every stream open.
4. Commit: warm-up, then the measurement window, with progress lines.
5. Drain the last frames, close the streams, check the server's count returns to 0.
6. Stop everything, match commits to receipts, write latency.json, print the table.
"""

import argparse
import math
import multiprocessing.connection
import os
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import committer, fixtures, procstat, replayer, report, sseclient, stats, streams
from bench.children import Child, pump_until, stop_all
from bench.console import say

PROGRESS_SECONDS = 2.0
CHILD_READY_TIMEOUT_SECONDS = 120.0
# Committers finish the batch in hand after the window; this bounds the wait.
COMMITTERS_FINISH_TIMEOUT_SECONDS = 60.0
# The drain ends early once no frame arrived for this long.
QUIET_SECONDS = 1.0
SOURCES = ("commit", "replay")
# Replay commits this many seconds' worth of batches more than the run publishes.
REPLAY_SPARE_SECONDS = 2.0
# Committing starts this long after "go", so every committer starts together.
START_DELAY_SECONDS = 0.5


@dataclass(frozen=True)
class Parameters:
    duration: float
    warmup: float
    streams: int
    tenants: int
    rate: float
    metrics_per_batch: int
    committers: int
    source: str  # "commit": committers call store_submission; "replay": see bench/replayer.py
    clients: int
    drain: float


NAME = "latency"
SUMMARY = "DB commit -> SSE receipt latency under steady load (bench/results/latency.json)"
DESCRIPTION = (
    "Measure DB-commit -> SSE-receipt latency of Metricstream: N concurrent SSE "
    "streams over T tenants against a real `metricstream serve`, while committer "
    "processes call store_submission at a target rate. A plain Redis Pub/Sub "
    "subscriber in the same run is the baseline. Uses (drops and recreates, and "
    "leaves for inspection) the database metricstream_bench_latency on the DATABASE_URL "
    "server; writes bench/results/latency.json."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--duration", type=float, default=20.0, help="measured seconds (default: %(default)s)")
    add(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of committing before the measurement starts (default: %(default)s)",
    )
    add("--streams", type=int, default=1000, help="concurrent SSE streams (default: %(default)s)")
    add(
        "--tenants",
        type=int,
        default=100,
        help="tenants the streams and batches are spread over (default: %(default)s)",
    )
    add(
        "--rate",
        type=float,
        default=2000.0,
        help="target batches committed per second, all committers together (default: %(default)s)",
    )
    add(
        "--metrics-per-batch",
        type=int,
        default=5,
        help="metrics in each batch (default: %(default)s)",
    )
    add("--committers", type=int, default=3, help="committer processes (default: %(default)s)")
    add(
        "--source",
        choices=SOURCES,
        default="commit",
        help="commit: each batch committed by store_submission, the job's body, at the "
        "target rate; replay: the batches committed beforehand, then published at the "
        "target rate as the job does after each commit, for rates this machine cannot "
        "commit (default: %(default)s)",
    )
    # Two: one process reading 1,000 streams and the Redis baseline adds its own
    # event-loop queueing to both (p99 11 ms against 3 ms with two, at 2,000 batches/s).
    add("--clients", type=int, default=2, help="SSE client processes (default: %(default)s)")
    add(
        "--drain",
        type=float,
        default=5.0,
        help="at most this long to wait for the last frames once committing stops "
        "(default: %(default)s s)",
    )


def parameters(args: argparse.Namespace) -> tuple[Parameters, list[str]]:
    """The parameters, and the problems with them (empty when valid)."""
    checks = [
        (args.duration > 0, "--duration must be positive"),
        (args.warmup >= 0, "--warmup must not be negative"),
        (args.tenants >= 1, "--tenants must be at least 1"),
        (args.streams >= args.tenants, "--streams must be at least --tenants"),
        (args.rate > 0, "--rate must be positive"),
        (args.metrics_per_batch >= 1, "--metrics-per-batch must be at least 1"),
        (1 <= args.committers <= args.tenants, "--committers must be 1..--tenants"),
        (1 <= args.clients <= args.streams, "--clients must be 1..--streams"),
        (args.drain >= 0, "--drain must not be negative"),
    ]
    problems = [message for ok, message in checks if not ok]
    p = Parameters(
        duration=args.duration,
        warmup=args.warmup,
        streams=args.streams,
        tenants=args.tenants,
        rate=args.rate,
        metrics_per_batch=args.metrics_per_batch,
        committers=args.committers,
        source=args.source,
        clients=args.clients,
        drain=args.drain,
    )
    return p, problems


def client_configs(
    p: Parameters, seeded: fixtures.Seeded, port: int
) -> list[sseclient.ClientConfig]:
    from metricstream.tenants.models import channel_for

    return streams.client_configs(
        seeded,
        streams=p.streams,
        clients=p.clients,
        port=port,
        max_seconds=p.warmup + p.duration + p.drain + 600,
        # The Redis baseline lives in client 0.
        channels=[channel_for(uuid.UUID(t)) for t in seeded.tenant_ids],
        redis_url=os.environ["REDIS_URL"],
    )


@dataclass
class Observed:
    """What the run saw besides the receipts: server status, CPU, warnings."""

    window: stats.Window | None = None
    status_at_open: dict = field(default_factory=dict)
    status_at_end: dict = field(default_factory=dict)
    status_after_close: dict = field(default_factory=dict)
    stream_failures: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    server_exit_code: int | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        say(f"WARNING: {message}")


def run(p: Parameters) -> int:
    with fixtures.environment(NAME) as env:
        document = latency_run(p, env)
    path = report.write(document)
    print(report.table(document))
    say(f"results written to {path}")
    return 0


def latency_run(p: Parameters, env: dict[str, str]) -> dict[str, Any]:
    """One full run (database, server, committers, clients) and its results document."""
    say(
        f"{p.streams} streams over {p.tenants} tenants, target {p.rate:g} batches/s "
        f"({p.committers} committers) x {p.metrics_per_batch} metrics, "
        f"{p.warmup:g}s warm-up + {p.duration:g}s measured"
    )
    seeded = fixtures.prepare_database(p.tenants, env)
    logs = Path(tempfile.mkdtemp(prefix="metricstream-bench-"))
    seen = Observed()
    committers: list[Child] = []
    clients: list[Child] = []
    server: fixtures.Server | None = None
    try:
        server = fixtures.Server(env, logs / "server.log")
        say(f"server: starting on {server.base} (log: {logs / 'server.log'})")
        # Started now, so they set Django up while the server starts and streams open.
        committers += start_committers(p, seeded)
        server.wait_ready()
        staff = fixtures.form_login(server.base, seeded.staff_email, seeded.staff_password)
        say(f"server: up; staff logged in; streams open: {server_streams(server, staff)}")

        clients += streams.start_clients(client_configs(p, seeded, server.port))
        streams_of = open_streams(p, clients, server, staff, seen)
        pump_until(
            committers,
            lambda: all(c.ready is not None for c in committers),
            CHILD_READY_TIMEOUT_SECONDS,
            "the committers to set Django up",
        )
        if p.source == "replay":
            commit_beforehand(p, seeded, committers)
        commit_and_measure(p, server, committers, clients, seen)

        say("committing stopped; draining the last frames")
        drain(clients, committers, streams_of, p.drain)
        seen.status_at_end = fixtures.stream_status(server.base, staff)
        close_streams(clients, server, staff, seen)
    finally:
        stop_all(committers + clients)
        if server is not None:
            seen.server_exit_code = server.stop()
            say(f"server: stopped (exit code {seen.server_exit_code})")

    say("matching commits to receipts")
    document = summarise(p, [c.result for c in committers], [c.result for c in clients], seen)
    document["parameters"]["server_log"] = str(logs / "server.log")
    return document


def start_committers(p: Parameters, seeded: fixtures.Seeded) -> list[Child]:
    entry = replayer.run if p.source == "replay" else committer.run
    return [
        Child(
            f"committer-{k}",
            entry,
            committer.CommitterConfig(
                index=k,
                count=p.committers,
                tenants=seeded.tenant_ids,
                rate=p.rate / p.committers,
                metrics_per_batch=p.metrics_per_batch,
            ),
        )
        for k in range(p.committers)
    ]


def commit_beforehand(p: Parameters, seeded: fixtures.Seeded, replayers: list[Child]) -> None:
    """Every batch the replayers will publish, committed now (the streams are open)."""
    per_tenant = math.ceil(p.rate * (p.warmup + p.duration + REPLAY_SPARE_SECONDS) / p.tenants)
    say(f"replay: committing {per_tenant * p.tenants:,} batches beforehand")
    for tenant in seeded.tenant_ids:
        fixtures.commit_directly(tenant, per_tenant, p.metrics_per_batch)
    for r in replayers:
        r.send(("load",))
    pump_until(
        replayers,
        lambda: all(r.progress and r.progress[0] > 0 for r in replayers),
        CHILD_READY_TIMEOUT_SECONDS,
        "the replayers to load the batches",
    )


def open_streams(
    p: Parameters, clients: list[Child], server: fixtures.Server, staff: str, seen: Observed
) -> Counter[int]:
    """Wait for the clients' streams, then for the server to count them; streams per tenant."""
    opened = streams.open_streams(clients, server, staff, p.streams)
    seen.status_at_open = opened.status
    seen.stream_failures = opened.failures
    for warning in opened.warnings:
        seen.warn(warning)
    return opened.streams_of


def commit_and_measure(
    p: Parameters,
    server: fixtures.Server,
    committers: list[Child],
    clients: list[Child],
    seen: Observed,
) -> None:
    start_at = time.time() + START_DELAY_SECONDS
    seen.window = stats.Window(start_at + p.warmup, start_at + p.warmup + p.duration)
    for c in committers:
        c.send(("go", start_at, seen.window.end))
    say(f"committing: {p.warmup:g}s warm-up, then {p.duration:g}s measured")
    groups = {
        "server": [server.popen.pid],
        "sse_clients": [c.process.pid for c in clients],
        "committers": [c.process.pid for c in committers],
    }
    seen.cpu = measure(committers, clients, start_at, seen.window, groups)


def close_streams(
    clients: list[Child], server: fixtures.Server, staff: str, seen: Observed
) -> None:
    """Stop the clients (they close their sockets); the server's count must return to 0."""
    _results, seen.status_after_close, closed = streams.close_streams(clients, server, staff)
    if not closed:
        left = seen.status_after_close["streams"]
        seen.warn(f"{left} streams still open on the server after the clients closed theirs")


def summarise(
    p: Parameters,
    committer_results: list[committer.CommitterResult],
    client_results: list[sseclient.ClientResult],
    seen: Observed,
) -> dict[str, Any]:
    assert seen.window is not None
    results = stats.analyse(committer_results, client_results, seen.window)
    # The server's own counters at the end of the run (before the clients closed),
    # as reported by /api/v1/stream/status, minus the channel list.
    counters = {k: v for k, v in seen.status_at_end.items() if k != "channels"}
    results["server"] = {
        "streams_open_at_start": seen.status_at_open.get("streams"),
        "streams_closed_early": sum(r.closed_early for r in client_results),
        "streams_after_clients_closed": seen.status_after_close.get("streams"),
        "exit_code": seen.server_exit_code,
        "status_at_end": counters,
    }
    disconnects = sum(r.redis_disconnects for r in client_results)
    results["checks"] = {
        "bad_frames": sum(r.bad_frames for r in client_results),
        "out_of_order_frames": sum(r.out_of_order for r in client_results),
        "heartbeats_received": sum(r.heartbeats for r in client_results),
        "redis_bad_messages": sum(r.redis_bad for r in client_results),
        "redis_baseline_disconnects": disconnects,
        "commit_payload_mismatches": sum(r.mismatches for r in committer_results),
        "not_stored": sum(r.not_stored for r in committer_results),
        "committers_behind_schedule_at_end_s": [
            round(r.behind_seconds, 3) for r in committer_results
        ],
        "stream_open_failures": seen.stream_failures,
    }
    results["cpu_percent_of_one_core"] = seen.cpu
    if disconnects:
        seen.warnings.append(
            f"the Redis baseline connection was killed {disconnects} time(s) by someone else "
            "(e.g. a test doing CLIENT KILL TYPE pubsub): its figures may be distorted"
        )
    if counters.get("reconnects"):
        seen.warnings.append(
            f"the server's hub reconnected to Redis {counters['reconnects']} time(s)"
        )
    achieved = results["batches"]["commit_rate_per_second"]
    if achieved < 0.95 * p.rate:
        seen.warnings.append(
            f"the target rate was not reached: {achieved:g}/s of {p.rate:g}/s "
            "(see cpu_percent_of_one_core)"
        )
    results["warnings"] = seen.warnings
    parameters = {
        **asdict(p),
        "streams_per_tenant": p.streams / p.tenants,
        "rate_per_committer": p.rate / p.committers,
        "database": urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/"),
        "client_event_loop": client_results[0].loop,
    }
    return report.envelope(parameters, results)


def server_streams(server: fixtures.Server, staff: str) -> int:
    return fixtures.stream_status(server.base, staff)["streams"]


def measure(
    committers: list[Child],
    clients: list[Child],
    started: float,
    window: stats.Window,
    groups: dict[str, list[int]],
) -> dict[str, float]:
    """Follow the run until every committer has reported; CPU usage over the window."""
    before = after = None
    last_commits, last_time = 0, started
    next_line = started + PROGRESS_SECONDS
    deadline = window.end + COMMITTERS_FINISH_TIMEOUT_SECONDS
    measuring = False
    children = committers + clients
    while not all(c.result is not None for c in committers):
        now = time.time()
        if now > deadline:
            raise SystemExit("bench: the committers did not finish in time")
        if before is None and now >= window.start:
            before = procstat.snapshot(now, groups)
        if after is None and now >= window.end:
            after = procstat.snapshot(now, groups)
        if not measuring and now >= window.start:
            measuring = True
            say("measuring")
        if now >= next_line and now < window.end:
            commits = sum(c.progress[0] for c in committers if c.progress)
            frames = sum(c.progress[0] for c in clients if c.progress)
            redis = sum(c.progress[1] for c in clients if c.progress)
            early = sum(c.progress[2] for c in clients if c.progress)
            rate = (commits - last_commits) / (now - last_time)
            phase = "measuring" if now >= window.start else "warm-up"
            say(
                f"  {phase}: committed {commits:,} ({rate:,.0f}/s), SSE frames {frames:,}, "
                f"Redis messages {redis:,}, streams closed early {early}"
            )
            last_commits, last_time, next_line = commits, now, now + PROGRESS_SECONDS
        # Only children still running: a finished one's pipe is at EOF and always "ready".
        multiprocessing.connection.wait([c.conn for c in children if c.result is None], 0.05)
        for child in children:
            child.pump()
    if after is None:  # the committers reported within the last poll interval
        after = procstat.snapshot(time.time(), groups)
    if before is None:
        return {}
    return procstat.usage(before, after)


def drain(
    clients: list[Child], committers: list[Child], streams_of: Counter[int], limit: float
) -> None:
    """Wait for every frame of every commit, or until frames stop coming, at most `limit` s."""
    commits = [t for c in committers for t in c.result.tenants]
    want_frames = sum(streams_of[t] for t in commits)
    want_redis = len(commits)
    deadline = time.monotonic() + limit
    last, last_change = None, time.monotonic()
    while time.monotonic() < deadline:
        multiprocessing.connection.wait([c.conn for c in clients], 0.1)
        for c in clients:
            c.pump()
        frames = sum(c.progress[0] for c in clients if c.progress)
        redis = sum(c.progress[1] for c in clients if c.progress)
        if frames >= want_frames and redis >= want_redis:
            return
        if (frames, redis) != last:
            last, last_change = (frames, redis), time.monotonic()
        elif time.monotonic() - last_change > QUIET_SECONDS:
            say(f"  drain: no new frames for {QUIET_SECONDS:g}s ({frames:,}/{want_frames:,})")
            return
    say("  drain: time limit reached")
