"""The recovery benchmark's results document: the three phases and the exactly-once check."""

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from bench import delivery, fixtures, report

if TYPE_CHECKING:
    from bench.recovery import Run

BENCHMARK = "redis-outage-recovery"


def summarise(r: "Run") -> dict[str, Any]:
    p = r.p
    views = delivery.stream_views(r.results)
    steady, outage, healing = r.found["steady"], r.found["outage"], r.found["healing"]
    t0 = healing["t0"]
    a_targets, b_targets = steady["targets"], outage["targets"]
    final = delivery.check(views, b_targets)
    phase_a = delivery.span(views, {t: (0, seq) for t, seq in a_targets.items()})
    a_expected = sum(max(0, a_targets.get(v.tenant, 0) - max(v.start, 0)) for v in views)
    ranges = {t: (a_targets.get(t, 0), seq) for t, seq in b_targets.items()}
    replay = delivery.span(views, ranges, after=t0)
    caught_up = since(t0, final.complete_at)
    seconds = replay.seconds
    exactly_once = final.as_dict()
    exactly_once["complete_at"] = caught_up  # seconds after T0
    results: dict[str, Any] = {
        "phase_a_steady": {
            "committed": steady["committed"],
            "commit_rate_per_second": steady["commit_rate_per_second"],
            "deliveries_expected": a_expected,
            "deliveries_received": phase_a.deliveries,
            "every_stream_complete": steady["every_stream_complete"],
            "last_delivery_after_last_commit_s": since(steady["last_commit"], phase_a.last),
        },
        "phase_b_outage": {k: v for k, v in outage.items() if k != "targets"},
        "phase_c_healing": {
            **{k: v for k, v in healing.items() if k != "t0"},
            "all_streams_caught_up_s": caught_up,
            "hub_reconnect_s": healing["hub_connection_in_client_list_s"],
            "replayed_deliveries": replay.deliveries,
            "replayed_batches": replay.batches,
            "outage_batches_delivered_before_t0": replay.earlier,
            "first_replayed_delivery_s": since(t0, replay.first),
            "last_replayed_delivery_s": since(t0, replay.last),
            "catch_up_seconds": round(seconds, 3),
            "catch_up_deliveries_per_second": round(replay.deliveries / seconds)
            if seconds
            else None,
            "catch_up_batches_per_second": round(replay.batches / seconds) if seconds else None,
            "deliveries_per_second_from_t0": (
                round(replay.deliveries / caught_up) if caught_up else None
            ),
        },
        "exactly_once": exactly_once,
        "checks": {
            "bad_frames": sum(x.bad_frames for x in r.results),
            "out_of_order_frames": sum(x.out_of_order for x in r.results),
            "reset_frames": sum(x.resets for x in r.results),
            "streams_closed_early": sum(x.closed_early for x in r.results),
            "stream_open_failures": r.opened.failures if r.opened else {},
        },
        "server": {
            "streams_open_at_start": r.opened.status.get("streams") if r.opened else None,
            "streams_after_clients_closed": r.found.get("streams_after_clients_closed"),
            "exit_code": r.found.get("server_exit_code"),
            "log": str(r.server.log) if r.server else None,
        },
        "redis": {
            "port": r.own.port,
            "log": str(r.own.log),
        },
    }
    if not healing["every_stream_complete"]:
        r.warnings.warn(
            f"{final.lost:,} deliveries still missing when the wait ended (--timeout "
            f"{p.timeout:g}s): lost or not yet delivered"
        )
    if (final.lost and healing["every_stream_complete"]) or final.duplicated or final.unexpected:
        r.warnings.warn(
            f"exactly-once violated: lost {final.lost}, duplicated {final.duplicated}, "
            f"unexpected {final.unexpected}"
        )
    results["warnings"] = list(r.warnings)
    parameters = {
        **asdict(p),
        "streams_per_tenant": p.streams / p.tenants,
        "database": fixtures.database_name("recovery"),
        "client_event_loop": r.results[0].loop if r.results else None,
    }
    return report.envelope(parameters, results, BENCHMARK)


def since(t0: float, moment: float | None) -> float | None:
    return round(moment - t0, 3) if moment is not None else None
