"""`python -m bench capacity`: memory per idle stream and teardown time, product vs baseline.

For the product (`metricstream serve`) and then the baseline (`python -m
bench.naive`, one Redis subscription per stream), in the same run and against
the same redis-server of the benchmark's own (started with --maxclients high
enough for the baseline's connection per stream):

0. Recreate and seed metricstream_bench_capacity (100 tenants, a logged-in viewer each).
1. Start the server; warm it up with a few streams (one per tenant), closed again,
   so one-off costs (imports, thread pools, database connections) are not
   charged to the streams.
2. Ramp: open idle streams in client processes of their own (each at most
   --streams-per-client), up to each of --points in turn; at each point wait
   for the server to count them and for its RSS to settle, then read its RSS
   (/proc VmRSS), fds, tasks, the clients' and Redis's RSS. A point where
   streams fail to open ends the ramp: "failed at N", and the streams that
   stayed open are what the server held.
3. Teardown: close streams down to --teardown-streams, SIGKILL the client
   processes (the kernel closes every socket at once), and poll every 10 ms
   until the server counts 0 streams and Redis 0 subscribers on the tenant channels.

Writes bench/results/capacity.json.
"""

import argparse
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import capacity_probe as probe
from bench import fixtures, report
from bench.capacity_clients import Side, open_group, stop_clients
from bench.capacity_summary import summarise, table
from bench.console import Warnings, say

NAME = "capacity"
SUMMARY = "memory per idle stream and teardown time, product vs baseline (capacity.json)"
NAIVE_MODULE = ("bench.naive",)
# A SIGKILLed client is reaped within this.
KILLED_JOIN_TIMEOUT_SECONDS = 10.0
# redis-py's pool allows 100 connections unless told otherwise, and bench.naive
# does not say: without this its 101st stream fails with "Too many connections".
# A pool setting in the URL lifts that cap without touching the baseline's code.
BASELINE_REDIS_POOL = 100_000


@dataclass(frozen=True)
class Parameters:
    points: list[int]
    teardown_streams: int
    tenants: int
    streams_per_client: int
    warmup_streams: int
    baseline: bool
    redis_maxclients: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--points",
        default="0,1000,5000,10000,15000",
        help="open idle streams at which RSS is measured, comma-separated (default: %(default)s)",
    )
    add(
        "--teardown-streams",
        type=int,
        default=10000,
        help="streams open when the clients are killed; 0 skips the teardown "
        "(default: %(default)s)",
    )
    add("--tenants", type=int, default=100, help="tenants (default: %(default)s)")
    add(
        "--streams-per-client",
        type=int,
        default=5000,
        help="at most this many streams in one client process (default: %(default)s)",
    )
    add(
        "--warmup-streams",
        type=int,
        default=100,
        help="streams opened and closed before the 0 point (default: %(default)s)",
    )
    add("--no-baseline", action="store_true", help="measure the product only")
    add(
        "--redis-maxclients",
        type=int,
        default=30000,
        help="maxclients of the benchmark's own redis-server (default: %(default)s)",
    )


def parameters(args: argparse.Namespace) -> tuple[Parameters, list[str]]:
    problems: list[str] = []
    try:
        points = sorted({0, *(int(v) for v in args.points.split(",") if v.strip())})
    except ValueError:
        points, problems = [0], ["--points must be integers separated by commas"]
    checks = [
        (all(n >= 0 for n in points) and len(points) >= 2, "--points needs a positive count"),
        (args.teardown_streams >= 0, "--teardown-streams must not be negative"),
        (args.tenants >= 1, "--tenants must be at least 1"),
        (args.streams_per_client >= 1, "--streams-per-client must be at least 1"),
        (args.warmup_streams >= 0, "--warmup-streams must not be negative"),
        (args.redis_maxclients >= 1, "--redis-maxclients must be positive"),
    ]
    problems += [message for ok, message in checks if not ok]
    p = Parameters(
        points=points,
        teardown_streams=args.teardown_streams,
        tenants=args.tenants,
        streams_per_client=args.streams_per_client,
        warmup_streams=args.warmup_streams,
        baseline=not args.no_baseline,
        redis_maxclients=args.redis_maxclients,
    )
    return p, problems


def run(p: Parameters) -> int:
    hard = fixtures.raise_open_files_limit()
    workdir = Path(tempfile.mkdtemp(prefix="metricstream-bench-capacity-"))
    own = probe.CapacityRedis(workdir, p.redis_maxclients)
    warnings = Warnings()
    sides: dict[str, Side] = {}
    extra: dict[str, Any] = {"open_files_hard_limit": hard, "workdir": str(workdir)}
    with fixtures.environment(NAME, own.url) as env:
        try:
            own.start()
            own.wait_ready()
            extra["redis_maxclients"] = probe.redis_maxclients(own)
            maxclients = extra["redis_maxclients"]
            say(f"redis: own redis-server on port {own.port}, maxclients {maxclients}")
            seeded = fixtures.prepare_database(p.tenants, env)
            from metricstream.tenants.models import channel_for

            channels = [channel_for(uuid.UUID(t)) for t in seeded.tenant_ids]
            targets = [("product", fixtures.SERVE_COMMAND, env)]
            if p.baseline:
                pooled = {**env, "REDIS_URL": f"{own.url}?max_connections={BASELINE_REDIS_POOL}"}
                extra["baseline_redis_url"] = pooled["REDIS_URL"]
                targets.append(("baseline", NAIVE_MODULE, pooled))
            for label, module, server_env in targets:
                say(f"=== {label} ===")
                side = sides[label] = Side(label)
                measure(side, module, p, server_env, seeded, own, channels, workdir, warnings)
        finally:
            own.stop()
    document = summarise(p, sides, extra, warnings)
    path = report.write(document, NAME)
    print(table(document))
    say(f"results written to {path}")
    return 0


def measure(
    side: Side,
    module: tuple[str, ...],
    p: Parameters,
    env: dict[str, str],
    seeded: fixtures.Seeded,
    own: probe.CapacityRedis,
    channels: list[str],
    workdir: Path,
    warnings: Warnings,
) -> None:
    server = fixtures.Server(env, workdir / f"{side.label}.log", module=module)
    side.log = str(server.log)
    say(f"{side.label}: starting {' '.join(module)} on {server.base} (log: {server.log})")
    target: probe.Target | None = None
    try:
        server.wait_ready()
        staff = fixtures.form_login(server.base, seeded.staff_email, seeded.staff_password)
        target = probe.Target(side.label, server, staff, own)
        if p.warmup_streams:
            warm_up(side, target, seeded, p, warnings)
        ramp(side, target, seeded, own, p, warnings)
        if p.teardown_streams:
            tear_down(side, target, channels, p, warnings)
    finally:
        stop_clients(side.clients)
        side.live.clear()
        if target is not None:
            target.close()
        side.exit_code = server.stop()
        say(f"{side.label}: server stopped (exit code {side.exit_code})")


def warm_up(
    side: Side, target: probe.Target, seeded: fixtures.Seeded, p: Parameters, warnings: Warnings
) -> None:
    count = open_group(side, target, seeded, 0, p.warmup_streams, p.streams_per_client)
    say(f"{side.label}: warm-up: {count} streams open; closing them")
    stop_clients(side.clients)
    side.live.clear()
    side.open_seconds.clear()
    if side.failures:
        warnings.warn(f"{side.label}: warm-up streams failed to open: {side.failures}")
        side.failures.clear()
    left = target.wait_streams(0, side.tick)
    if left:
        warnings.warn(f"{side.label}: {left} warm-up streams still open")


def ramp(
    side: Side,
    target: probe.Target,
    seeded: fixtures.Seeded,
    own: probe.CapacityRedis,
    p: Parameters,
    warnings: Warnings,
) -> None:
    side.points.append(point(side, target, own, 0))
    say(f"{side.label}: 0 streams: RSS {side.points[0]['rss_bytes'] / 2**20:.1f} MiB")
    bounds = sorted({n for n in p.points if n} | ({p.teardown_streams} - {0}))
    first = 0
    for upto in bounds:
        count = open_group(side, target, seeded, first, upto, p.streams_per_client)
        first = upto
        alive = side.alive_streams()
        side.held = max(side.held, min(count, alive))
        opened_in = side.open_seconds[upto]
        if upto in p.points:
            found = point(side, target, own, upto)
            side.points.append(found)
            side.held = max(side.held, min(found["streams"], side.alive_streams()))
            base = side.points[0]["rss_bytes"]
            per = (found["rss_bytes"] - base) / max(found["streams"], 1)
            say(
                f"{side.label}: {found['streams']:,} streams (opened in {opened_in:g}s): RSS "
                f"{found['rss_bytes'] / 2**20:.1f} MiB ({per:,.0f} B/stream), fds "
                f"{found['open_fds']}, tasks {found['tasks']}"
            )
        if count < upto or alive < upto:
            side.failed_at = upto
            warnings.warn(
                f"{side.label}: failed at {upto:,} streams: the server counts {count:,}, the "
                f"clients hold {alive:,}; failures: {side.failures}"
            )
            return


def point(side: Side, target: probe.Target, own: probe.CapacityRedis, want: int) -> dict[str, Any]:
    settled = probe.settle_rss(target.pid, side.tick)
    status = target.status()
    return {
        "target_streams": want,
        "streams": status["streams"],
        "rss_bytes": settled.rss_bytes,
        "rss_settled": settled.stable,
        "settle_seconds": round(settled.seconds, 2),
        "open_fds": probe.open_fds(target.pid),
        "tasks": status.get("tasks"),
        "status_open_fds": status.get("open_fds"),
        "client_processes": len(side.clients),
        "client_rss_bytes": sum(probe.rss_bytes(c.process.pid) or 0 for c in side.clients),
        "redis_rss_bytes": probe.rss_bytes(own.pid),
        "streams_closed_by_server": sum(c.progress[2] for c in side.clients if c.progress),
    }


def tear_down(
    side: Side, target: probe.Target, channels: list[str], p: Parameters, warnings: Warnings
) -> None:
    beyond = [c for upto, c in side.live if upto > p.teardown_streams]
    if beyond:
        say(f"{side.label}: closing the streams beyond {p.teardown_streams:,}")
        stop_clients(beyond)
        side.live = [(upto, c) for upto, c in side.live if upto <= p.teardown_streams]
    count = target.wait_streams(side.alive_streams(), side.tick)
    if count != p.teardown_streams:
        warnings.warn(
            f"{side.label}: teardown with {count:,} streams open, not {p.teardown_streams:,}"
        )
    victims = side.clients
    say(f"{side.label}: {count:,} streams open; SIGKILL of {len(victims)} client process(es)")

    def kill() -> None:
        for c in victims:
            c.process.kill()

    side.teardown = probe.teardown(target, channels, count, kill)
    for c in victims:
        c.process.join(KILLED_JOIN_TIMEOUT_SECONDS)
        c.conn.close()
    side.live.clear()
    t = side.teardown
    if t.seconds_to_released is None:
        last = t.timeline[-1]
        warnings.warn(
            f"{side.label}: not released within {probe.TEARDOWN_TIMEOUT_SECONDS:g}s "
            f"(streams {last[1]}, subscriptions {last[2]})"
        )
    else:
        say(
            f"{side.label}: released in {t.seconds_to_released:.3f}s (streams 0 at "
            f"{t.seconds_to_zero_streams:.3f}s, subscriptions 0 at "
            f"{t.seconds_to_zero_subscriptions:.3f}s; {t.status_answers} status and "
            f"{t.redis_answers} Redis answers)"
        )
