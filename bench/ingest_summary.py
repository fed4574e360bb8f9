"""The ingest benchmark's results: receipts matched to batches, figures, and the table."""

from typing import TYPE_CHECKING, Any

from bench import delivery

if TYPE_CHECKING:
    from bench.ingest import Measurement, Run


def matched(m: "Measurement", views: list[delivery.StreamView]) -> dict[str, Any]:
    """A measurement's batches (each tenant's seqs in (before, after]) and their receipts."""
    expected = sum(m.after.get(t, 0) - m.before.get(t, 0) for t in m.after)
    distinct = duplicated = 0
    last = 0.0
    for view in views:
        lo, hi = m.before.get(view.tenant, 0), m.after.get(view.tenant, 0)
        seen: set[int] = set()
        for seq, moment in zip(view.seqs, view.times, strict=True):
            if lo < seq <= hi:
                if seq in seen:
                    duplicated += 1
                else:
                    seen.add(seq)
                    last = max(last, moment)
        distinct += len(seen)
    seconds = last - m.first_sent if last and m.first_sent else 0.0
    received = distinct * m.metrics_per_batch
    return {
        "variant": m.variant,
        "metrics_per_batch": m.metrics_per_batch,
        "batches": m.accepted,
        "committed": expected,
        "seconds": round(seconds, 3),
        "posting_seconds": round(m.posted_by - m.first_sent, 3),
        "metrics_per_second": round(received / seconds) if seconds > 0 else 0,
        "batches_per_second": round(distinct / seconds, 1) if seconds > 0 else 0,
        # Accepted but never committed counts as lost, as does committed but never received.
        "lost": max(0, m.accepted - expected) + (expected - distinct),
        "duplicated": duplicated,
        "complete": m.complete,
        "job_failures": m.job_failures,
        "statuses": {str(k): v for k, v in m.statuses.items()},
        "errors": m.errors,
        "cpu_seconds": m.cpu_seconds,
        # Robust to a busy machine, unlike metrics/s: what each metric cost every group.
        "cpu_microseconds_per_metric": per_metric(m.cpu_seconds, received),
    }


def per_metric(cpu: dict[str, float], metrics: int) -> dict[str, float]:
    if not metrics:
        return {}
    groups = {k: v for k, v in cpu.items() if k not in NOT_GROUPS}
    found = {k: round(v * 1e6 / metrics, 1) for k, v in groups.items()}
    found["total"] = round(sum(groups.values()) * 1e6 / metrics, 1)
    return found


def summarise(state: "Run", document: dict[str, Any]) -> dict[str, Any]:
    views = delivery.stream_views(state.client_results)
    runs = [matched(m, views) for m in state.measurements]
    for r in runs:
        if r["lost"] or r["duplicated"]:
            state.warnings.warn(
                f"{r['variant']}/{r['metrics_per_batch']}: lost {r['lost']}, "
                f"duplicated {r['duplicated']}"
            )

    def rates(variant: str) -> dict[str, int]:
        return {
            str(r["metrics_per_batch"]): r["metrics_per_second"]
            for r in runs
            if r["variant"] == variant
        }

    copy = rates("copy")
    baseline = rates(state.p.baseline)
    figures: dict[str, Any] = {
        "end_to_end_metrics_per_second": copy,
        f"baseline_{state.p.baseline.replace('-', '_')}_metrics_per_second": baseline,
        "speedup_over_baseline": {
            size: round(copy[size] / baseline[size], 1)
            for size in copy
            if baseline.get(size) and size != "10"
        },
    }
    http = state.http
    if http is not None:
        seconds = http.posted_by - http.first_sent
        per_second = http.accepted / seconds if seconds > 0 else 0.0
        figures["http_requests_per_second"] = round(per_second)
        figures["http_metrics_per_second"] = round(per_second * http.metrics_per_batch)
        document["http_only"] = {
            "metrics_per_batch": http.metrics_per_batch,
            "accepted": http.accepted,
            "seconds": round(seconds, 3),
            "statuses": {str(k): v for k, v in http.statuses.items()},
            "errors": http.errors,
            "jobs_queued": state.queued_after_http,
            "cpu_seconds": http.cpu_seconds,
        }
        if state.queued_after_http != http.accepted:
            state.warnings.warn(
                f"HTTP only: {http.accepted} POSTs accepted but {state.queued_after_http} queued"
            )
    # If these processes had the machine's cores to themselves and kept them all busy. An
    # upper bound: CPU of PostgreSQL backends that exited within the window is not counted.
    cores = document["machine"]["nproc"]
    figures["cpu_bound_ceiling_metrics_per_second"] = {
        str(r["metrics_per_batch"]): round(cores * 1e6 / r["cpu_microseconds_per_metric"]["total"])
        for r in runs
        if r["variant"] == "copy" and r["cpu_microseconds_per_metric"].get("total")
    }
    document["figures"] = figures
    document["runs"] = runs
    document["warnings"] = list(state.warnings)
    return document


# Keys of cpu_seconds that are not a group of processes.
NOT_GROUPS = {"machine_busy", "everything_else", "wall"}
CPU_COLUMNS = ("server", "workers", "postgres", "redis", "load_generators", "sse_clients")


def table(document: dict[str, Any]) -> str:
    f = document["figures"]
    lines = [
        f"Ingest throughput: POST -> job -> commit -> SSE receipt "
        f"(nproc {document['machine']['nproc']}, {document['parameters']['concurrency']} "
        "worker processes)",
        f"  {'variant':<18}{'batch':>6}{'batches':>9}{'seconds':>9}{'metrics/s':>11}"
        f"{'lost':>6}{'dup':>5}   CPU s: " + " ".join(f"{c[:8]:>8}" for c in CPU_COLUMNS),
    ]
    for r in document["runs"]:
        cpu = r["cpu_seconds"]
        lines.append(
            f"  {r['variant']:<18}{r['metrics_per_batch']:>6}{r['batches']:>9,}"
            f"{r['seconds']:>9.2f}{r['metrics_per_second']:>11,}{r['lost']:>6}"
            f"{r['duplicated']:>5}          "
            + " ".join(f"{cpu.get(c, 0.0):>8.2f}" for c in CPU_COLUMNS)
        )
    if "http_requests_per_second" in f:
        h = document["http_only"]
        lines.append(
            f"  HTTP only (no worker, batches of {h['metrics_per_batch']}): "
            f"{f['http_requests_per_second']:,} POSTs/s = {f['http_metrics_per_second']:,} "
            f"metrics/s ({h['accepted']:,} accepted in {h['seconds']:.2f}s; server CPU "
            f"{h['cpu_seconds'].get('server', 0.0):.2f}s)"
        )
    lines.append("  CPU µs per metric, copy:")
    for r in document["runs"]:
        if r["variant"] == "copy":
            cost = ", ".join(f"{k} {v:g}" for k, v in r["cpu_microseconds_per_metric"].items())
            lines.append(f"    batches of {r['metrics_per_batch']:>5}: {cost}")
    ceiling = f.get("cpu_bound_ceiling_metrics_per_second") or {}
    if ceiling:
        shown = ", ".join(f"{k}: {v:,}" for k, v in ceiling.items())
        lines.append(f"  CPU-bound ceiling with every core ours, metrics/s: {shown}")
        lines.append("    (an upper bound: PostgreSQL backends that exit meanwhile count nothing)")
    load = document["machine"]["loadavg_at_end"]
    lines.append(f"  load average at the end: {load} (the machine is shared; see CPU µs)")
    if f["speedup_over_baseline"]:
        shown = ", ".join(f"{k}: {v:g}x" for k, v in f["speedup_over_baseline"].items())
        lines.append(f"  speed-up over the baseline by batch size: {shown}")
    lines += [f"  WARNING: {w}" for w in document.get("warnings", [])]
    return "\n".join(lines)
