"""Matching commits to receipts, and the latency distributions.

A batch is identified by (tenant index, seq). Only batches committed inside the
measurement window count; those committed during warm-up are delivered but ignored.
"""

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.committer import CommitterResult
from bench.sseclient import ClientResult

PERCENTILES = (50, 90, 99)


def _key(tenant: int, seq: int) -> int:
    return (tenant << 40) | seq


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def distribution(values: Iterable[float], scale: float = 1000.0) -> dict[str, float | int]:
    """count, p50/p90/p99, max, min and mean; values in seconds, reported in ms."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    result: dict[str, float | int] = {"count": len(ordered)}
    for q in PERCENTILES:
        result[f"p{q}"] = round(percentile(ordered, q) * scale, 3)
    result["max"] = round(ordered[-1] * scale, 3)
    result["min"] = round(ordered[0] * scale, 3)
    result["mean"] = round(sum(ordered) / len(ordered) * scale, 3)
    return result


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def analyse(committers: list[CommitterResult], clients: list[ClientResult], window: Window) -> dict:
    # Commits: every batch, and those of the measurement window.
    committed: dict[int, float] = {}
    all_commits = 0
    for result in committers:
        for tenant, seq, moment in zip(
            result.tenants, result.seqs, result.commit_times, strict=True
        ):
            all_commits += 1
            if window.start <= moment < window.end:
                committed[_key(tenant, seq)] = moment

    # Streams actually open per tenant: how many deliveries each batch should have.
    streams_of: dict[int, int] = {}
    for client in clients:
        for spec, opened in zip(client.streams, client.opened, strict=True):
            if opened:
                streams_of[spec.tenant] = streams_of.get(spec.tenant, 0) + 1

    # The Redis baseline.
    redis_at: dict[int, float] = {}
    for client in clients:
        for tenant, seq, moment in zip(
            client.redis_tenants, client.redis_seqs, client.redis_times, strict=True
        ):
            redis_at.setdefault(_key(tenant, seq), moment)
    redis_latency = [redis_at[k] - t for k, t in committed.items() if k in redis_at]

    # SSE deliveries: one per (batch, open stream of its tenant).
    sse_latency = array("d")
    overhead = array("d")
    received: dict[int, int] = {}
    last_receipt: dict[int, float] = {}
    for client in clients:
        for spec, seqs, times in zip(client.streams, client.seqs, client.times, strict=True):
            base = spec.tenant << 40
            for seq, moment in zip(seqs, times, strict=True):
                key = base | seq
                commit = committed.get(key)
                if commit is None:
                    continue
                sse_latency.append(moment - commit)
                received[key] = received.get(key, 0) + 1
                if moment > last_receipt.get(key, 0.0):
                    last_receipt[key] = moment
                via_redis = redis_at.get(key)
                if via_redis is not None:
                    overhead.append(moment - via_redis)

    expected = sum(streams_of.get(k >> 40, 0) for k in committed)
    complete = sum(1 for k in committed if received.get(k, 0) >= streams_of.get(k >> 40, 0))
    untouched = sum(1 for k in committed if k not in received)
    fan_out_done = [last_receipt[k] - committed[k] for k in last_receipt]

    redis = distribution(redis_latency)
    sse = distribution(sse_latency)
    ratio = None
    if redis.get("p99") and sse.get("p99"):
        ratio = round(sse["p99"] / redis["p99"], 2)
    return {
        "window_seconds": round(window.seconds, 3),
        "batches": {
            "committed_total_incl_warmup": all_commits,
            "committed": len(committed),
            "commit_rate_per_second": round(len(committed) / window.seconds, 1),
            "received_by_all_streams": complete,
            "missing": len(committed) - complete,
            "missing_on_every_stream": untouched,
            "redis_received": len(redis_latency),
            "redis_missing": len(committed) - len(redis_latency),
        },
        "deliveries": {
            "expected": expected,
            "received": len(sse_latency),
            "missing": expected - len(sse_latency),
        },
        "latency_ms": {
            "redis_direct": redis,
            "sse": sse,
            "sse_minus_redis": distribution(overhead),
            "sse_last_stream_of_batch": distribution(fan_out_done),
        },
        "sse_p99_over_redis_p99": ratio,
        "committer_ms": {
            "store_submission": distribution(v for r in committers for v in r.store_seconds),
            "publish_call": distribution(v for r in committers for v in r.publish_seconds),
        },
    }
