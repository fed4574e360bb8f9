"""`python -m bench overload`: the hub's Redis reader when fan-out is saturated. Its phases:

0. Start a redis-server of the benchmark's own on a spare port, recreate and
   seed metricstream_bench_overload, start the server against the own Redis, open the
   streams, start the committer processes (their PUBLISH disabled) and one
   publisher process.
1. Capacity ramp: commit batches (not published), then PUBLISH their exact
   payloads (read back with the stream's replay query) at increasing rates,
   each step for a few seconds, and measure frames delivered per second to the
   clients and the server's CPU. Between steps every stream must catch up. The
   ramp stops at the first step where deliveries fall clearly short of the
   offered rate (or streams overflow): capacity is the highest delivery rate seen.
2. Overload: publish at --factor (10) times that capacity for --seconds,
   polling Redis's CLIENT LIST for the hub connection's output buffer (omem) and
   the server's status; then wait until every stream has every batch, and
   check Redis's log and counters for a disconnection of the hub.

The load is bounded: --max-steps, --seconds and --max-batches (committed in
all). Writes bench/results/overload.json.
"""

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import bulkcommit, fixtures, harness, ownredis, procstat, publisher, streams, tables
from bench.children import Child, pump_until, results_of
from bench.console import say
from bench.overload_summary import summarise
from bench.sampler import Sampler

NAME = "overload"
SUMMARY = "the hub's Redis reader at 10x the fan-out capacity (overload.json)"
CHILD_READY_TIMEOUT_SECONDS = 120.0
OMEM_POLL_SECONDS = 0.05
STATUS_POLL_SECONDS = 0.25
# A step is saturated when it delivers less than this share of what was offered.
KEPT_UP_SHARE = 0.9
OUTPUT_BUFFER_LOG_LINES = ("output buffer", "closed ASAP")
LOST_LOG_LINE = "Redis Pub/Sub connection lost"
RESTORED_LOG_LINE = "Redis Pub/Sub connection restored"


@dataclass(frozen=True)
class Parameters:
    streams: int
    tenants: int
    clients: int
    committers: int
    metrics_per_batch: int
    factor: float
    seconds: float
    step_seconds: float
    ramp_start: float
    ramp_factor: float
    max_steps: int
    max_batches: int
    timeout: float
    converge_timeout: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    harness.add_world_arguments(parser, tenants=10)
    add = parser.add_argument
    add(
        "--committers",
        type=int,
        default=2,
        help="processes committing the batches beforehand (default: %(default)s)",
    )
    add(
        "--factor",
        type=float,
        default=10.0,
        help="overload: offered frames/s as a multiple of the capacity (default: %(default)s)",
    )
    add(
        "--seconds",
        type=float,
        default=5.0,
        help="overload: seconds of publishing (default: %(default)s)",
    )
    add(
        "--step-seconds",
        type=float,
        default=2.0,
        help="ramp: seconds of publishing per step (default: %(default)s)",
    )
    add(
        "--ramp-start",
        type=float,
        default=5000.0,
        help="ramp: offered frames/s (batches/s x streams per tenant) of the first step "
        "(default: %(default)s)",
    )
    add(
        "--ramp-factor",
        type=float,
        default=1.5,
        help="ramp: each step offers this many times the previous (default: %(default)s)",
    )
    add(
        "--max-steps",
        type=int,
        default=10,
        help="ramp: at most this many steps (default: %(default)s)",
    )
    add(
        "--max-batches",
        type=int,
        default=100000,
        help="at most this many batches committed (and published) in all (default: %(default)s)",
    )
    add(
        "--timeout",
        type=float,
        default=60.0,
        help="ramp: longest wait for the streams to converge after a step (default: %(default)s s)",
    )
    add(
        "--converge-timeout",
        type=float,
        default=900.0,
        help="overload: longest wait for every stream to have every batch once publishing "
        "stopped (default: %(default)s s)",
    )


def parameters(args: argparse.Namespace) -> tuple[Parameters, list[str]]:
    checks = [
        *harness.world_checks(args),
        (args.committers >= 1, "--committers must be at least 1"),
        (args.factor > 0, "--factor must be positive"),
        (args.seconds > 0, "--seconds must be positive"),
        (args.step_seconds > 0, "--step-seconds must be positive"),
        (args.ramp_start > 0, "--ramp-start must be positive"),
        (args.ramp_factor > 1, "--ramp-factor must be above 1"),
        (args.max_steps >= 1, "--max-steps must be at least 1"),
        (args.max_batches >= args.tenants, "--max-batches must be at least --tenants"),
        (args.timeout > 0, "--timeout must be positive"),
        (args.converge_timeout > 0, "--converge-timeout must be positive"),
    ]
    p = Parameters(
        streams=args.streams,
        tenants=args.tenants,
        clients=args.clients,
        committers=min(args.committers, args.tenants),
        metrics_per_batch=args.metrics_per_batch,
        factor=args.factor,
        seconds=args.seconds,
        step_seconds=args.step_seconds,
        ramp_start=args.ramp_start,
        ramp_factor=args.ramp_factor,
        max_steps=args.max_steps,
        max_batches=args.max_batches,
        timeout=args.timeout,
        converge_timeout=args.converge_timeout,
    )
    return p, [message for ok, message in checks if not ok]


class Run(harness.OwnRedisRun):
    """The processes of one run and what was observed."""

    def __init__(self, p: Parameters, workdir: Path, own: ownredis.OwnRedis) -> None:
        super().__init__(workdir, own)
        self.p = p
        self.bulk: list[Child] = []
        self.publisher: Child | None = None
        self.timeline: streams.Timeline | None = None
        self.committed_per_tenant = 0  # every tenant has the same number committed
        self.published_per_tenant = 0
        self.targets: dict[int, int] = {}  # the last seq published, per tenant index
        self.steps: list[dict[str, Any]] = []

    @property
    def fan_out(self) -> int:
        """Deliveries per round of publishing (one batch of every tenant)."""
        assert self.opened is not None
        return self.opened.count

    def feeders(self) -> list[Child]:
        return [*self.bulk, *([self.publisher] if self.publisher else [])]

    def groups(self) -> dict[str, list[int]]:
        assert self.server is not None and self.publisher is not None
        return {
            "server": [self.server.popen.pid],
            "sse_clients": [c.process.pid for c in self.clients],
            "publisher": [self.publisher.process.pid],
        }


def run(p: Parameters) -> int:
    return harness.execute(
        NAME, lambda workdir, own: Run(p, workdir, own), phases, summarise, table
    )


def phases(o: Run, env: dict[str, str]) -> None:
    start(o, env)
    overload(o, ramp(o))


def start(o: Run, env: dict[str, str]) -> None:
    p = o.p
    say(
        f"{p.streams} streams over {p.tenants} tenants; ramp from {p.ramp_start:g} frames/s "
        f"x{p.ramp_factor:g} per {p.step_seconds:g}s step, then {p.factor:g}x capacity "
        f"for {p.seconds:g}s"
    )
    seeded = o.start_server(env, p.tenants)
    o.found["redis_output_buffer_limit"] = o.own.config("client-output-buffer-limit")
    o.bulk = [
        Child(
            f"precommitter-{k}",
            bulkcommit.run,
            bulkcommit.BulkConfig(k, p.metrics_per_batch, publish=False),
        )
        for k in range(p.committers)
    ]
    o.publisher = Child(
        "publisher", publisher.run, publisher.PublisherConfig(o.own.url, seeded.tenant_ids)
    )
    o.open_streams(p.streams, p.clients, max_seconds=3600)
    o.timeline = streams.Timeline(o.clients)
    pump_until(
        o.feeders(),
        lambda: all(c.ready is not None for c in o.feeders()),
        CHILD_READY_TIMEOUT_SECONDS,
        "the committers and the publisher to set Django up",
    )


def ensure_committed(o: Run, per_tenant: int) -> None:
    """Commit (without publishing) until every tenant has `per_tenant` batches to publish."""
    assert o.seeded is not None and o.publisher is not None
    missing = o.published_per_tenant + per_tenant - o.committed_per_tenant
    if missing <= 0:
        return
    tenants = o.seeded.tenant_ids
    say(f"  committing {missing * len(tenants):,} batches (not published)")
    for k, c in enumerate(o.bulk):
        c.request(("commit", {t: missing for t in tenants[k :: len(o.bulk)]}))
    pump_until(  # the clients too, so their pipes never fill
        [*o.bulk, *o.clients],
        lambda: all(c.result is not None for c in o.bulk),
        120.0 + missing * len(tenants) / 50,
        "the committers",
    )
    o.committed_per_tenant += missing
    o.publisher.request(("load",))
    held = results_of([o.publisher], 120.0, "the publisher to read the batches back")[0]
    if min(held.values()) < o.committed_per_tenant:
        raise SystemExit(
            f"bench: the publisher read back {held}, expected {o.committed_per_tenant}"
        )


def budget_per_tenant(o: Run) -> int:
    """Batches per tenant that may still be published (and so committed) within --max-batches."""
    return o.p.max_batches // o.p.tenants - o.published_per_tenant


def publish(o: Run, rate: float, per_tenant: int, tick: Any = None) -> publisher.PublishResult:
    """Publish the next `per_tenant` batches of every tenant at `rate` messages/s."""
    assert o.publisher is not None and o.timeline is not None
    o.publisher.request(("publish", rate, per_tenant))

    def done() -> bool:
        for c in o.clients:
            c.pump()
        o.timeline.record()
        if tick is not None:
            tick()
        return o.publisher.result is not None

    timeout = 60.0 + per_tenant * o.p.tenants / rate * 3
    pump_until([o.publisher, *o.clients], done, timeout, "the publisher")
    result: publisher.PublishResult = o.publisher.result
    o.published_per_tenant += per_tenant
    o.targets = dict(result.last_seq)
    return result


def converge(o: Run, what: str, timeout: float, every: float = 2.0) -> tuple[bool, float]:
    """Wait until every stream has every published batch; (all did, when that was seen)."""
    assert o.opened is not None and o.timeline is not None
    generation = streams.set_targets(o.clients, o.targets)
    ok = streams.wait_complete(
        o.clients, generation, o.opened.count, timeout, what, every, o.timeline.record
    )
    return ok, time.time()


def ramp(o: Run) -> float:
    """Publish at increasing rates; the highest delivery rate seen (frames/s)."""
    p = o.p
    assert o.timeline is not None
    best = 0.0
    for i in range(p.max_steps):
        offered = p.ramp_start * p.ramp_factor**i  # frames/s
        rate = offered * p.tenants / o.fan_out  # messages/s
        per_tenant = max(1, round(rate * p.step_seconds / p.tenants))
        if per_tenant > budget_per_tenant(o):
            o.warnings.warn(f"ramp: step {i + 1} would exceed --max-batches; ramp ended")
            break
        say(f"ramp step {i + 1}: offering {offered:,.0f} frames/s ({rate:,.1f} batches/s)")
        ensure_committed(o, per_tenant)
        before = o.patient_status()
        cpu_before = procstat.snapshot(time.time(), o.groups())
        result = publish(o, rate, per_tenant)
        cpu_after = procstat.snapshot(time.time(), o.groups())
        ok, seen = converge(o, f"ramp step {i + 1}", p.timeout)
        after = o.patient_status()
        frames = per_tenant * o.fan_out
        delivered = o.timeline.rate(result.started, result.ended)
        step = {
            "step": i + 1,
            "offered_frames_per_second": round(frames / result.seconds),
            "published_batches": result.published,
            "publish_seconds": round(result.seconds, 3),
            "publish_rate_per_second": round(result.rate, 1),
            "delivered_frames_per_second_live": round(delivered),
            "converged": ok,
            "converged_after_publishing_s": round(seen - result.ended, 3),
            "overflows": after["overflows"] - before["overflows"],
            "frames_dropped": after["frames_dropped"] - before["frames_dropped"],
            "catch_ups": after["catch_ups"] - before["catch_ups"],
            "reconnects": after["reconnects"] - before["reconnects"],
            "cpu_percent_of_one_core": procstat.usage(cpu_before, cpu_after),
            "window": [result.started, result.ended],
        }
        o.steps.append(step)
        best = max(best, delivered)
        saturated = delivered < KEPT_UP_SHARE * step["offered_frames_per_second"]
        say(
            f"  delivered {delivered:,.0f} frames/s of {step['offered_frames_per_second']:,} "
            f"offered; server CPU {step['cpu_percent_of_one_core'].get('server', 0):g}%; "
            f"overflows {step['overflows']}; converged {ok} "
            f"{step['converged_after_publishing_s']:.2f}s after publishing"
        )
        if not ok:
            raise SystemExit("bench: the streams did not converge during the ramp")
        if saturated or step["overflows"]:
            step["saturated"] = True
            break
    else:
        o.warnings.warn(
            f"the ramp never saturated the server: capacity is at least {best:,.0f} frames/s"
        )
    o.found["capacity_frames_per_second"] = round(best)
    say(f"capacity: {best:,.0f} frames/s delivered")
    return best


def hub_buffers(own: ownredis.OwnRedis) -> list[dict[str, Any]]:
    """The hub connections' buffers from `CLIENT LIST` (byte counts as ints)."""
    keep = ("id", "omem", "tot-mem", "qbuf", "obl", "oll", "sub", "age")
    return [
        {k: int(c[k]) if str(c.get(k, "")).isdigit() else c.get(k) for k in keep}
        for c in own.hub_clients()
    ]


def overload(o: Run, capacity: float) -> None:
    p = o.p
    offered = p.factor * capacity
    rate = offered * p.tenants / o.fan_out
    per_tenant = max(1, math.ceil(rate * p.seconds / p.tenants))
    if per_tenant > budget_per_tenant(o):
        per_tenant = budget_per_tenant(o)
        o.warnings.warn(
            f"--max-batches allows {per_tenant * p.tenants:,} batches: the overload lasts "
            f"{per_tenant * p.tenants / rate:.2f}s instead of {p.seconds:g}s"
        )
    say(
        f"overload: offering {offered:,.0f} frames/s ({rate:,.0f} batches/s, "
        f"{per_tenant * p.tenants:,} batches) for {per_tenant * p.tenants / rate:.1f}s"
    )
    ensure_committed(o, per_tenant)
    before = o.patient_status()
    buffers = Sampler("omem", lambda: hub_buffers(o.own), OMEM_POLL_SECONDS)
    statuses = Sampler("status", o.poll_status, STATUS_POLL_SECONDS)
    next_line = time.time() + 1.0

    def tick() -> None:
        nonlocal next_line
        if time.time() < next_line:
            return
        pub = o.publisher.progress[0] if o.publisher and o.publisher.progress else 0
        omem = buffers.samples[-1].value if buffers.samples else []
        say(
            f"  published {pub:,}, frames {streams.frames_received(o.clients):,}, "
            f"hub omem {[c['omem'] for c in omem]}"
        )
        next_line += 1.0

    with buffers, statuses:
        cpu_start = procstat.snapshot(time.time(), o.groups())
        result = publish(o, rate, per_tenant, tick)
        cpu_end = procstat.snapshot(time.time(), o.groups())
        say(f"overload: publishing stopped after {result.seconds:.2f}s; waiting for convergence")
        ok, seen = converge(o, "converging", p.converge_timeout, every=5.0)
        cpu_converged = procstat.snapshot(time.time(), o.groups())
    after = o.status_or_none()
    if after is None:
        after = statuses.samples[-1].value if statuses.samples else before
        o.warnings.warn("no status after the overload: its counters are the last polled ones")
    info = {s: o.own.info(s) for s in ("clients", "stats", "memory")}
    o.found["overload"] = {
        "offered_frames_per_second_target": round(offered),
        "publish": {
            "batches": result.published,
            "seconds": round(result.seconds, 3),
            "rate_per_second": round(result.rate, 1),
            "target_rate_per_second": round(rate, 1),
            "payload_bytes": result.payload_bytes,
            "behind_schedule_at_end_s": round(result.behind_seconds_at_end, 3),
            "started": result.started,
            "ended": result.ended,
        },
        "converged": ok,
        "converged_seen_at": seen,
        "status_before": strip(before),
        "status_after": strip(after),
        "cpu_publishing": procstat.usage(cpu_start, cpu_end),
        "cpu_converging": procstat.usage(cpu_end, cpu_converged),
        "omem_samples": [(round(s.answered, 3), s.value) for s in buffers.samples],
        "status_samples": [(round(s.answered, 3), strip(s.value)) for s in statuses.samples],
        "poll_errors": {"omem": buffers.errors, "status": statuses.errors},
        "redis_info": info,
        "redis_log_output_buffer_lines": o.own.log_lines(*OUTPUT_BUFFER_LOG_LINES),
        "timeline": timeline(o, result.started),
    }
    if not ok:
        o.warnings.warn("the streams did not all converge within --converge-timeout")


def timeline(o: Run, started: float) -> dict[str, list[float]]:
    """Seconds after publishing started when Redis dropped the hub, and the hub noticed."""
    assert o.server is not None

    def after(moments: list[float]) -> list[float]:
        return [round(t - started, 3) for t in moments if t >= started - 1]

    return {
        "redis_closed_hub_for_output_buffer": after(o.own.log_times(*OUTPUT_BUFFER_LOG_LINES)),
        "server_logged_connection_lost": after(fixtures.log_times(o.server.log, LOST_LOG_LINE)),
        "server_logged_connection_restored": after(
            fixtures.log_times(o.server.log, RESTORED_LOG_LINE)
        ),
    }


def strip(status: dict) -> dict:
    return {k: v for k, v in status.items() if k not in ("channels", "tasks", "open_fds")}


def table(document: dict[str, Any]) -> str:
    return tables.overload_table(document)
