"""`python -m bench ingest`: ingest throughput, HTTP POST -> job -> commit -> SSE receipt.

1. Start a redis-server of its own, recreate and seed metricstream_bench_ingest, issue
   an ingest token per tenant, start `metricstream serve`, one SSE stream per
   tenant (a logged-in viewer each) and the load-generator process(es).
2. HTTP alone: with no worker running, POST batches of 100 for a few seconds;
   every 202 is a job left in the queue (checked against its length, then dropped).
3. For each variant (the product, `metricstream worker`, rows by COPY; then the
   baseline worker, the same job storing rows one ORM save() at a time) and each
   batch size: POST a fixed number of metrics and wait until every accepted
   batch has arrived on its tenant's stream. Throughput is metrics received
   over the time from the first POST to the last receipt.
4. Close everything, check each batch arrived exactly once, write ingest.json.
"""

import argparse
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench import fixtures, ingest_procs, ownredis, procstat, report, streams
from bench.children import Child, pump_until, results_of, stop_all
from bench.console import Warnings, say
from bench.ingest_baseline_worker import VARIANTS as BASELINES
from bench.ingest_load import LoadConfig, LoadResult
from bench.ingest_load import run as load_run
from bench.ingest_summary import summarise, table

NAME = "ingest"
SUMMARY = "ingest throughput, POST -> commit -> SSE receipt, vs a row-at-a-time baseline"
DESCRIPTION = (
    "Measure Metricstream's ingest throughput end to end: load-generator processes "
    "POST batches to /api/v1/metrics of a real `metricstream serve`, real Celery "
    "workers store them, and one SSE stream per tenant receives them; every accepted "
    "batch must arrive exactly once. Batch sizes 10, 100 and 1000, the HTTP rate alone "
    "(queue filling, no worker), and in the same run a baseline worker storing rows one "
    "ORM save() at a time. Uses its own redis-server and (drops, recreates, leaves) the "
    "database metricstream_bench_ingest; writes bench/results/ingest.json."
)
BENCHMARK = "ingest-throughput"
LOAD_READY_TIMEOUT_SECONDS = 60.0
# Posting a measurement's batches; receipts are waited for separately.
POST_TIMEOUT_SECONDS = 300.0
PROGRESS_SECONDS = 2.0
# Once posting is done, receipts may trickle in for at most this long without progress.
STALL_TIMEOUT_SECONDS = 15.0
# Every started process ends on its own after this, whatever happens here.
CLIENT_MAX_SECONDS = 3600.0
PRODUCT_SETTINGS = "metricstream.settings"


@dataclass(frozen=True)
class Parameters:
    sizes: list[int]
    metrics: int
    baseline: str
    baseline_metrics: int
    max_batches: int
    http_seconds: float
    http_metrics_per_batch: int
    tenants: int
    concurrency: int
    load_processes: int
    connections: int
    django_settings: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--sizes", default="10,100,1000", help="metrics per batch, comma-separated (%(default)s)")
    # Enough that batches of 1,000 take several seconds: shorter runs vary by half.
    add("--metrics", type=int, default=200_000, help="metrics per measurement (%(default)s)")
    add(
        "--max-batches",
        type=int,
        default=1000,
        help="at most this many batches per measurement, so small batches end (%(default)s)",
    )
    add("--baseline", choices=[*BASELINES, "none"], default=BASELINES[0], help="(%(default)s)")
    add(
        "--baseline-metrics",
        type=int,
        default=10_000,
        help="metrics per baseline measurement: it is slower (%(default)s)",
    )
    add("--http-seconds", type=float, default=5.0, help="HTTP-only phase (%(default)s s)")
    add("--http-metrics-per-batch", type=int, default=100, help="(%(default)s)")
    add("--tenants", type=int, default=8, help="tenants; one SSE stream each (%(default)s)")
    add("--concurrency", type=int, default=3, help="Celery worker processes (%(default)s)")
    add("--load-processes", type=int, default=1, help="load generators (%(default)s)")
    add("--connections", type=int, default=8, help="keep-alive connections each (%(default)s)")
    add(
        "--django-settings",
        default=PRODUCT_SETTINGS,
        help="DJANGO_SETTINGS_MODULE of the server and workers, for what-if runs "
        "(written to ingest-what-if.json; default: %(default)s)",
    )


def parameters(args: argparse.Namespace) -> tuple[Parameters, list[str]]:
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        sizes = []
    checks = [
        (bool(sizes) and all(1 <= s <= 5000 for s in sizes), "--sizes must be 1..5000 each"),
        (args.metrics >= max(sizes, default=1), "--metrics must be at least the largest size"),
        (args.baseline_metrics >= max(sizes, default=1), "--baseline-metrics likewise"),
        (args.max_batches >= 1, "--max-batches must be at least 1"),
        (args.http_seconds > 0, "--http-seconds must be positive"),
        (1 <= args.http_metrics_per_batch <= 5000, "--http-metrics-per-batch must be 1..5000"),
        (args.tenants >= 1, "--tenants must be at least 1"),
        (args.concurrency >= 1, "--concurrency must be at least 1"),
        (args.load_processes >= 1, "--load-processes must be at least 1"),
        (args.connections >= 1, "--connections must be at least 1"),
    ]
    p = Parameters(
        sizes=sizes,
        metrics=args.metrics,
        baseline=args.baseline,
        baseline_metrics=args.baseline_metrics,
        max_batches=args.max_batches,
        http_seconds=args.http_seconds,
        http_metrics_per_batch=args.http_metrics_per_batch,
        tenants=args.tenants,
        concurrency=args.concurrency,
        load_processes=args.load_processes,
        connections=args.connections,
        django_settings=args.django_settings,
    )
    return p, [message for ok, message in checks if not ok]


@dataclass
class Measurement:
    """One run of POSTs; its receipts are matched after the streams are closed."""

    variant: str
    metrics_per_batch: int
    accepted: int = 0  # batches
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_sent: float = 0.0
    posted_by: float = 0.0  # the last response
    before: dict[int, int] = field(default_factory=dict)  # seq per tenant index, at the start
    after: dict[int, int] = field(default_factory=dict)  # and once every receipt was in
    complete: bool = False
    job_failures: int = 0  # jobs the worker logged as raised: their batches are lost
    cpu_seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    p: Parameters
    workdir: Path
    own: ownredis.OwnRedis
    warnings: Warnings = field(default_factory=Warnings)
    server: fixtures.Server | None = None
    staff: str = ""
    clients: list[Child] = field(default_factory=list)
    loads: list[Child] = field(default_factory=list)
    http: Measurement | None = None
    measurements: list[Measurement] = field(default_factory=list)
    queued_after_http: int = 0
    client_results: list[Any] = field(default_factory=list)


def run(p: Parameters) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="metricstream-bench-ingest-"))
    own = ownredis.OwnRedis(workdir)
    state = Run(p, workdir, own)
    with fixtures.environment(NAME, own.url) as env:
        # The server's and workers' settings; this process keeps the product's.
        env = {**env, "DJANGO_SETTINGS_MODULE": p.django_settings}
        try:
            _phases(state, env)
        finally:
            stop_all(state.loads + state.clients)
            if state.server is not None:
                say(f"server: stopped (exit code {state.server.stop()})")
            own.stop()
    document = summarise(state, report.envelope(_parameters(state), {}, BENCHMARK))
    # A what-if run never overwrites the product's figures.
    what_if = p.django_settings != PRODUCT_SETTINGS
    path = report.write(document, f"{NAME}-what-if" if what_if else NAME)
    print(table(document))
    say(f"results written to {path}")
    return 0


def _parameters(state: Run) -> dict[str, Any]:
    return {
        **asdict(state.p),
        "database": fixtures.database_name(NAME),
        "logs": str(state.workdir),
        "streams": state.p.tenants,
    }


def _phases(state: Run, env: dict[str, str]) -> None:
    p = state.p
    state.own.start()
    state.own.wait_ready()
    say(f"redis: own redis-server on port {state.own.port}")
    seeded = fixtures.prepare_database(p.tenants, env)
    tokens = ingest_procs.issue_tokens(seeded.tenant_ids)
    state.server = server = fixtures.Server(env, state.workdir / "server.log")
    say(f"server: starting on {server.base} (logs: {state.workdir})")
    state.loads = [
        Child(
            f"ingest-load-{k}",
            load_run,
            LoadConfig(k, "127.0.0.1", server.port, tokens, p.connections),
        )
        for k in range(p.load_processes)
    ]
    server.wait_ready()
    state.staff = fixtures.form_login(server.base, seeded.staff_email, seeded.staff_password)
    configs = streams.client_configs(
        seeded,
        streams=p.tenants,
        clients=1,
        port=server.port,
        max_seconds=CLIENT_MAX_SECONDS,
        progress_seconds=0.1,
    )
    state.clients = streams.start_clients(configs)
    opened = streams.open_streams(state.clients, server, state.staff, p.tenants)
    for warning in opened.warnings:
        state.warnings.warn(warning)
    pump_until(
        state.loads,
        lambda: all(c.ready is not None for c in state.loads),
        LOAD_READY_TIMEOUT_SECONDS,
        "the load generators",
    )
    http_only(state)
    variants = [ingest_procs.COPY] + ([p.baseline] if p.baseline != "none" else [])
    for variant in variants:
        worker = ingest_procs.Worker(
            env, state.workdir / f"worker-{variant}.log", p.concurrency, variant
        )
        say(f"worker: {variant}, {p.concurrency} processes (log: {worker.log})")
        try:
            worker.wait_ready()
            budget = p.metrics if variant == ingest_procs.COPY else p.baseline_metrics
            for size in p.sizes:
                batches = min(p.max_batches, max(1, budget // size))
                measure(state, seeded.tenant_ids, worker, variant, size, batches)
        finally:
            say(f"worker: stopped (exit code {worker.stop()})")
    state.client_results, status, closed = streams.close_streams(state.clients, server, state.staff)
    if not closed:
        state.warnings.warn(f"{status['streams']} streams still open after the clients closed")


def groups(state: Run, worker: ingest_procs.Worker | None) -> dict[str, list[int]]:
    assert state.server is not None
    found = {
        "server": [state.server.popen.pid],
        "workers": worker.pids() if worker else [],
        "load_generators": [c.process.pid for c in state.loads],
        "sse_clients": [c.process.pid for c in state.clients],
        "redis": [state.own.pid] if state.own.pid else [],
    }
    return {name: [pid for pid in pids if pid is not None] for name, pids in found.items()}


def post(state: Run, size: int, batches: int, seconds: float, m: Measurement) -> None:
    """Have the load generators post; `batches` > 0 is split among them, else for `seconds`."""
    n = len(state.loads)
    for k, child in enumerate(state.loads):
        share = batches // n + (1 if k < batches % n else 0) if batches else 0
        child.request(("post", size, share, seconds))
    results: list[LoadResult] = results_of(state.loads, POST_TIMEOUT_SECONDS, "the POSTs")
    for r in results:
        m.accepted += r.accepted
        for status, count in r.statuses.items():
            m.statuses[status] = m.statuses.get(status, 0) + count
        for error, count in r.errors.items():
            m.errors[error] = m.errors.get(error, 0) + count
    m.first_sent = min((r.first_sent for r in results if r.first_sent), default=0.0)
    m.posted_by = max((r.last_done for r in results), default=0.0)


def http_only(state: Run) -> None:
    """POST for a while with no worker: the endpoint's own rate; the queue just fills."""
    p = state.p
    say(f"HTTP only: {p.http_metrics_per_batch} metrics a batch for {p.http_seconds:g}s, no worker")
    m = Measurement("http-only", p.http_metrics_per_batch)
    before = procstat.snapshot(time.time(), groups(state, None))
    post(state, p.http_metrics_per_batch, 0, p.http_seconds, m)
    m.cpu_seconds = ingest_procs.cpu_seconds(
        before, procstat.snapshot(time.time(), groups(state, None))
    )
    queue = redis.Redis.from_url(state.own.url)
    name = os.environ["METRICSTREAM_QUEUE"]
    state.queued_after_http = int(queue.llen(name))
    # Only the queue's list: the exchange bindings the server declared must stay.
    queue.delete(name)
    queue.close()
    state.http = m
    say(f"  accepted {m.accepted:,} POSTs; {state.queued_after_http:,} jobs were queued (dropped)")


def measure(
    state: Run,
    tenant_ids: list[str],
    worker: ingest_procs.Worker,
    variant: str,
    size: int,
    batches: int,
) -> None:
    m = Measurement(variant, size, before=fixtures.last_seqs(tenant_ids))
    for c in state.clients:
        c.pump()
    frames_before = streams.frames_received(state.clients)
    say(f"{variant}: {batches:,} batches of {size} ({batches * size:,} metrics)")
    failed_before = len(worker.failures())
    snapshot_before = procstat.snapshot(time.time(), groups(state, worker))
    post(state, size, batches, 0.0, m)
    posting = m.posted_by - m.first_sent
    say(f"  posted: {m.accepted:,} accepted in {posting:.2f}s; waiting for the streams")
    m.complete = wait_for_receipts(state, frames_before + m.accepted)
    m.cpu_seconds = ingest_procs.cpu_seconds(
        snapshot_before, procstat.snapshot(time.time(), groups(state, worker))
    )
    m.after = fixtures.last_seqs(tenant_ids)
    failures = worker.failures()[failed_before:]
    m.job_failures = len(failures)
    if failures:
        state.warnings.warn(
            f"{variant}/{size}: {len(failures)} jobs failed, the last: {failures[-1][-200:]}"
        )
    if m.accepted < batches:
        state.warnings.warn(
            f"{variant}/{size}: {batches - m.accepted} POSTs not accepted: {m.statuses} {m.errors}"
        )
    state.measurements.append(m)


def wait_for_receipts(state: Run, want: int) -> bool:
    """Until the streams have received `want` frames in all; False if they stall."""
    last, last_change = -1, time.monotonic()
    next_line = time.monotonic() + PROGRESS_SECONDS
    while True:
        for c in state.clients:
            c.pump()
        got = streams.frames_received(state.clients)
        if got >= want:
            return True
        now = time.monotonic()
        if got != last:
            last, last_change = got, now
        elif now - last_change > STALL_TIMEOUT_SECONDS:
            state.warnings.warn(f"receipts stalled at {got:,} of {want:,} frames")
            return False
        if now >= next_line:
            say(f"  received {got:,} of {want:,} frames")
            next_line = now + PROGRESS_SECONDS
        time.sleep(0.02)
