"""`python -m bench report`: the performance figures against their targets, and the plots.

Reads what the benchmarks wrote (bench/results/<benchmark>.json), writes
bench/results/performance.json (each figure, its target, its baseline from the
same run, met or not) and the PNG plots docs/performance.md shows. `python -m
bench` runs this last; on its own it redraws from the files already there.
"""

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.console import say

NAME = "report"
SUMMARY = "figures against targets and the plots, from the results files (performance.json)"
DESCRIPTION = (
    "Collect the headline figures of the latency, latency-curve, ingest, capacity and "
    "fanout results into bench/results/performance.json with their targets and "
    "same-run baselines, and draw bench/results/*.png. Needs no services."
)
RESULTS = report.RESULTS_DIR
Results = dict[str, dict[str, Any]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="results folder (default: bench/results)"
    )


def parameters(args: argparse.Namespace) -> tuple[Path, list[str]]:
    problems = [] if args.results.is_dir() else [f"{args.results} is not a folder"]
    return args.results, problems


def load(folder: Path) -> Results:
    found: Results = {}
    for name in ("latency", "latency-curve", "ingest", "capacity", "fanout"):
        path = folder / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def _get(results: Results, name: str, *keys: str) -> Any:
    value: Any = results.get(name)
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 2) if a and b else None


def figures(r: Results) -> list[dict[str, Any]]:
    """One row per target of the issue: measured, target, baseline, met."""
    fan = _get(r, "fanout", "figures") or {}
    hub_fan = (fan.get("hub") or {}).get("frames_per_server_cpu_second")
    naive_fan = (fan.get("naive") or {}).get("frames_per_server_cpu_second")
    cap = _get(r, "capacity", "figures") or {}
    ing = _get(r, "ingest", "figures") or {}
    replay = _point_at(r, "replay", 2000.0)
    committed = _get(r, "latency", "batches", "commit_rate_per_second") or 0
    ingest_1000 = (ing.get("end_to_end_metrics_per_second") or {}).get("1000")
    orm_1000 = (ing.get("baseline_orm_row_at_a_time_metrics_per_second") or {}).get("1000")
    rows = [
        ("fan-out, frames/s per server CPU-second", hub_fan, ">=", 200_000, naive_fan),
        (
            "RSS per idle stream, bytes",
            cap.get("bytes_per_idle_stream"),
            "<=",
            16_384,
            cap.get("baseline_bytes_per_idle_stream"),
        ),
        ("streams held", cap.get("streams_held"), ">=", 15_000, cap.get("baseline_streams_held")),
        (
            "10,000 streams released, s",
            cap.get("teardown_seconds_10k"),
            "<=",
            1.0,
            cap.get("baseline_teardown_seconds_10k"),
        ),
        (
            "publish -> receipt p99, ms, 1k streams, 2,000 batches/s (committed beforehand)",
            replay.get("sse_ms", {}).get("p99"),
            "<=",
            5.0,
            replay.get("redis_direct_ms", {}).get("p99"),
        ),
        (
            f"commit -> receipt p99, ms, 1k streams, 2,000 batches/s target: "
            f"{committed:,.0f} committed",
            _get(r, "latency", "latency_ms", "sse", "p99"),
            "<=",
            5.0,
            _get(r, "latency", "latency_ms", "redis_direct", "p99"),
        ),
        ("ingest, metrics/s end to end (batches of 1,000)", ingest_1000, ">=", 100_000, orm_1000),
    ]
    table = []
    for figure, measured, sense, target, baseline in rows:
        met = None
        if measured is not None:
            met = measured >= target if sense == ">=" else measured <= target
        table.append(
            {
                "figure": figure,
                "measured": measured,
                "target": f"{sense} {target:,}",
                "met": met,
                "baseline": baseline,
                "measured_over_baseline": _ratio(measured, baseline),
            }
        )
    return table


def _point_at(r: Results, source: str, rate: float) -> dict[str, Any]:
    points = _get(r, "latency-curve", "curves", source) or []
    return next((p for p in points if p["target_rate"] == rate), {})


def run(folder: Path) -> int:
    results = load(folder)
    if not results:
        raise SystemExit(f"bench: no results in {folder}; run `python -m bench` first")
    plots = draw(results, folder)
    rows = figures(results)
    document = report.envelope(
        {"results": str(folder)},
        {
            "figures": rows,
            "plots": [p.name for p in plots],
            "sources": {name: doc.get("timestamp_utc") for name, doc in results.items()},
        },
        "performance",
    )
    path = folder / "performance.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(table(rows))
    say(f"figures written to {path}; plots: {', '.join(p.name for p in plots)}")
    return 0


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"  {'figure':<84}{'measured':>12}{'target':>12}{'baseline':>12}  met"]
    for row in rows:
        measured = "-" if row["measured"] is None else f"{row['measured']:,}"
        baseline = "-" if row["baseline"] is None else f"{row['baseline']:,}"
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        lines.append(f"  {row['figure']:<84}{measured:>12}{row['target']:>12}{baseline:>12}  {met}")
    return "\n".join(lines)


def draw(results: Results, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    drawn = []
    plotters: dict[str, Callable[[Any, dict[str, Any]], None]] = {
        "fanout": plot_fanout,
        "fanout-growth": plot_fanout_growth,
        "capacity": plot_capacity,
        "latency-curve": plot_latency_curve,
        "ingest": plot_ingest,
    }
    import matplotlib.pyplot as plt

    for name, plot in plotters.items():
        source = name.split("-growth")[0]
        if source not in results or (name != source and not results[source].get("growth")):
            continue
        figure = plt.figure(figsize=(10, 4), dpi=100)
        plot(figure, results[source])
        figure.tight_layout()
        path = folder / f"{name}.png"
        figure.savefig(path)
        plt.close(figure)
        drawn.append(path)
    return drawn


def plot_fanout(figure: Any, doc: dict[str, Any]) -> None:
    delivered, efficiency = figure.subplots(1, 2)
    for variant, found in doc["variants"].items():
        steps = [s for s in found["steps"] if s["converged"]]
        offered = [s["offered_frames_per_second"] for s in steps]
        frames = [s["delivered_frames_per_second"] for s in steps]
        delivered.plot(offered, frames, "o-", label=variant)
        efficiency.plot(
            offered, [s["frames_per_server_cpu_second"] for s in steps], "o-", label=variant
        )
    delivered.set(title="Frames delivered", xlabel="offered frames/s", ylabel="frames/s")
    efficiency.set(
        title="Frames per server CPU-second", xlabel="offered frames/s", ylabel="frames/CPU-s"
    )
    efficiency.axhline(200_000, color="grey", linestyle=":", label="target 200k")
    for axes in (delivered, efficiency):
        axes.legend()
        axes.grid(alpha=0.3)


def plot_fanout_growth(figure: Any, doc: dict[str, Any]) -> None:
    by_streams, by_tenants = figure.subplots(1, 2)
    points = [(g, g["steps"][0]) for g in doc["growth"] if g["steps"]]
    one = [(g, s) for g, s in points if g["tenants"] == 1]
    spread = [(g, s) for g, s in points if g["tenants"] > 1 or g["streams"] == 1000]
    for axes, chosen, key, label in (
        (by_streams, one, "streams", "streams on one tenant"),
        (by_tenants, sorted(spread, key=lambda gs: gs[0]["tenants"]), "tenants", "tenants"),
    ):
        xs = [g[key] for g, _ in chosen]
        axes.plot(xs, [s["frames_per_server_cpu_second"] for _, s in chosen], "o-")
        for (_g, s), x in zip(chosen, xs, strict=True):
            if not s["kept_up"]:
                axes.annotate("late", (x, s["frames_per_server_cpu_second"]))
        axes.set(xlabel=label, ylabel="frames per server CPU-s", xscale="log")
        axes.set_xticks(xs, [f"{x:,}" for x in xs], minor=False)
        axes.minorticks_off()
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
    offered = doc["parameters"]["growth_frames"]
    by_streams.set_title(f"Hub at {offered:,.0f} frames/s offered, as streams grow")
    by_tenants.set_title("... and as 1,000 streams spread over more tenants")


def plot_capacity(figure: Any, doc: dict[str, Any]) -> None:
    memory, teardown = figure.subplots(1, 2)
    for variant, found in doc["memory"].items():
        points = [p for p in found["points"] if p.get("rss_bytes")]
        memory.plot(
            [p["streams"] for p in points],
            [p["rss_bytes"] / 2**20 for p in points],
            "o-",
            label=f"{variant} ({found['bytes_per_idle_stream'] / 1000:.1f} KB/stream)",
        )
    memory.set(title="Server RSS with idle streams", xlabel="open streams", ylabel="MiB")
    for variant, found in doc["teardown"].items():
        timeline = [t for t in found["timeline"] if t[1] is not None]
        teardown.plot(
            [t[0] for t in timeline],
            [t[1] for t in timeline],
            label=f"{variant}: released in {found['seconds_to_released']:.2f} s",
        )
    teardown.set(
        title=f"Teardown of {doc['parameters']['teardown_streams']:,} streams",
        xlabel="seconds after the clients vanished",
        ylabel="streams the server still holds",
    )
    for axes in (memory, teardown):
        axes.legend()
        axes.grid(alpha=0.3)


def plot_latency_curve(figure: Any, doc: dict[str, Any]) -> None:
    titles = {
        "commit": "Commit -> receipt (committed at the rate)",
        "replay": "Publish -> receipt (committed beforehand)",
    }
    curves = doc["curves"]
    panels = figure.subplots(1, len(curves), squeeze=False)[0]
    for axes, (source, points) in zip(panels, curves.items(), strict=True):
        rate = [p["achieved_rate"] for p in points]
        for key, label in (("sse_ms", "SSE"), ("redis_direct_ms", "Redis direct")):
            axes.plot(rate, [p[key]["p99"] for p in points], "o-", label=f"{label} p99")
            axes.plot(rate, [p[key]["p50"] for p in points], "o--", label=f"{label} p50")
        axes.axhline(5.0, color="grey", linestyle=":", label="target p99 5 ms")
        axes.set(title=titles.get(source, source), xlabel="batches/s", ylabel="ms", yscale="log")
        axes.legend(fontsize="small")
        axes.grid(alpha=0.3)


def plot_ingest(figure: Any, doc: dict[str, Any]) -> None:
    axes = figure.subplots(1, 1)
    f = doc["figures"]
    copy = f.get("end_to_end_metrics_per_second") or {}
    orm = f.get("baseline_orm_row_at_a_time_metrics_per_second") or {}
    sizes = sorted(set(copy) | set(orm), key=int)
    xs = range(len(sizes))
    width = 0.4
    axes.bar([x - width / 2 for x in xs], [copy.get(s, 0) for s in sizes], width, label="the job")
    axes.bar([x + width / 2 for x in xs], [orm.get(s, 0) for s in sizes], width, label="ORM save()")
    axes.set_xticks(list(xs), [f"{int(s):,} metrics/batch" for s in sizes])
    axes.axhline(100_000, color="grey", linestyle=":", label="target 100k")
    axes.set(title="Ingest, end to end", ylabel="metrics/s")
    axes.legend()
    axes.grid(alpha=0.3, axis="y")
