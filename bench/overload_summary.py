"""The overload benchmark's results document: ramp, overload, output buffer, exactly-once."""

from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bench import delivery, fixtures, report

if TYPE_CHECKING:
    from bench.overload import Run

BENCHMARK = "pubsub-reader-under-fanout-overload"


STATUS_KEYS = (
    "broker",
    "reconnects",
    "streams_behind",
    "overflows",
    "frames_dropped",
    "catch_ups",
    "catch_up_batches",
    "resets",
)


def changes(samples: Iterable[tuple[float, Any]]) -> list[tuple[float, Any]]:
    """The (time, value) samples whose value differs from the previous sample's."""
    kept: list[tuple[float, Any]] = []
    for moment, value in samples:
        if not kept or kept[-1][1] != value:
            kept.append((moment, value))
    return kept


def pubsub_limits(config: str) -> dict[str, int]:
    """The pubsub class of `client-output-buffer-limit`: hard and soft bytes, soft seconds."""
    words = config.split()
    if "pubsub" not in words:
        return {}
    i = words.index("pubsub")
    hard, soft, seconds = (int(w) for w in words[i + 1 : i + 4])
    return {"hard_bytes": hard, "soft_bytes": soft, "soft_seconds": seconds}


def output_buffer(o: "Run") -> dict[str, Any]:
    """The hub connection's output buffer at Redis during the overload, and what it means."""
    ov = o.found["overload"]
    started, ended = ov["publish"]["started"], ov["publish"]["ended"]
    samples = [(t, sum(c["omem"] or 0 for c in value), value) for t, value in ov["omem_samples"]]
    ids = sorted({c["id"] for _, _, value in samples for c in value})
    peak_t, peak, _ = max(samples, key=lambda x: x[1], default=(started, 0, []))
    at_end = [omem for t, omem, _ in samples if t <= ended]
    limits = pubsub_limits(o.found.get("redis_output_buffer_limit", ""))
    growth = peak / (peak_t - started) if peak and peak_t > started else 0.0
    found: dict[str, Any] = {
        "peak_omem_bytes": peak,
        "peak_at_s_after_publishing_started": round(peak_t - started, 3),
        "omem_at_publishing_end_bytes": at_end[-1] if at_end else None,
        "samples": len(samples),
        "hub_connection_ids_seen": ids,
        "hub_connection_missing_in_samples": sum(1 for _, _, value in samples if not value),
        "pubsub_limits": limits,
        "growth_bytes_per_second_to_peak": round(growth),
    }
    if growth and limits.get("hard_bytes"):
        found["seconds_to_hard_limit_at_that_growth"] = round(limits["hard_bytes"] / growth, 1)
    return found


def summarise(o: "Run") -> dict[str, Any]:
    p = o.p
    views = delivery.stream_views(o.results)
    final = delivery.check(views, o.targets)
    ov = o.found["overload"]
    started, ended = ov["publish"]["started"], ov["publish"]["ended"]
    before, after = ov["status_before"], ov["status_after"]
    counters = ("overflows", "frames_dropped", "catch_ups", "catch_up_batches", "resets")
    server_delta = {k: after[k] - before[k] for k in (*counters, "reconnects")}
    converged_s = (final.complete_at - ended) if final.complete_at else None
    wait_end = final.complete_at or ov["converged_seen_at"]
    converging_rate = delivery.rate_between(views, ended, wait_end)
    for step in o.steps:
        step["delivered_frames_per_second_exact"] = round(
            delivery.rate_between(views, *step["window"])
        )
    buffer = output_buffer(o)
    log_lines = ov["redis_log_output_buffer_lines"]
    disconnected = (
        bool(log_lines)
        or server_delta["reconnects"] > 0
        or len(buffer["hub_connection_ids_seen"]) > 1
    )
    exactly_once = final.as_dict()
    exactly_once["complete_at"] = round(converged_s, 3) if converged_s is not None else None
    results: dict[str, Any] = {
        "capacity_frames_per_second": o.found["capacity_frames_per_second"],
        "capacity_batches_per_second": round(
            o.found["capacity_frames_per_second"] * p.tenants / o.fan_out, 1
        ),
        "ramp": o.steps,
        "overload": {
            "factor": p.factor,
            "offered_frames_per_second_target": ov["offered_frames_per_second_target"],
            "offered_frames_per_second": round(
                ov["publish"]["batches"] * o.fan_out / p.tenants / (ended - started)
            ),
            "publish": ov["publish"],
            "delivered_frames_per_second_while_publishing": round(
                delivery.rate_between(views, started, ended)
            ),
            "server_counters_delta": server_delta,
            "hub_disconnected_by_redis": disconnected,
            "redis_log_output_buffer_lines": log_lines,
            "output_buffer": buffer,
            "converged": ov["converged"],
            "every_stream_every_batch_s_after_publishing_stopped": round(converged_s, 3)
            if converged_s is not None
            else None,
            "delivered_frames_per_second_while_converging": round(converging_rate),
            "timeline_s_after_publishing_started": ov["timeline"],
            "cpu_percent_of_one_core_publishing": ov["cpu_publishing"],
            "cpu_percent_of_one_core_converging": ov["cpu_converging"],
            "status_before": before,
            "status_after": after,
            "redis_info": ov["redis_info"],
            "poll_errors": ov["poll_errors"],
            # Only the samples that differ from the one before.
            "omem_samples_t_id_omem": changes(
                (t, [[c["id"], c["omem"]] for c in value]) for t, value in ov["omem_samples"]
            ),
            "status_samples": changes(
                (t, {k: value.get(k) for k in STATUS_KEYS}) for t, value in ov["status_samples"]
            ),
        },
        "exactly_once": exactly_once,
        "checks": {
            "bad_frames": sum(x.bad_frames for x in o.results),
            "out_of_order_frames": sum(x.out_of_order for x in o.results),
            "reset_frames": sum(x.resets for x in o.results),
            "streams_closed_early": sum(x.closed_early for x in o.results),
            "stream_open_failures": o.opened.failures if o.opened else {},
        },
        "server": {
            "streams_open_at_start": o.opened.status.get("streams") if o.opened else None,
            "streams_after_clients_closed": o.found.get("streams_after_clients_closed"),
            "exit_code": o.found.get("server_exit_code"),
            "log": str(o.server.log) if o.server else None,
        },
        "redis": {"port": o.own.port, "log": str(o.own.log)},
    }
    if not ov["converged"]:
        o.warnings.warn(
            f"{final.lost:,} deliveries still missing when the wait ended "
            f"(--converge-timeout {p.converge_timeout:g}s): lost or not yet delivered"
        )
    if (final.lost and ov["converged"]) or final.duplicated or final.unexpected:
        o.warnings.warn(
            f"exactly-once violated: lost {final.lost}, duplicated {final.duplicated}, "
            f"unexpected {final.unexpected}"
        )
    results["warnings"] = list(o.warnings)
    parameters = {
        **asdict(p),
        "streams_per_tenant": p.streams / p.tenants,
        "database": fixtures.database_name("overload"),
        "batches_committed": o.committed_per_tenant * p.tenants,
        "client_event_loop": o.results[0].loop if o.results else None,
    }
    return report.envelope(parameters, results, BENCHMARK)
