"""A stand-in for the committers when the rate asked for is more than this machine can commit.

Committing one small batch costs about 1 ms of CPU between the job and
PostgreSQL, so two cores cannot commit 2,000 batches/s and serve them too. The
latency benchmark's `--source replay` commits the batches beforehand (in bulk,
untimed) and this process then does what the job does after each commit: one
PUBLISH of the batch as stored, at the target rate. The time it records per
batch is taken where a committer takes it, just before the PUBLISH that
follows the commit, so the latency measured is the same interval.

Protocol, as a committer's: ("ready",) once Django is set up; then ("load",)
is answered by ("progress", batches held); ("go", start_at, stop_at) starts
publishing, and the result is a CommitterResult.
"""

import os
import time
import traceback
import uuid
from multiprocessing.connection import Connection

import redis

from bench.committer import CommitterConfig, CommitterResult

PROGRESS_SECONDS = 0.5
ORDER_TIMEOUT_SECONDS = 600.0
LOAD_PAGE_BATCHES = 2000


def run(config: CommitterConfig, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn)."""
    try:
        conn.send(("result", _run(config, conn)))
        conn.poll(ORDER_TIMEOUT_SECONDS)  # until the parent says "exit"
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _run(config: CommitterConfig, conn: Connection) -> CommitterResult | None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")
    import django

    django.setup()
    from django.conf import settings

    from metricstream.stream.selectors import batches_after
    from metricstream.tenants.models import channel_for

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    client.ping()
    mine = list(range(config.index, len(config.tenants), config.count))
    conn.send(("ready",))

    # (tenant index, channel, seq, payload), the tenants interleaved: round r holds
    # every tenant's r-th batch, as committers spread over tenants would produce them.
    queue: list[tuple[int, str, int, bytes]] = []
    while conn.poll(ORDER_TIMEOUT_SECONDS):
        order = conn.recv()
        if order[0] == "load":
            held: list[list[tuple[int, bytes]]] = []
            for t in mine:
                tenant = uuid.UUID(config.tenants[t])
                batches: list[tuple[int, bytes]] = []
                while page := batches_after(
                    tenant,
                    batches[-1][0] if batches else 0,
                    max_batches=LOAD_PAGE_BATCHES,
                    max_metrics=10**9,
                ):
                    batches.extend(page)
                held.append(batches)
            queue = [
                (t, channel_for(uuid.UUID(config.tenants[t])), seq, payload)
                for r in range(max((len(b) for b in held), default=0))
                for t, batches in zip(mine, held, strict=True)
                if r < len(batches)
                for seq, payload in [batches[r]]
            ]
            conn.send(("progress", len(queue)))
        elif order[0] == "go":
            return _publish(client, queue, config.rate, order[1], order[2], config.index, conn)
        else:
            return None
    return None


def _publish(
    client: redis.Redis,
    queue: list[tuple[int, str, int, bytes]],
    rate: float,
    start_at: float,
    stop_at: float,
    index: int,
    conn: Connection,
) -> CommitterResult:
    result = CommitterResult(index=index)
    interval = 1.0 / rate
    next_progress = start_at
    i = 0
    while (now := time.time()) < stop_at and i < len(queue):
        due = start_at + i * interval
        if due > now:
            time.sleep(min(due - now, stop_at - now, PROGRESS_SECONDS))
            continue
        tenant, channel, seq, payload = queue[i]
        published = time.time()
        client.publish(channel, payload)
        result.publish_seconds.append(time.time() - published)
        result.tenants.append(tenant)
        result.seqs.append(seq)
        result.commit_times.append(published)
        result.behind_seconds = now - due
        i += 1
        if now >= next_progress:
            conn.send(("progress", i))
            next_progress = now + PROGRESS_SECONDS
    conn.send(("progress", i))
    return result
