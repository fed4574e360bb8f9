"""A committer process that commits a given number of batches per tenant, as fast as it can.

It calls the real job body, store_submission, like committer.py, but is
count-driven and takes several orders: ("commit", {tenant id: batches}) is
answered by ("result", BulkResult); ("exit",) ends it. The tenants of an order
are interleaved, so a tenant's batches are spread over the order's duration.

With `publish` off, store_submission's publisher is replaced by one that does
nothing (the batches are committed but nobody is told: the overload benchmark
publishes them itself later). With it on, the real Redis publisher is wrapped
to count failures (the recovery benchmark commits while Redis is down, and
store_submission logs and ignores each failed PUBLISH; that log is silenced).
"""

import logging
import os
import random
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from bench.committer import make_metrics

PROGRESS_SECONDS = 0.5
# How long the process waits for its next order before it gives up and exits.
IDLE_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class BulkConfig:
    index: int
    metrics_per_batch: int
    publish: bool


@dataclass
class BulkResult:
    committed: int = 0
    not_stored: int = 0  # store_submission returned None
    publish_calls: int = 0
    publish_failures: int = 0
    seconds: float = 0.0
    started: float = 0.0
    last_seq: dict[str, int] = field(default_factory=dict)  # tenant id -> its last seq


class NullPublisher:
    def publish(self, channel: str, payload: bytes) -> None:
        return None


class CountingPublisher:
    def __init__(self, real: object) -> None:
        self.real = real
        self.calls = 0
        self.failures = 0

    def publish(self, channel: str, payload: bytes) -> None:
        self.calls += 1
        try:
            self.real.publish(channel, payload)  # type: ignore[attr-defined]
        except Exception:
            self.failures += 1
            raise


def run(config: BulkConfig, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn). DATABASE_URL etc. come from the environment."""
    try:
        _serve(config, conn)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _serve(config: BulkConfig, conn: Connection) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")
    import django

    django.setup()
    from django.db import connection

    import metricstream.ingest.services as services

    logging.getLogger("metricstream.ingest.services").setLevel(logging.ERROR)
    counting: CountingPublisher | None = None
    if config.publish:
        counting = CountingPublisher(services.get_publisher())
        services.get_publisher = lambda: counting  # type: ignore[assignment,return-value]
    else:
        services.get_publisher = NullPublisher  # type: ignore[assignment]
    connection.ensure_connection()
    conn.send(("ready",))

    rng = random.Random(config.index)
    while conn.poll(IDLE_TIMEOUT_SECONDS):
        message = conn.recv()
        if message[0] != "commit":
            return
        result = _commit(message[1], config.metrics_per_batch, rng, conn)
        if counting is not None:
            result.publish_calls, result.publish_failures = counting.calls, counting.failures
            counting.calls = counting.failures = 0
        conn.send(("result", result))


def _commit(
    order: dict[str, int], metrics_per_batch: int, rng: random.Random, conn: Connection
) -> BulkResult:
    from metricstream.ingest.services import Submission, store_submission

    result = BulkResult(started=time.time())
    left = {tenant: count for tenant, count in order.items() if count > 0}
    next_progress = time.monotonic() + PROGRESS_SECONDS
    while left:
        for tenant in list(left):
            now = time.time()
            batch = store_submission(
                Submission(
                    id=uuid.uuid4(),
                    tenant_id=uuid.UUID(tenant),
                    received_at=now,
                    metrics=make_metrics(rng, now, metrics_per_batch),
                )
            )
            if batch is None:
                result.not_stored += 1
            else:
                result.committed += 1
                result.last_seq[tenant] = batch.seq
            left[tenant] -= 1
            if not left[tenant]:
                del left[tenant]
        if time.monotonic() >= next_progress:
            conn.send(("progress", result.committed))
            next_progress = time.monotonic() + PROGRESS_SECONDS
    result.seconds = time.time() - result.started
    conn.send(("progress", result.committed))
    return result
