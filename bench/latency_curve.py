"""`python -m bench latency-curve`: commit -> receipt p99 against load, up to saturation.

The latency benchmark (bench/runner.py) once per target rate, rising, each a
full run of its own (fresh database, server, committers, clients) with the
Redis Pub/Sub baseline measured alongside. The curve ends at the first rate
the committers could not reach: past that point the machine, not the load, is
what is measured. Writes bench/results/latency-curve.json.
"""

import argparse
from dataclasses import asdict, replace
from typing import Any

from bench import fixtures, report, runner
from bench.console import Warnings, say

NAME = "latency-curve"
SUMMARY = "p99 commit -> receipt against load, to saturation (latency-curve.json)"
DESCRIPTION = (
    "Run the latency benchmark at rising target rates (1,000 streams over 100 tenants by "
    "default) and record p50/p90/p99/max SSE and Redis-direct latency at each, until the "
    "committers no longer reach the target. Writes bench/results/latency-curve.json."
)
# A rate counts as reached when the committers achieved this share of it.
REACHED_SHARE = 0.9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    runner.add_arguments(parser)
    parser.set_defaults(duration=8.0)
    parser.add_argument(
        "--rates",
        default="250,500,1000,1500,2000,3000",
        help="target batches/s of each point, rising (default: %(default)s)",
    )


def parameters(args: argparse.Namespace) -> tuple[tuple[runner.Parameters, list[float]], list[str]]:
    p, problems = runner.parameters(args)
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        rates = []
    if not rates or any(r <= 0 for r in rates):
        problems.append("--rates must be positive numbers")
    return (p, rates), problems


def run(params: tuple[runner.Parameters, list[float]]) -> int:
    base, rates = params
    warnings = Warnings()
    points: list[dict[str, Any]] = []
    for rate in rates:
        p = replace(base, rate=rate)
        say(f"=== {rate:g} batches/s ===")
        with fixtures.environment(NAME) as env:
            document = runner.latency_run(p, env)
        point = summarise_point(document)
        points.append(point)
        say(
            f"{rate:g} batches/s: committed {point['achieved_rate']:,.0f}/s, SSE p99 "
            f"{point['sse_ms']['p99']} ms, Redis p99 {point['redis_direct_ms']['p99']} ms"
        )
        if point["achieved_rate"] < REACHED_SHARE * rate:
            warnings.warn(f"saturated at {rate:g} batches/s: the curve ends here")
            break
    document = report.envelope(
        {**asdict(base), "rates": rates},
        {"points": points, "warnings": warnings},
        NAME,
    )
    path = report.write(document, NAME)
    print(table(document))
    say(f"results written to {path}")
    return 0


def summarise_point(document: dict[str, Any]) -> dict[str, Any]:
    latency = document["latency_ms"]

    def dist(d: dict[str, Any]) -> dict[str, Any]:
        return {k: d.get(k) for k in ("count", "p50", "p90", "p99", "max")}

    return {
        "target_rate": document["parameters"]["rate"],
        "achieved_rate": document["batches"]["commit_rate_per_second"],
        "sse_ms": dist(latency["sse"]),
        "redis_direct_ms": dist(latency["redis_direct"]),
        "missing": document["deliveries"]["missing"],
        "cpu_percent_of_one_core": document.get("cpu_percent_of_one_core", {}),
    }


def table(document: dict[str, Any]) -> str:
    lines = [
        "Commit -> receipt latency against load (ms)",
        f"  {'target/s':>9}{'reached/s':>10}{'SSE p50':>9}{'p90':>8}{'p99':>8}{'max':>8}"
        f"{'Redis p99':>10}{'missing':>8}",
    ]
    for pt in document["points"]:
        s, r = pt["sse_ms"], pt["redis_direct_ms"]
        lines.append(
            f"  {pt['target_rate']:>9g}{pt['achieved_rate']:>10,.0f}{s['p50']:>9}{s['p90']:>8}"
            f"{s['p99']:>8}{s['max']:>8}{r['p99']:>10}{pt['missing']:>8}"
        )
    lines += [f"  WARNING: {w}" for w in document.get("warnings", [])]
    return "\n".join(lines)
