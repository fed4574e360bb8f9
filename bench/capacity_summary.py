"""The capacity benchmark's results document (slopes, held streams, teardown) and its table."""

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bench import fixtures, report

if TYPE_CHECKING:
    from bench.capacity import Parameters
    from bench.capacity_clients import Side

BENCHMARK = "capacity"
TARGET_BYTES_PER_STREAM = 16 * 1024
TARGET_STREAMS_HELD = 15000
TARGET_TEARDOWN_SECONDS = 1.0


def least_squares_slope(points: list[tuple[int, int]]) -> float | None:
    """Slope of the best-fit line through (x, y): the cost of one more stream."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def per_stream(points: list[dict[str, Any]], key: str) -> tuple[float | None, dict[str, float]]:
    """The least-squares slope of `key` over the points, and (value at N - at 0) / N per N."""
    measured = [(pt["streams"], pt[key]) for pt in points if pt.get(key) is not None]
    if not measured:
        return None, {}
    base_n, base = measured[0]
    at = {
        str(n): round((value - base) / (n - base_n), 1) for n, value in measured[1:] if n > base_n
    }
    slope = least_squares_slope(measured)
    return (round(slope, 1) if slope is not None else None), at


def memory_of(side: "Side") -> dict[str, Any]:
    slope, at = per_stream(side.points, "rss_bytes")
    client_slope, _ = per_stream(side.points, "client_rss_bytes")
    redis_slope, _ = per_stream(side.points, "redis_rss_bytes")
    fds_slope, _ = per_stream(side.points, "open_fds")
    return {
        "points": side.points,
        "bytes_per_idle_stream": slope,
        "bytes_per_idle_stream_at": at,
        "streams_held": side.held,
        "failed_at": side.failed_at,
        "open_failures": side.failures,
        "open_seconds": {str(k): v for k, v in side.open_seconds.items()},
        # Includes each client process's own ~30 MB interpreter: a ceiling, not the cost.
        "client_bytes_per_stream_incl_processes": client_slope,
        "redis_bytes_per_stream": redis_slope,
        "fds_per_stream": round(fds_slope, 3) if fds_slope is not None else None,
        "server_exit_code": side.exit_code,
        "server_log": side.log,
    }


def teardown_of(side: "Side") -> dict[str, Any] | None:
    if side.teardown is None:
        return None
    t = asdict(side.teardown)
    for key in ("seconds_to_released", "seconds_to_zero_streams", "seconds_to_zero_subscriptions"):
        if t[key] is not None:
            t[key] = round(t[key], 4)
    return t


def summarise(
    p: "Parameters", sides: dict[str, "Side"], extra: dict[str, Any], warnings: list[str]
) -> dict[str, Any]:
    memory = {label: memory_of(side) for label, side in sides.items()}
    teardown = {label: teardown_of(side) for label, side in sides.items()}
    product, baseline = memory.get("product", {}), memory.get("baseline", {})
    down, base_down = teardown.get("product") or {}, teardown.get("baseline") or {}
    figures = {
        "bytes_per_idle_stream": product.get("bytes_per_idle_stream"),
        "baseline_bytes_per_idle_stream": baseline.get("bytes_per_idle_stream"),
        "streams_held": product.get("streams_held"),
        "baseline_streams_held": baseline.get("streams_held"),
        "baseline_failed_at": baseline.get("failed_at"),
        "teardown_seconds_10k": down.get("seconds_to_released"),
        "teardown_streams": down.get("streams"),
        "baseline_teardown_seconds_10k": base_down.get("seconds_to_released"),
        "baseline_teardown_streams": base_down.get("streams"),
    }
    held, per, secs = (
        figures["streams_held"],
        figures["bytes_per_idle_stream"],
        figures["teardown_seconds_10k"],
    )
    figures["targets_met"] = {
        "bytes_per_idle_stream_le_16k": per is not None and per <= TARGET_BYTES_PER_STREAM,
        "streams_held_ge_15000": held is not None and held >= TARGET_STREAMS_HELD,
        "teardown_le_1s": secs is not None and secs <= TARGET_TEARDOWN_SECONDS,
    }
    parameters = {**asdict(p), **extra, "database": fixtures.database_name("capacity")}
    results = {
        "memory": memory,
        "teardown": teardown,
        "figures": figures,
        "warnings": list(warnings),
    }
    return report.envelope(parameters, results, BENCHMARK)


def _bytes(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} B"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _seconds(value: float | None) -> str:
    return "not released" if value is None else f"{value:.3f} s"


def table(document: dict[str, Any]) -> str:
    memory, teardown, figures = document["memory"], document["teardown"], document["figures"]
    lines = ["Memory per idle stream: server RSS after settling (MiB), fds, tasks"]
    header = f"  {'streams':>8}"
    for label in memory:
        header += f" | {label + ' RSS':>13} {'B/stream':>9} {'fds':>6} {'tasks':>6}"
    lines.append(header)
    targets = sorted({pt["target_streams"] for m in memory.values() for pt in m["points"]})
    for n in targets:
        row = f"  {n:>8,}"
        for m in memory.values():
            found = [pt for pt in m["points"] if pt["target_streams"] == n]
            if not found:
                row += f" | {'(not reached)':>13} {'':>9} {'':>6} {'':>6}"
                continue
            pt = found[0]
            per = m["bytes_per_idle_stream_at"].get(str(pt["streams"]))
            shown = f"{pt['streams']:,}" if pt["streams"] != n else ""
            cell = f"{_mib(pt['rss_bytes'])}{' @' + shown if shown else ''}"
            per_cell = f"{per:,.0f}" if per is not None else "-"
            row += f" | {cell:>13} {per_cell:>9} {pt['open_fds'] or '-':>6} {pt['tasks'] or '-':>6}"
        lines.append(row)
    for label, m in memory.items():
        failed = f", failed at {m['failed_at']:,}" if m["failed_at"] else ""
        lines.append(
            f"  {label}: {_bytes(m['bytes_per_idle_stream'])} per idle stream (least squares), "
            f"held {m['streams_held']:,} streams{failed}; per stream also: Redis "
            f"{_bytes(m['redis_bytes_per_stream'])}, fds {m['fds_per_stream']}, clients "
            f"{_bytes(m['client_bytes_per_stream_incl_processes'])} (with their interpreters)"
        )
    lines.append("Teardown: client processes SIGKILLed -> 0 streams and 0 Redis subscribers")
    for label, t in teardown.items():
        if t is None:
            continue
        lines.append(
            f"  {label}: {t['streams']:,} streams released in {_seconds(t['seconds_to_released'])}"
            f" (streams 0 at {_seconds(t['seconds_to_zero_streams'])}, subscriptions 0 at "
            f"{_seconds(t['seconds_to_zero_subscriptions'])}; server CPU "
            f"{t['server_cpu_seconds']} s; answers: status {t['status_answers']}, "
            f"Redis {t['redis_answers']})"
        )
    met = figures["targets_met"]
    lines.append(
        "Targets: <= 16 KiB per idle stream "
        f"{'met' if met['bytes_per_idle_stream_le_16k'] else 'NOT met'}, >= 15,000 held "
        f"{'met' if met['streams_held_ge_15000'] else 'NOT met'}, teardown <= 1 s "
        f"{'met' if met['teardown_le_1s'] else 'NOT met'}"
    )
    lines += [f"  WARNING: {w}" for w in document.get("warnings", [])]
    return "\n".join(lines)
