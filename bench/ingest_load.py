"""An ingest load generator: a process POSTing pre-encoded batches to /api/v1/metrics.

It runs in its own process (never in the server's event loop) and speaks just
enough HTTP/1.1 over keep-alive connections: a request is bytes built before
the clock starts, so the generator costs the server's side nothing but the
requests themselves. Control follows bench/children.py: ("ready",) once set
up, then for each ("post", metrics_per_batch, batches, seconds) command one
("result", LoadResult); ("exit",) ends it.

`batches` > 0 posts exactly that many batches; otherwise it posts for `seconds`.
"""

import asyncio
import json
import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from bench.committer import METRIC_NAMES

# Distinct bodies per batch size, so the server does not see one payload over and over.
BODIES_PER_SIZE = 4
# A POST that takes longer than this counts as failed and ends its connection.
REQUEST_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
# How long the generator waits for its next command before giving up.
COMMAND_TIMEOUT_SECONDS = 900.0
# Longest response head accepted.
MAX_HEAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class LoadConfig:
    index: int
    host: str
    port: int
    tokens: list[str]  # ingest tokens, one per tenant this generator posts for
    connections: int


@dataclass
class LoadResult:
    accepted: int = 0  # 202 responses
    statuses: dict[int, int] = field(default_factory=dict)  # every status seen, 202 included
    errors: dict[str, int] = field(default_factory=dict)  # connection failures and timeouts
    first_sent: float = 0.0  # time.time() when the first request was written
    last_done: float = 0.0  # time.time() when the last response was read
    body_bytes: int = 0  # size of one request body of this batch size


def make_body(rng: random.Random, now: float, count: int) -> bytes:
    metrics = [
        {
            "name": METRIC_NAMES[i % len(METRIC_NAMES)],
            "value": round(rng.uniform(0, 100), 3),
            "timestamp": now,
            "labels": {"host": f"bench-{i % 8}", "region": "local"},
        }
        for i in range(count)
    ]
    return json.dumps({"metrics": metrics}, separators=(",", ":")).encode()


def make_requests(config: LoadConfig, metrics_per_batch: int) -> list[bytes]:
    """Every (token, body) pair as a complete HTTP request, cycled through by the connections."""
    rng = random.Random(config.index)
    now = time.time()  # the server accepts timestamps up to 10 minutes ahead, any age behind
    bodies = [make_body(rng, now, metrics_per_batch) for _ in range(BODIES_PER_SIZE)]
    return [
        (
            f"POST /api/v1/metrics HTTP/1.1\r\nHost: {config.host}:{config.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nUser-Agent: metricstream-bench\r\n\r\n"
        ).encode()
        + body
        for body in bodies
        for token in config.tokens
    ]


class Budget:
    """How many requests may still start: a count, or until a deadline."""

    def __init__(self, batches: int, seconds: float) -> None:
        self.left = batches
        self.deadline = 0.0 if batches > 0 else time.monotonic() + seconds

    def take(self) -> bool:
        if self.deadline:
            return time.monotonic() < self.deadline
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def _connection(
    config: LoadConfig, requests: list[bytes], offset: int, budget: Budget, result: LoadResult
) -> None:
    statuses: Counter[int] = Counter()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_connection(config.host, config.port)
    except (OSError, TimeoutError) as exc:
        key = f"connect: {type(exc).__name__}"
        result.errors[key] = result.errors.get(key, 0) + 1
        return
    i = offset
    try:
        while budget.take():
            if not result.first_sent:
                result.first_sent = time.time()
            writer.write(requests[i % len(requests)])
            i += 1
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                status, length = _parse_head(head)
                await reader.readexactly(length)
            statuses[status] += 1
            result.last_done = time.time()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        key = type(exc).__name__
        result.errors[key] = result.errors.get(key, 0) + 1
    finally:
        writer.close()
        for status, count in statuses.items():
            result.statuses[status] = result.statuses.get(status, 0) + count


def _parse_head(head: bytes) -> tuple[int, int]:
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError("response head too long")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, length


async def post(
    config: LoadConfig, metrics_per_batch: int, batches: int, seconds: float
) -> LoadResult:
    requests = make_requests(config, metrics_per_batch)
    result = LoadResult(body_bytes=len(requests[0].split(b"\r\n\r\n", 1)[1]))
    budget = Budget(batches, seconds)
    await asyncio.gather(
        *(_connection(config, requests, k, budget, result) for k in range(config.connections))
    )
    result.accepted = result.statuses.get(202, 0)
    return result


def run(config: LoadConfig, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn)."""
    try:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            loop_factory = None
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            conn.send(("ready",))
            while conn.poll(COMMAND_TIMEOUT_SECONDS):
                message = conn.recv()
                if message[0] != "post":
                    break
                _, metrics_per_batch, batches, seconds = message
                conn.send(("result", runner.run(post(config, metrics_per_batch, batches, seconds))))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()
