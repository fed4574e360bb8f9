"""A committer process: calls the real job body, store_submission, at a paced rate.

The commit time of a batch is taken when its on_commit callback calls the
module-level `publish` (store_submission looks that global up when the callback
runs), i.e. right after COMMIT returned and right before the Redis PUBLISH.
The wrapper only appends (time, channel, payload) to a list; the payloads are
decoded after the run so the wrapper adds next to nothing to the latency.

Each committer owns a disjoint slice of the tenants (tenants[index::count]) and
cycles through it, so committers never wait on one another's tenant row locks.
Pacing is open-loop: batch i is due at start + i / rate; a committer that falls
behind commits back to back, and the achieved rate is what gets reported.
"""

import json
import os
import random
import time
import uuid
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.children import answer

PROGRESS_SECONDS = 0.5
# How long a committer waits for the parent's "go" before giving up.
GO_TIMEOUT_SECONDS = 600.0
# How long a committer that has reported waits for the parent's "exit".
EXIT_TIMEOUT_SECONDS = 600.0
METRIC_NAMES = ("cpu_percent", "memory_used_bytes", "http_requests_per_second", "disk_io", "load")


@dataclass(frozen=True)
class CommitterConfig:
    index: int
    count: int
    tenants: list[str]  # every tenant's UUID; this committer uses tenants[index::count]
    rate: float  # this committer's target, batches per second
    metrics_per_batch: int


@dataclass
class CommitterResult:
    index: int
    # Parallel arrays, one entry per committed batch: tenant index, seq, commit time.
    tenants: array = field(default_factory=lambda: array("i"))
    seqs: array = field(default_factory=lambda: array("q"))
    commit_times: array = field(default_factory=lambda: array("d"))
    # Time spent inside store_submission (seconds), and inside the real PUBLISH.
    store_seconds: array = field(default_factory=lambda: array("d"))
    publish_seconds: array = field(default_factory=lambda: array("d"))
    mismatches: int = 0  # payload seq or channel disagreeing with the returned Batch
    not_stored: int = 0  # store_submission returned None
    behind_seconds: float = 0.0  # how late the last batch was against its schedule


def make_metrics(rng: random.Random, now: float, count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": METRIC_NAMES[i % len(METRIC_NAMES)],
            "value": round(rng.uniform(0, 100), 3),
            "timestamp": now,
            "labels": {"host": f"bench-{i % 3}", "region": "local"},
        }
        for i in range(count)
    ]


def run(config: CommitterConfig, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn). DATABASE_URL etc. come from the environment."""
    # Keeps the database connection, and so its server process and that process's CPU
    # counters, until the parent has read them: it says "exit" when done.
    answer(lambda: _run(config, conn), conn, EXIT_TIMEOUT_SECONDS)


def _run(config: CommitterConfig, conn: Connection) -> CommitterResult | None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")
    import django

    django.setup()
    from django.db import connection

    import metricstream.ingest.services as services
    from metricstream.tenants.models import channel_for

    mine = [uuid.UUID(t) for t in config.tenants[config.index :: config.count]]
    tenant_index = {channel_for(uuid.UUID(t)): i for i, t in enumerate(config.tenants)}
    published: list[tuple[float, str, bytes]] = []
    publish_seconds = array("d")
    real_publish = services.publish

    def timed_publish(channel: str, payload: bytes) -> None:
        committed = time.time()
        published.append((committed, channel, payload))
        real_publish(channel, payload)
        publish_seconds.append(time.time() - committed)

    services.publish = timed_publish
    connection.ensure_connection()
    conn.send(("ready",))

    if not conn.poll(GO_TIMEOUT_SECONDS):
        return None
    message = conn.recv()
    if message[0] != "go":
        return None
    _, start_at, stop_at = message

    result = CommitterResult(index=config.index)
    returned: list[tuple[uuid.UUID, int]] = []
    rng = random.Random(config.index)
    interval = 1.0 / config.rate
    next_progress = start_at
    i = 0
    while (now := time.time()) < stop_at:
        due = start_at + i * interval
        if due > now:
            time.sleep(min(due - now, stop_at - now, PROGRESS_SECONDS))
            continue
        tenant = mine[i % len(mine)]
        submission = services.Submission(
            id=uuid.uuid4(),
            tenant_id=tenant,
            received_at=now,
            metrics=make_metrics(rng, now, config.metrics_per_batch),
        )
        batch = services.store_submission(submission)
        result.store_seconds.append(time.time() - now)
        if batch is None:
            result.not_stored += 1
        else:
            returned.append((tenant, batch.seq))
        result.behind_seconds = now - due
        i += 1
        if now >= next_progress:
            conn.send(("progress", len(published)))
            next_progress = now + PROGRESS_SECONDS
    conn.send(("progress", len(published)))

    # Decode the recorded payloads now, outside the timed path, and check them against
    # what store_submission returned for the same batch.
    for k, (committed, channel, payload) in enumerate(published):
        payload_seq = json.loads(payload)[0]["seq"]
        if k >= len(returned) or (channel_for(returned[k][0]), returned[k][1]) != (
            channel,
            payload_seq,
        ):
            result.mismatches += 1
        result.tenants.append(tenant_index.get(channel, -1))
        result.seqs.append(payload_seq)
        result.commit_times.append(committed)
    result.publish_seconds = publish_seconds
    return result
