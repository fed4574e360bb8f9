"""`python -m bench fanout`: SSE frames delivered per server CPU-second, hub against baseline.

For each variant in turn (the product's hub, then bench/naive.py's one Redis
subscription per stream), in one run:

1. Start the server; open N streams on one tenant with the counting C client.
2. Commit the batches to publish straight into the database (so any catch-up
   finds them), then PUBLISH them on Redis at rising rates, one step each.
3. Per step: frames delivered (the client counts them), the server's CPU
   seconds (/proc), and so frames per server CPU-second; the ramp ends when the
   server no longer keeps up.
4. Close the streams; each must have received every batch exactly once.

Then the growth points: the hub alone at one offered load (--growth-frames), as
the streams on one tenant grow, and as 1,000 streams are spread over more
tenants (each batch then reaches fewer streams, so more messages carry the same
frames).
"""

import argparse
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import counting_client, fixtures, procstat, profiling, publisher, report
from bench.children import Child, pump_until, results_of, stop_all
from bench.console import Warnings, say

NAME = "fanout"
SUMMARY = "frames/s per server CPU-second, hub vs one subscription per stream (fanout.json)"
DESCRIPTION = (
    "Measure SSE fan-out efficiency: N streams on one tenant, batches published at "
    "rising rates until the server stops keeping up; frames delivered per server "
    "CPU-second, for the product's hub and, in the same run, the naive baseline "
    "(bench/naive.py: one Redis subscription per stream). Uses the database "
    "metricstream_bench_fanout; writes bench/results/fanout.json."
)
VARIANTS = {"hub": fixtures.SERVE_COMMAND, "naive": ("bench.naive",)}
CHILD_READY_TIMEOUT_SECONDS = 120.0
STREAMS_OPEN_TIMEOUT_SECONDS = 60.0
# A step kept up if every frame arrived within this long after publishing ended.
KEPT_UP_SECONDS = 0.5
# The growth points with more tenants spread this many streams over them.
GROWTH_STREAMS = 1000
# How long a saturated step may take to deliver its last frames before the run gives up on it.
CONVERGE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Parameters:
    streams: int
    rates: list[float]  # batches/s, one step each
    step_seconds: float
    metrics_per_batch: int
    variants: list[str]
    profile: bool
    # Growth: the hub at a fixed offered load, as streams (on one tenant) and tenants
    # (1,000 streams spread over them) grow.
    growth_streams: list[int]
    growth_tenants: list[int]
    growth_frames: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--streams", type=int, default=1000, help="streams on the tenant (default: %(default)s)")
    add(
        "--rates",
        default="20,50,100,200,400,800,1500,3000,5000",
        help="batches/s of each step, rising (default: %(default)s)",
    )
    add("--step-seconds", type=float, default=3.0, help="per step (default: %(default)s)")
    add("--metrics-per-batch", type=int, default=5, help="(default: %(default)s)")
    add(
        "--variants",
        default="hub,naive",
        help=f"which servers, in order, from {','.join(VARIANTS)} (default: %(default)s)",
    )
    add(
        "--growth-streams",
        default="250,1000,4000",
        help="streams on one tenant, one growth point each; empty: none (default: %(default)s)",
    )
    add(
        "--growth-tenants",
        default="10,100",
        help="tenants 1,000 streams are spread over, one growth point each (default: %(default)s)",
    )
    add(
        "--growth-frames",
        type=float,
        default=200_000,
        help="frames/s offered at each growth point (default: %(default)s)",
    )
    add(
        "--profile",
        action="store_true",
        help="record each step of the server with py-spy; the hottest functions go in the "
        "results, the raw stacks in the run's work directory",
    )


def parameters(args: argparse.Namespace) -> tuple[Parameters, list[str]]:
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        rates = []
    variants = args.variants.split(",")
    checks = [
        (args.streams >= 1, "--streams must be at least 1"),
        (bool(rates) and all(r > 0 for r in rates), "--rates must be positive numbers"),
        (args.step_seconds > 0, "--step-seconds must be positive"),
        (args.metrics_per_batch >= 1, "--metrics-per-batch must be at least 1"),
        (all(v in VARIANTS for v in variants), f"--variants must be from {','.join(VARIANTS)}"),
    ]
    try:
        growth_streams = [int(n) for n in args.growth_streams.split(",") if n]
        growth_tenants = [int(n) for n in args.growth_tenants.split(",") if n]
    except ValueError:
        growth_streams = growth_tenants = [0]
    checks += [
        (all(n >= 1 for n in growth_streams), "--growth-streams must be positive integers"),
        (
            all(1 <= t <= GROWTH_STREAMS and GROWTH_STREAMS % t == 0 for t in growth_tenants),
            f"--growth-tenants must divide {GROWTH_STREAMS}",
        ),
        (args.growth_frames > 0, "--growth-frames must be positive"),
    ]
    p = Parameters(
        args.streams,
        rates,
        args.step_seconds,
        args.metrics_per_batch,
        variants,
        args.profile,
        growth_streams,
        growth_tenants,
        args.growth_frames,
    )
    return p, [message for ok, message in checks if not ok]


def run(p: Parameters) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="metricstream-bench-fanout-"))
    warnings = Warnings()
    binary = counting_client.build(workdir)
    results: dict[str, Any] = {}
    with fixtures.environment(NAME) as env:
        shapes = growth_shapes(p, first_tenant=len(p.variants))
        needed = len(p.variants) + sum(len(shape.tenants) for shape in shapes)
        seeded = fixtures.prepare_database(needed, env)
        for index, variant in enumerate(p.variants):
            say(f"=== {variant}: {p.streams} streams on one tenant ===")
            shape = Shape(p.streams, [index])
            results[variant] = measure(
                p, variant, shape, p.rates, seeded, env, binary, workdir, warnings
            )
        growth = []
        for shape in shapes:
            rate = p.growth_frames / shape.per_tenant  # batches/s over all the tenants
            say(f"=== growth: {shape.streams} streams over {len(shape.tenants)} tenant(s) ===")
            found = measure(p, "hub", shape, [rate], seeded, env, binary, workdir, warnings)
            growth.append({"streams": shape.streams, "tenants": len(shape.tenants), **found})
    document = report.envelope(
        asdict(p),
        {**summarise(results), "variants": results, "growth": growth, "warnings": warnings},
        NAME,
    )
    path = report.write(document, NAME)
    print(table(document))
    say(f"results written to {path}")
    return 0


@dataclass(frozen=True)
class Shape:
    """Streams spread evenly over tenants (indices into the seeded tenants)."""

    streams: int
    tenants: list[int]

    @property
    def per_tenant(self) -> int:
        return self.streams // len(self.tenants)


def measure(
    p: Parameters,
    variant: str,
    shape: Shape,
    rates: list[float],
    seeded: fixtures.Seeded,
    env: dict[str, str],
    binary: Path,
    workdir: Path,
    warnings: Warnings,
) -> dict[str, Any]:
    """Start the variant's server, open the streams, ramp through `rates`, check every stream."""
    label = f"{variant}-{shape.streams}x{len(shape.tenants)}"
    tenants = [seeded.tenant_ids[t] for t in shape.tenants]
    server = fixtures.Server(env, workdir / f"{label}-server.log", VARIANTS[variant])
    pub = Child("publisher", publisher.run, publisher.PublisherConfig(env["REDIS_URL"], tenants))
    group: counting_client.ClientGroup | None = None
    try:
        server.wait_ready()
        staff = fixtures.form_login(server.base, seeded.staff_email, seeded.staff_password)
        group = counting_client.ClientGroup(
            [
                counting_client.CountingClient(
                    binary,
                    server.port,
                    f"/api/v1/stream/{seeded.tenant_ids[t]}",
                    f"sessionid={seeded.viewer_sessions[t]}",
                    shape.per_tenant,
                    workdir / f"{label}-client-{t}.log",
                )
                for t in shape.tenants
            ]
        )
        group.wait_opened()
        ok, status = fixtures.wait_for_streams(
            server.base, staff, shape.streams, STREAMS_OPEN_TIMEOUT_SECONDS
        )
        if not ok:
            raise SystemExit(f"bench: {status.get('streams')} of {shape.streams} streams opened")
        rss = procstat.rss_bytes(server.popen.pid) or 0
        say(f"{shape.streams} streams over {len(tenants)} tenant(s) open; RSS {rss:,} bytes")
        per_tenant = sum(batches_per_tenant(r, p.step_seconds, shape) for r in rates)
        for tenant in tenants:
            fixtures.commit_directly(tenant, per_tenant, p.metrics_per_batch)
        pump_until([pub], lambda: pub.ready is not None, CHILD_READY_TIMEOUT_SECONDS, "publisher")
        pub.request(("load",))
        results_of([pub], CHILD_READY_TIMEOUT_SECONDS, "the publisher to load the batches")
        steps = ramp(p, shape, rates, server, group, pub, warnings, workdir / label, staff)
        counts = group.stop()
        group = None
        exact = sum(c.exact for c in counts)
        if exact != shape.streams:
            warnings.warn(f"{label}: {shape.streams - exact} streams missed or repeated a batch")
        return {"steps": steps, "streams_exact": exact, "streams": len(counts)}
    finally:
        if group is not None:
            group.kill()
        stop_all([pub])
        server.stop()


def growth_shapes(p: Parameters, first_tenant: int) -> list[Shape]:
    """The growth points, each on tenants of its own (their sequences start at 1)."""
    shapes: list[Shape] = []
    next_tenant = first_tenant
    counts = [(n, 1) for n in p.growth_streams] + [(GROWTH_STREAMS, t) for t in p.growth_tenants]
    for streams, tenants in counts:
        shapes.append(Shape(streams, list(range(next_tenant, next_tenant + tenants))))
        next_tenant += tenants
    return shapes


def batches_per_tenant(rate: float, seconds: float, shape: Shape) -> int:
    return max(1, round(rate * seconds / len(shape.tenants)))


def ramp(
    p: Parameters,
    shape: Shape,
    rates: list[float],
    server: fixtures.Server,
    clients: counting_client.ClientGroup,
    pub: Child,
    warnings: Warnings,
    profiles: Path,
    staff: str,
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    pid = server.popen.pid
    for rate in rates:
        per_tenant = batches_per_tenant(rate, p.step_seconds, shape)
        frames_before = clients.frames
        expected = frames_before + per_tenant * shape.streams
        groups = {"server": [pid], "client": clients.pids, "publisher": [pub.process.pid]}
        cpu_before = procstat.process_cpu_seconds(pid) or 0.0
        started = time.time()
        machine_before = procstat.snapshot(started, groups)
        recorder = profiling.record(pid, p.step_seconds, profiles / f"{rate:g}.txt", p.profile)
        pub.request(("publish", rate, per_tenant))
        pump_until([pub], lambda: pub.result is not None, 60 + 3 * p.step_seconds, "publishing")
        published: publisher.PublishResult = pub.result
        converged = clients.wait_frames(expected, CONVERGE_TIMEOUT_SECONDS)
        ended = time.time()
        cpu = (procstat.process_cpu_seconds(pid) or 0.0) - cpu_before
        machine = procstat.usage(machine_before, procstat.snapshot(ended, groups))
        frames = clients.frames - frames_before
        late = ended - published.ended
        step = {
            "rate_batches_per_second": rate,
            "offered_frames_per_second": round(per_tenant * shape.streams / published.seconds),
            "delivered_frames_per_second": round(frames / (ended - started)),
            "frames": frames,
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_percent": round(100 * cpu / (ended - started), 1),
            "frames_per_server_cpu_second": round(frames / cpu) if cpu > 0 else None,
            "last_frame_after_publishing_s": round(late, 3),
            "cpu_percent_of_one_core": machine,
            "converged": converged,
            "kept_up": converged and late <= KEPT_UP_SECONDS,
        }
        if recorder is not None:
            step["profile"] = profiling.hottest(recorder)
        step["server_status"] = fixtures.stream_status(server.base, staff)
        steps.append(step)
        say(
            f"  {rate:g} batches/s: {step['delivered_frames_per_second']:,} frames/s, server "
            f"CPU {step['server_cpu_percent']}%, {step['frames_per_server_cpu_second'] or 0:,} "
            f"frames per CPU-second, last frame {late:.2f}s after publishing; CPU % "
            + ", ".join(f"{k} {v:g}" for k, v in machine.items() if k != "server")
        )
        if not converged:
            warnings.warn(f"{rate:g} batches/s: not every frame arrived; ramp ended")
            break
        if not step["kept_up"]:
            break
    return steps


def best(steps: list[dict[str, Any]], key: str, *, on_time: bool) -> float | None:
    """The highest figure among the steps in which every frame arrived (and on time, if asked)."""
    chosen = [s[key] for s in steps if s["converged"] and s[key] and (s["kept_up"] or not on_time)]
    return max(chosen) if chosen else None


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for variant, found in results.items():
        steps = found["steps"]
        figures[variant] = {
            # The headline: every frame delivered, the last within KEPT_UP_SECONDS.
            "frames_per_server_cpu_second": best(
                steps, "frames_per_server_cpu_second", on_time=True
            ),
            # Past that, every frame still arrived, late.
            "frames_per_server_cpu_second_saturated": best(
                steps, "frames_per_server_cpu_second", on_time=False
            ),
            "frames_per_server_cpu_second_at_lowest_rate": steps[0]["frames_per_server_cpu_second"]
            if steps
            else None,
            "delivered_frames_per_second": best(steps, "delivered_frames_per_second", on_time=True),
            "streams_exact": f"{found['streams_exact']}/{found['streams']}",
        }
    hub, naive = figures.get("hub", {}), figures.get("naive", {})
    if hub.get("frames_per_server_cpu_second") and naive.get("frames_per_server_cpu_second"):
        figures["hub_over_naive"] = round(
            hub["frames_per_server_cpu_second"] / naive["frames_per_server_cpu_second"], 2
        )
    return {"figures": figures}


def table(document: dict[str, Any]) -> str:
    p = document["parameters"]
    lines = [
        f"Fan-out: {p['streams']} streams on one tenant, {p['metrics_per_batch']} metrics/batch",
        f"  {'variant':<8}{'batches/s':>10}{'frames/s':>11}{'server CPU':>11}"
        f"{'frames/CPU-s':>14}{'kept up':>9}",
    ]
    for variant, found in document["variants"].items():
        for s in found["steps"]:
            lines.append(
                f"  {variant:<8}{s['rate_batches_per_second']:>10g}"
                f"{s['delivered_frames_per_second']:>11,}{s['server_cpu_percent']:>10}%"
                f"{s['frames_per_server_cpu_second'] or 0:>14,}{'yes' if s['kept_up'] else 'no':>9}"
            )
    for point in document.get("growth", []):
        for s in point["steps"]:
            lines.append(
                f"  growth: {point['streams']:,} streams over {point['tenants']} tenant(s): "
                f"{s['delivered_frames_per_second']:,} frames/s, "
                f"{s['frames_per_server_cpu_second'] or 0:,} per CPU-s, "
                f"kept up: {'yes' if s['kept_up'] else 'no'}"
            )
    for variant, f in document["figures"].items():
        lines.append(f"  {variant}: {f}")
    lines += [f"  WARNING: {w}" for w in document.get("warnings", [])]
    return "\n".join(lines)
