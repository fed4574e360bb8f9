"""Results files (bench/results/<benchmark>.json): their common envelope, and the latency table."""

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.fixtures import REPO_ROOT

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LATENCY_BENCHMARK = "db-commit-to-sse-receipt-latency"


def git_commit() -> dict[str, Any] | None:
    """HEAD's hash, and whether the working tree had changes, if git is available."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            # Results files (rewritten by every run) do not make the code dirty.
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def machine() -> dict[str, Any]:
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        nproc = os.cpu_count() or 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"nproc": nproc, "loadavg_at_end": [round(v, 2) for v in load] if load else None}


def write(document: dict[str, Any], name: str = "latency") -> Path:
    """Write bench/results/<name>.json atomically: a .tmp file renamed over the result."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{name}.json"
    partial = target.with_suffix(".json.tmp")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(target)
    return target


def envelope(
    parameters: dict[str, Any], results: dict[str, Any], benchmark: str = LATENCY_BENCHMARK
) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "git": git_commit(),
        "machine": machine(),
        "parameters": parameters,
        **results,
    }


def _row(label: str, dist: dict[str, Any]) -> str:
    if not dist.get("count"):
        return f"  {label:<30} {'no samples':>10}"
    cells = "".join(f"{dist[k]:>9.2f}" for k in ("p50", "p90", "p99", "max"))
    return f"  {label:<30} {dist['count']:>10,}{cells}"


def table(document: dict[str, Any]) -> str:
    p = document["parameters"]
    b = document["batches"]
    d = document["deliveries"]
    lat = document["latency_ms"]
    cpu = document.get("cpu_percent_of_one_core", {})
    what = (
        "Publish -> receipt latency (batches committed beforehand)"
        if p.get("source") == "replay"
        else "DB commit -> receipt latency"
    )
    lines = [
        f"{what}, ms ({p['streams']} streams over {p['tenants']} tenants, "
        f"target {p['rate']:g} batches/s x {p['metrics_per_batch']} metrics, "
        f"{document['window_seconds']:g} s measured, nproc {document['machine']['nproc']})",
        f"  {'':<30} {'count':>10}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}",
        _row("Redis Pub/Sub direct (baseline)", lat["redis_direct"]),
        _row("SSE, every delivery", lat["sse"]),
        _row("SSE - Redis, same batch", lat["sse_minus_redis"]),
        _row("SSE, last stream of a batch", lat["sse_last_stream_of_batch"]),
        f"  SSE p99 / Redis p99 = {document['sse_p99_over_redis_p99']}",
        f"  batches: committed {b['committed']:,} ({b['commit_rate_per_second']:,.0f}/s of "
        f"{p['rate']:g}/s target), received by all streams {b['received_by_all_streams']:,}, "
        f"missing {b['missing']:,} (on every stream: {b['missing_on_every_stream']:,}; "
        f"Redis baseline missing {b['redis_missing']:,})",
        f"  deliveries: expected {d['expected']:,}, received {d['received']:,}, "
        f"missing {d['missing']:,}",
    ]
    server = document.get("server", {})
    if server:
        counters = server.get("status_at_end", {})
        lines.append(
            f"  server: streams open {server.get('streams_open_at_start')}, closed early "
            f"{server.get('streams_closed_early')}, overflows {counters.get('overflows')}, "
            f"frames dropped {counters.get('frames_dropped')}, reconnects "
            f"{counters.get('reconnects')}, streams after the clients closed "
            f"{server.get('streams_after_clients_closed')}"
        )
    if cpu:
        shown = ", ".join(f"{k} {v:g}" for k, v in cpu.items())
        lines.append(f"  CPU during the window (% of one core): {shown}")
    lines += [f"  WARNING: {w}" for w in document.get("warnings", [])]
    return "\n".join(lines)
