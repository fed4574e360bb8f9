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
from multiprocessing.connection import Connection

import redis

from bench.children import answer
from bench.committer import CommitterConfig, CommitterResult
from bench.publisher import Feed, Message

PROGRESS_SECONDS = 0.5
ORDER_TIMEOUT_SECONDS = 600.0


def run(config: CommitterConfig, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn)."""
    answer(lambda: _run(config, conn), conn, ORDER_TIMEOUT_SECONDS)


def _run(config: CommitterConfig, conn: Connection) -> CommitterResult | None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")
    import django

    django.setup()
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    client.ping()
    mine = list(range(config.index, len(config.tenants), config.count))
    feed = Feed([config.tenants[t] for t in mine])
    conn.send(("ready",))

    # Every batch held, the tenants interleaved as committers spread over them produce them.
    queue: list[Message] = []
    while conn.poll(ORDER_TIMEOUT_SECONDS):
        order = conn.recv()
        if order[0] == "load":
            held = feed.load()
            messages, _last = feed.take(min(held.values(), default=0))
            queue = [m._replace(tenant=mine[m.tenant]) for m in messages]
            conn.send(("progress", len(queue)))
        elif order[0] == "go":
            return _publish(client, queue, config.rate, order[1], order[2], config.index, conn)
        else:
            return None
    return None


def _publish(
    client: redis.Redis,
    queue: list[Message],
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
