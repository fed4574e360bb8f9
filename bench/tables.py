"""The short tables printed at the end of the recovery and overload benchmarks."""

from typing import Any


def _s(value: float | None, unit: str = "s") -> str:
    return "n/a" if value is None else f"{value:.3f} {unit}"


def _n(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _exactness(e: dict[str, Any], finished: bool = True) -> str:
    # Before every stream finished, a missing delivery may still have been on its way.
    missing = "lost" if finished else "MISSING when the wait ended (pending, or lost)"
    return (
        f"  exactly once: {e['streams']:,} streams, expected {e['expected']:,} deliveries, "
        f"received {e['received']:,}; {missing} {e['lost']:,} (streams with loss "
        f"{e['streams_with_loss']}, max per stream {e['max_lost_per_stream']}), duplicated "
        f"{e['duplicated']:,} (streams {e['streams_with_duplicates']}, max per stream "
        f"{e['max_duplicated_per_stream']}), unexpected {e['unexpected']:,}"
    )


def _cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in cpu.items())


def recovery_table(document: dict[str, Any]) -> str:
    p = document["parameters"]
    a = document["phase_a_steady"]
    b = document["phase_b_outage"]
    c = document["phase_c_healing"]
    during = b["status_during"]
    lines = [
        f"Redis outage recovery ({p['streams']:,} streams over {p['tenants']} tenants, "
        f"{p['metrics_per_batch']} metrics per batch, nproc {document['machine']['nproc']})",
        f"  A steady:  {a['committed']:,} batches at {_n(a['commit_rate_per_second'])}/s; "
        f"deliveries {a['deliveries_received']:,}/{a['deliveries_expected']:,}; every stream "
        f"complete: {a['every_stream_complete']}",
        f"  B outage:  Redis stopped {_s(b['redis_stopped_s'])} after SIGTERM, hub logged the "
        f"loss at {_s(b['server_log_lost_s'])} (status said so by "
        f"{_s(b['status_disconnected_by_s'])});\n             "
        f"{b['committed']:,} batches committed in {b['commit_seconds']:.1f} s, PUBLISH failed "
        f"{b['publish_failures']:,}/{b['publish_calls']:,}; status: broker {during['broker']}, "
        f"streams {during['streams']}, behind {during['streams_behind']}",
        "  C healing, from Redis restarted (T0):",
        f"    Redis answering PING                    {_s(c['redis_answering_s'])}",
        f"    hub reconnected (seen in CLIENT LIST)   {_s(c['hub_reconnect_s'])}"
        f"   [server log {_s(c['server_log_restored_s'])}; status connected by "
        f"{_s(c['status_connected_s'])}]",
        f"    all tenant channels subscribed again    {_s(c['all_channels_subscribed_s'])}",
        f"    first replayed delivery                 {_s(c['first_replayed_delivery_s'])}",
        f"    EVERY stream caught up (T_all - T0)     {_s(c['all_streams_caught_up_s'])}",
        f"    catch-up: {c['replayed_deliveries']:,} deliveries of {c['replayed_batches']:,} "
        f"batches in {c['catch_up_seconds']:.3f} s (first to last) = "
        f"{_n(c['catch_up_deliveries_per_second'])} deliveries/s, "
        f"{_n(c['catch_up_batches_per_second'])} distinct batches/s "
        f"({_n(c['deliveries_per_second_from_t0'])} deliveries/s counted from T0)",
        f"    server: catch_up_batches +{c['catch_up_batches_delta']:,}, catch_ups "
        f"+{c['catch_ups_delta']:,}, reconnects +{c['reconnects_delta']}; outage batches "
        f"delivered before T0: {c['outage_batches_delivered_before_t0']}",
        f"    CPU from T0 to caught up (% of one core): {_cpu(c['cpu_percent_of_one_core'])}",
        _exactness(document["exactly_once"], c["every_stream_complete"]),
    ]
    checks = document["checks"]
    lines.append(
        f"  checks: bad frames {checks['bad_frames']}, out of order "
        f"{checks['out_of_order_frames']}, resets {checks['reset_frames']}, streams closed "
        f"early {checks['streams_closed_early']}"
    )
    lines += [f"  WARNING: {w}" for w in document.get("warnings", [])]
    return "\n".join(lines)


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.2f} MB"


def overload_table(document: dict[str, Any]) -> str:
    p = document["parameters"]
    o = document["overload"]
    pub = o["publish"]
    delta = o["server_counters_delta"]
    buf = o["output_buffer"]
    limits = buf.get("pubsub_limits", {})
    marks = o["timeline_s_after_publishing_started"]
    times = {
        "closed": marks["redis_closed_hub_for_output_buffer"] or "never",
        "lost": marks["server_logged_connection_lost"] or "never",
        "restored": marks["server_logged_connection_restored"] or "never",
    }
    after = o["every_stream_every_batch_s_after_publishing_stopped"]
    converged = _s(after) if o["converged"] else f"NOT within {p['converge_timeout']:g} s"
    lines = [
        f"Fan-out overload ({p['streams']:,} streams over {p['tenants']} tenants = "
        f"{p['streams_per_tenant']:g} per tenant, {p['metrics_per_batch']} metrics per batch, "
        f"nproc {document['machine']['nproc']})",
        f"  {'ramp step':<10}{'offered f/s':>12}{'delivered f/s':>15}{'server CPU%':>13}"
        f"{'overflows':>11}{'converged after':>17}",
    ]
    for step in document["ramp"]:
        cpu = step["cpu_percent_of_one_core"].get("server", 0.0)
        lines.append(
            f"  {step['step']:<10}{step['offered_frames_per_second']:>12,}"
            f"{step['delivered_frames_per_second_exact']:>15,}{cpu:>13.0f}"
            f"{step['overflows']:>11,}{step['converged_after_publishing_s']:>15.2f} s"
        )
    lines += [
        f"  capacity: {document['capacity_frames_per_second']:,} frames/s delivered "
        f"({document['capacity_batches_per_second']:,} batches/s published)",
        f"  overload at {p['factor']:g}x: offered {o['offered_frames_per_second']:,} frames/s = "
        f"{pub['rate_per_second']:,.0f} batches/s for {pub['seconds']:.2f} s "
        f"({pub['batches']:,} batches, {_mb(pub['payload_bytes'])} of payload)",
        f"    delivered while publishing: {o['delivered_frames_per_second_while_publishing']:,} "
        f"frames/s; CPU (% of one core): {_cpu(o['cpu_percent_of_one_core_publishing'])}",
        f"    server: overflows +{delta['overflows']:,}, frames_dropped "
        f"+{delta['frames_dropped']:,}, catch_ups +{delta['catch_ups']:,}, catch_up_batches "
        f"+{delta['catch_up_batches']:,}, resets +{delta['resets']}, reconnects "
        f"+{delta['reconnects']}",
        f"    Redis: hub connection omem peak {_mb(buf['peak_omem_bytes'])} "
        f"({buf['peak_at_s_after_publishing_started']:.2f} s into publishing), at publishing "
        f"end {_mb(buf['omem_at_publishing_end_bytes'])}; pubsub limit hard "
        f"{_mb(limits.get('hard_bytes'))}, soft {_mb(limits.get('soft_bytes'))} for "
        f"{limits.get('soft_seconds', 'n/a')} s",
        f"    omem grew {_mb(buf['growth_bytes_per_second_to_peak'])}/s up to its peak: at "
        f"that rate it reaches the hard limit "
        f"{_s(buf.get('seconds_to_hard_limit_at_that_growth'))} after publishing starts",
        f"    hub disconnected by Redis: {'YES' if o['hub_disconnected_by_redis'] else 'no'} "
        f"(output-buffer lines in the Redis log: {len(o['redis_log_output_buffer_lines'])}, "
        f"hub connection ids seen: {buf['hub_connection_ids_seen']})",
        f"    timeline, s after publishing started: Redis closed the hub {times['closed']}; "
        f"server logged the loss {times['lost']}, the restore {times['restored']}; "
        f"publishing ended {pub['seconds']:.2f}",
        f"    every stream had every batch {converged} after publishing stopped "
        f"({o['delivered_frames_per_second_while_converging']:,} frames/s meanwhile); CPU "
        f"meanwhile: {_cpu(o['cpu_percent_of_one_core_converging'])}",
        _exactness(document["exactly_once"], o["converged"]),
    ]
    checks = document["checks"]
    lines.append(
        f"  checks: bad frames {checks['bad_frames']}, out of order "
        f"{checks['out_of_order_frames']}, resets {checks['reset_frames']}, streams closed "
        f"early {checks['streams_closed_early']}"
    )
    lines += [f"  WARNING: {w}" for w in document.get("warnings", [])]
    return "\n".join(lines)
