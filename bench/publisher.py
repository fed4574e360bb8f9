"""A publisher process: PUBLISHes already committed batches on Redis at a paced rate.

It reads each tenant's committed batches back with the stream's own replay
query (metricstream.stream.selectors.batches_after), which encodes them exactly
as the ingest job published them, and publishes them in sequence order per
tenant, the tenants interleaved. Orders:

  ("load",)                      read every batch committed since the last load;
                                 answers ("result", {tenant index: batches held})
  ("publish", rate, per_tenant)  publish the next `per_tenant` batches of every
                                 tenant at `rate` messages/s in total; answers
                                 ("result", PublishResult)
  ("exit",)

Pacing is open-loop: message i is due at start + i / rate; whatever is due
leaves in one pipeline (at most PIPELINE_MAX messages), so the achieved rate
can exceed what one PUBLISH round trip at a time would allow.
"""

import os
import time
import traceback
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import NamedTuple

import redis

PROGRESS_SECONDS = 0.25
PIPELINE_MAX = 1000
LOAD_PAGE_BATCHES = 2000
IDLE_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class PublisherConfig:
    redis_url: str
    tenants: list[str]  # every tenant's UUID, in tenant-index order


@dataclass
class PublishResult:
    started: float = 0.0
    ended: float = 0.0
    published: int = 0
    payload_bytes: int = 0
    target_rate: float = 0.0
    behind_seconds_at_end: float = 0.0  # how late the last message left against its schedule
    last_seq: dict[int, int] = field(default_factory=dict)  # tenant index -> last seq published

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


def run(config: PublisherConfig, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn)."""
    try:
        _serve(config, conn)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class Message(NamedTuple):
    tenant: int  # index into the feed's tenants
    channel: str
    seq: int
    payload: bytes


class Feed:
    """Every tenant's committed payloads, and how far publishing has got in each."""

    def __init__(self, tenants: list[str]) -> None:
        from metricstream.tenants.models import channel_for

        self.tenants = [uuid.UUID(t) for t in tenants]
        self.channels = [channel_for(t) for t in self.tenants]
        self.payloads: list[list[tuple[int, bytes]]] = [[] for _ in tenants]
        self.cursor = [0] * len(tenants)

    def load(self) -> dict[int, int]:
        from metricstream.stream.selectors import batches_after

        for i, tenant in enumerate(self.tenants):
            held = self.payloads[i]
            while page := batches_after(
                tenant,
                held[-1][0] if held else 0,
                max_batches=LOAD_PAGE_BATCHES,
                max_metrics=10**9,
            ):
                held.extend(page)
        return {i: len(held) for i, held in enumerate(self.payloads)}

    def take(self, per_tenant: int) -> tuple[list[Message], dict[int, int]]:
        """The next `per_tenant` batches of every tenant, interleaved, and each one's last seq."""
        rounds: list[list[Message]] = [[] for _ in range(per_tenant)]
        last: dict[int, int] = {}
        for i, held in enumerate(self.payloads):
            start = self.cursor[i]
            chunk = held[start : start + per_tenant]
            if len(chunk) < per_tenant:
                raise RuntimeError(
                    f"tenant {i}: {len(chunk)} batches left to publish, {per_tenant} asked"
                )
            for r, (seq, payload) in enumerate(chunk):
                rounds[r].append(Message(i, self.channels[i], seq, payload))
            self.cursor[i] = start + per_tenant
            if chunk:
                last[i] = chunk[-1][0]
        return [message for batch in rounds for message in batch], last


def _serve(config: PublisherConfig, conn: Connection) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")
    import django

    django.setup()
    client = redis.Redis.from_url(config.redis_url, socket_timeout=30, socket_connect_timeout=5)
    client.ping()
    feed = Feed(config.tenants)
    conn.send(("ready",))
    while conn.poll(IDLE_TIMEOUT_SECONDS):
        message = conn.recv()
        if message[0] == "load":
            conn.send(("result", feed.load()))
        elif message[0] == "publish":
            _, rate, per_tenant = message
            messages, last = feed.take(per_tenant)
            result = _publish(client, messages, rate, conn)
            result.last_seq = last
            conn.send(("result", result))
        else:
            return


def _publish(
    client: redis.Redis, messages: list[Message], rate: float, conn: Connection
) -> PublishResult:
    result = PublishResult(target_rate=rate, started=time.time())
    total = len(messages)
    sent = 0
    next_progress = result.started + PROGRESS_SECONDS
    while sent < total:
        now = time.time()
        due = min(total, int((now - result.started) * rate) + 1)
        if due <= sent:
            time.sleep(min((sent / rate + result.started) - now, PROGRESS_SECONDS))
            continue
        upto = min(due, sent + PIPELINE_MAX)
        pipe = client.pipeline(transaction=False)
        for message in messages[sent:upto]:
            pipe.publish(message.channel, message.payload)
            result.payload_bytes += len(message.payload)
        pipe.execute()
        sent = upto
        if now >= next_progress:
            conn.send(("progress", sent))
            next_progress = now + PROGRESS_SECONDS
    result.ended = time.time()
    result.published = sent
    if total:
        result.behind_seconds_at_end = max(
            0.0, result.ended - (result.started + (total - 1) / rate)
        )
    conn.send(("progress", sent))
    return result
