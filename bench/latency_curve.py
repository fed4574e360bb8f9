"""`python -m bench latency-curve`: commit -> receipt p99 against load, up to saturation.

The latency benchmark (bench/runner.py) once per target rate, rising, each a
full run of its own (fresh database, server, committers, clients) with the
Redis Pub/Sub baseline measured alongside. Two curves:

- commit: each batch committed by the job's body at the rate; the curve ends
  at the first rate the committers could not reach (the machine is full);
- replay: the batches committed beforehand and published at the rate, as the
  job does after each commit (bench/replayer.py): the streaming path alone,
  to rates the machine could not also commit. It ends where deliveries go
  missing or p99 passes SATURATED_P99_MS.

Writes bench/results/latency-curve.json.
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
    "default) and record p50/p90/p99/max SSE and Redis-direct latency at each: with the "
    "batches committed at the rate until the committers no longer reach it, then with "
    "them committed beforehand and published at the rate until the streaming path "
    "saturates. Writes bench/results/latency-curve.json."
)
# A rate counts as reached when the committers achieved this share of it.
REACHED_SHARE = 0.9
# A replay point this slow is past saturation (the story's bound for the whole path).
SATURATED_P99_MS = 100.0
DEFAULT_RATES = {"commit": "250,500,1000,1500,2000", "replay": "500,1000,2000,4000,8000"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    runner.add_arguments(parser)
    parser.set_defaults(duration=8.0)
    for source, rates in DEFAULT_RATES.items():
        parser.add_argument(
            f"--{source}-rates",
            default=rates,
            help=f"target batches/s of each {source} point, rising; empty: no {source} curve "
            "(default: %(default)s)",
        )


Curves = dict[str, list[float]]


def parameters(args: argparse.Namespace) -> tuple[tuple[runner.Parameters, Curves], list[str]]:
    p, problems = runner.parameters(args)
    curves: Curves = {}
    for source in DEFAULT_RATES:
        raw = getattr(args, f"{source}_rates")
        try:
            curves[source] = [float(r) for r in raw.split(",")] if raw else []
        except ValueError:
            curves[source] = [-1.0]
        if any(r <= 0 for r in curves[source]):
            problems.append(f"--{source}-rates must be positive numbers")
    return (p, curves), problems


def run(params: tuple[runner.Parameters, Curves]) -> int:
    base, curves = params
    warnings = Warnings()
    points: dict[str, list[dict[str, Any]]] = {}
    for source, rates in curves.items():
        points[source] = curve(replace(base, source=source), rates, warnings)
    document = report.envelope(
        {**asdict(base), "rates": curves},
        {"curves": points, "warnings": warnings},
        NAME,
    )
    path = report.write(document, NAME)
    print(table(document))
    say(f"results written to {path}")
    return 0


def curve(base: runner.Parameters, rates: list[float], warnings: Warnings) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    for rate in rates:
        say(f"=== {base.source}: {rate:g} batches/s ===")
        with fixtures.environment(NAME) as env:
            document = runner.latency_run(replace(base, rate=rate), env)
        point = summarise_point(document)
        points.append(point)
        say(
            f"{base.source} at {rate:g} batches/s: reached {point['achieved_rate']:,.0f}/s, "
            f"SSE p99 {point['sse_ms']['p99']} ms, Redis p99 {point['redis_direct_ms']['p99']} ms"
        )
        p99 = point["sse_ms"]["p99"] or 0.0
        if point["achieved_rate"] < REACHED_SHARE * rate:
            warnings.warn(f"{base.source}: {rate:g} batches/s not reached; the curve ends here")
            break
        if point["missing"] or p99 > SATURATED_P99_MS:
            warnings.warn(f"{base.source}: saturated at {rate:g} batches/s; the curve ends here")
            break
    return points


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
    for source, points in document["curves"].items():
        lines.append(f"  {source}:")
        for pt in points:
            s, r = pt["sse_ms"], pt["redis_direct_ms"]
            lines.append(
                f"  {pt['target_rate']:>9g}{pt['achieved_rate']:>10,.0f}{s['p50']:>9}{s['p90']:>8}"
                f"{s['p99']:>8}{s['max']:>8}{r['p99']:>10}{pt['missing']:>8}"
            )
    lines += [f"  WARNING: {w}" for w in document.get("warnings", [])]
    return "\n".join(lines)
