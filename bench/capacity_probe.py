"""What the capacity benchmark reads from outside a server: RSS, fds, streams, subscriptions.

Everything here is read the way an operator could: /proc for the process,
the status endpoint for streams and tasks, and PUBSUB NUMSUB at Redis for the
subscriptions, so the product and the baseline are measured alike.
"""

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from bench import fixtures, ownredis, procstat

RSS_SAMPLE_SECONDS = 0.1
# RSS counts as settled once it moved less than RSS_STABLE_BYTES over this window.
RSS_STABLE_WINDOW_SECONDS = 1.0
RSS_STABLE_BYTES = 128 * 1024
RSS_SETTLE_TIMEOUT_SECONDS = 20.0
STATUS_TIMEOUT_SECONDS = 10.0
# During a teardown the server is busy closing thousands of streams; a status
# request slower than this counts as "no answer" for that sample.
TEARDOWN_STATUS_TIMEOUT_SECONDS = 2.0
TEARDOWN_POLL_SECONDS = 0.01
TEARDOWN_TIMEOUT_SECONDS = 60.0
STREAMS_POLL_SECONDS = 0.1
# A stream count below the target that has not moved for this long is final
# (some streams failed to open and nothing more is coming).
STREAMS_STUCK_SECONDS = 3.0
STREAMS_COUNT_TIMEOUT_SECONDS = 60.0


def rss_bytes(pid: int | None) -> int | None:
    """VmRSS of a process, or None if it is gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@dataclass(frozen=True)
class Settled:
    rss_bytes: int
    stable: bool  # False: the timeout passed first and this is the last sample
    seconds: float


def settle_rss(pid: int, tick: Callable[[], None]) -> Settled:
    """Wait until the process's RSS stops moving; `tick` runs on every sample (pipes to empty)."""
    started = time.monotonic()
    samples: deque[tuple[float, int]] = deque()
    last = 0
    while True:
        now = time.monotonic()
        last = rss_bytes(pid) or 0
        samples.append((now, last))
        while samples and now - samples[0][0] > RSS_STABLE_WINDOW_SECONDS:
            samples.popleft()
        covered = now - started >= RSS_STABLE_WINDOW_SECONDS
        values = [rss for _, rss in samples]
        if covered and max(values) - min(values) <= RSS_STABLE_BYTES:
            return Settled(last, True, now - started)
        if now - started > RSS_SETTLE_TIMEOUT_SECONDS:
            return Settled(last, False, now - started)
        tick()
        time.sleep(RSS_SAMPLE_SECONDS)


class CapacityRedis(ownredis.OwnRedis):
    """The benchmark's own redis-server, with room for a connection per stream (the baseline)."""

    def __init__(self, directory: Path, maxclients: int) -> None:
        super().__init__(directory)
        self.maxclients = maxclients

    @property
    def command(self) -> list[str]:
        return [*super().command, "--maxclients", str(self.maxclients)]

    def subscriptions(self, channels: list[str]) -> int:
        """Subscribers of the tenant channels, summed: the hub counts once per channel,
        the baseline once per stream."""
        return sum(count for _, count in self.client().pubsub_numsub(*channels))


class Target:
    """One server under test (product or baseline) seen from outside."""

    def __init__(
        self, label: str, server: fixtures.Server, session: str, own: CapacityRedis
    ) -> None:
        self.label = label
        self.server = server
        self.own = own
        # One kept-alive connection, so a 10 ms poll is not a TCP handshake each time.
        self.http = httpx.Client(
            base_url=server.base, cookies={"sessionid": session}, timeout=STATUS_TIMEOUT_SECONDS
        )

    @property
    def pid(self) -> int:
        return self.server.popen.pid

    def status(self, timeout: float = STATUS_TIMEOUT_SECONDS) -> dict:
        response = self.http.get("/api/v1/stream/status", timeout=timeout)
        response.raise_for_status()
        return response.json()

    def streams(self) -> int:
        return int(self.status()["streams"])

    def wait_streams(self, want: int, tick: Callable[[], None]) -> int:
        """Poll until the server counts `want` streams, or its count is stuck below; the count."""
        started = time.monotonic()
        count, changed = -1, started
        while True:
            now = time.monotonic()
            current = self.streams()
            if current == want:
                return current
            if current != count:
                count, changed = current, now
            if now - changed > STREAMS_STUCK_SECONDS or now - started > (
                STREAMS_COUNT_TIMEOUT_SECONDS
            ):
                return current
            tick()
            time.sleep(STREAMS_POLL_SECONDS)

    def close(self) -> None:
        self.http.close()


@dataclass
class Teardown:
    streams: int
    seconds_to_released: float | None  # None: not released within the timeout
    seconds_to_zero_streams: float | None
    seconds_to_zero_subscriptions: float | None
    # The server's CPU time from the kill until both counts were 0: what closing cost it.
    server_cpu_seconds: float | None
    status_failures: int
    status_answers: int
    redis_answers: int
    # [t, streams, subscriptions]: one row per answer from either side, the
    # other side's value carried forward from its latest answer (None before it).
    timeline: list[list[float | int | None]]


def _poll_until_zero(
    read: Callable[[], int | None], started: float, seen: list[tuple[float, int | None]]
) -> float | None:
    """Read every TEARDOWN_POLL_SECONDS, stamping each answer when it arrives; when it hit 0."""
    while True:
        asked = time.monotonic()
        value = read()
        t = time.monotonic() - started
        seen.append((t, value))
        if value == 0:
            return t
        if t > TEARDOWN_TIMEOUT_SECONDS:
            return None
        time.sleep(max(0.0, TEARDOWN_POLL_SECONDS - (time.monotonic() - asked)))


def teardown(
    target: Target, channels: list[str], streams: int, kill: Callable[[], None]
) -> Teardown:
    """Kill the clients, then poll streams and subscriptions every ~10 ms until both are 0.

    The clock starts just before the first kill. Redis is polled from a thread
    of its own: a server busy closing thousands of streams answers its status
    late, and that must not thin out the subscription readings. Each answer
    is stamped when it arrived, so the figures are upper bounds by one round trip.
    """
    stream_counts: list[tuple[float, int | None]] = []
    sub_counts: list[tuple[float, int | None]] = []
    failures = 0

    def count_streams() -> int | None:
        nonlocal failures
        try:
            return int(target.status(TEARDOWN_STATUS_TIMEOUT_SECONDS)["streams"])
        except httpx.HTTPError:
            failures += 1
            return None

    def count_subscriptions() -> int | None:
        try:
            return target.own.subscriptions(channels)
        except redis.RedisError:
            return None

    zero_subs: float | None = None

    def watch_redis() -> None:
        nonlocal zero_subs
        zero_subs = _poll_until_zero(count_subscriptions, started, sub_counts)

    # Made before the clock starts, so only its start() lies between the kill and the polls.
    watcher = threading.Thread(target=watch_redis, name="teardown-redis", daemon=True)
    cpu_before = procstat.process_cpu_seconds(target.pid)
    started = time.monotonic()
    kill()
    watcher.start()
    zero_streams = _poll_until_zero(count_streams, started, stream_counts)
    watcher.join(TEARDOWN_TIMEOUT_SECONDS + STATUS_TIMEOUT_SECONDS)
    released = None
    if zero_streams is not None and zero_subs is not None:
        released = max(zero_streams, zero_subs)
    cpu_after = procstat.process_cpu_seconds(target.pid)
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = round(cpu_after - cpu_before, 3)
    timeline = _merge(stream_counts, sub_counts)
    return Teardown(
        streams,
        released,
        zero_streams,
        zero_subs,
        cpu,
        failures,
        len(stream_counts),
        len(sub_counts),
        timeline,
    )


def _merge(
    streams: list[tuple[float, int | None]], subs: list[tuple[float, int | None]]
) -> list[list[float | int | None]]:
    rows = sorted([(t, 0, v) for t, v in streams] + [(t, 1, v) for t, v in subs])
    latest: list[int | None] = [None, None]
    timeline: list[list[float | int | None]] = []
    for t, side, value in rows:
        latest[side] = value
        timeline.append([round(t, 4), latest[0], latest[1]])
    return timeline


def redis_maxclients(own: CapacityRedis) -> int | None:
    try:
        return int(own.config("maxclients"))
    except (redis.RedisError, ValueError):
        return None
