"""The load generator: many raw-asyncio SSE connections plus one Redis Pub/Sub baseline.

It runs in its own process (never in the server's event loop). Each stream is an
asyncio.Protocol speaking just enough HTTP/1.1: one GET with the session cookie,
the response head, chunked transfer decoding, then SSE events split on blank
lines. The receipt time of a frame is taken once per socket read, in
data_received, before any parsing, so parsing cost does not inflate it.

The Redis baseline is one redis.asyncio PubSub subscribed to every tenant
channel: the same library and path the server's hub reads from, minus the hub,
the SSE framing and the HTTP server.

Control is a multiprocessing Connection: the process sends ("ready", tenant
index of each open stream, failures), then ("progress", frames, Redis messages,
streams closed early, streams complete, time, target generation) every
`progress_seconds`, stops on "stop" (or after `max_seconds`), and finally sends
("result", ClientResult). The parent may send ("target", generation, {tenant
index: seq}) at any time: a stream is complete once it has received a frame
with its tenant's target seq or later; progress names the generation it counted against.
"""

import asyncio
import contextlib
import re
import resource
import sys
import time
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import redis.asyncio as aioredis
from redis.exceptions import RedisError

PROGRESS_SECONDS = 0.5
# Unchanged counts are sent at most this often, so a parent busy elsewhere for a
# minute does not find the pipe full (a full pipe would block this event loop).
IDLE_PROGRESS_SECONDS = 1.0
# Longest response head accepted before the stream counts as failed.
MAX_HEAD_BYTES = 64 * 1024
# After "stop", how long closing the sockets may take.
CLOSE_TIMEOUT_SECONDS = 5.0
# The Redis baseline's connection and subscription confirmations.
SUBSCRIBE_TIMEOUT_SECONDS = 10.0
RECONNECT_DELAY_SECONDS = 0.1
_SEQ = re.compile(rb'"seq":(\d+)')


@dataclass(frozen=True)
class StreamSpec:
    tenant: int  # index into the tenant list
    tenant_id: str
    session: str  # the sessionid cookie value


@dataclass(frozen=True)
class ClientConfig:
    host: str
    port: int
    streams: list[StreamSpec]
    # Tenant channels for the Redis baseline, indexed like tenants; empty: no baseline here.
    channels: list[str]
    redis_url: str
    open_concurrency: int = 50
    open_timeout: float = 60.0
    # The process ends on its own after this, whatever the parent does.
    max_seconds: float = 900.0
    progress_seconds: float = PROGRESS_SECONDS


@dataclass
class ClientResult:
    streams: list[StreamSpec]
    opened: list[bool]
    failures: dict[str, int]
    closed_early: int
    # Per stream, parallel arrays: sequence number and receipt time of each metrics frame.
    seqs: list[array]
    times: list[array]
    bad_frames: int  # id line and data disagree, or data of another tenant
    out_of_order: int
    heartbeats: int
    # The Redis baseline: tenant index, sequence number and receipt time of each message.
    redis_tenants: array = field(default_factory=lambda: array("i"))
    redis_seqs: array = field(default_factory=lambda: array("q"))
    redis_times: array = field(default_factory=lambda: array("d"))
    redis_bad: int = 0
    redis_disconnects: int = 0
    loop: str = "asyncio"
    # Per stream: the id of the opening frame (where the stream starts), -1 if none came.
    start_seqs: list[int] = field(default_factory=list)
    resets: int = 0  # `event: reset` frames received


class SseStream(asyncio.Protocol):
    """One SSE connection. Records (seq, time) of every `event: metrics` frame."""

    def __init__(self, spec: StreamSpec, request: bytes, opened: asyncio.Future[int]) -> None:
        self.spec = spec
        self.request = request
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self.lost: asyncio.Future[None] = opened.get_loop().create_future()
        self.closed_early = False
        self.seqs = array("q")
        self.times = array("d")
        self.bad_frames = 0
        self.out_of_order = 0
        self.heartbeats = 0
        self.resets = 0
        self.start_seq = -1
        self.high = 0  # the highest seq received
        self._tenant_marker = b'"tenant_id":"%s"' % spec.tenant_id.encode()
        self._head = bytearray()
        self._in_body = False
        self._chunked = False
        self._raw = bytearray()  # undecoded chunked bytes
        self._data_left = 0  # bytes of the current chunk still to come
        self._crlf_left = 0  # bytes of the CRLF after the current chunk
        self._events = bytearray()  # decoded body not yet split into events
        self._last_seq = 0

    # --- asyncio callbacks ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods.
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self._in_body:
            data = self._read_head(data)
            if not data:
                return
        body = self._dechunk(data) if self._chunked else data
        if body:
            self._feed(body, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before the head: {exc}"))
        elif not self.closing:
            self.closed_early = True
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    # --- HTTP ----------------------------------------------------------------

    def _read_head(self, data: bytes) -> bytes:
        """Consume the response head; returns body bytes that came with it."""
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD_BYTES:
                self._fail("response head too long")
            return b""
        head = bytes(self._head[:end]).decode("latin-1")
        rest = bytes(self._head[end + 4 :])
        self._head.clear()
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if status != 200:
            self._fail(f"HTTP {status}")
            return b""
        self._chunked = "chunked" in headers.get("transfer-encoding", "")
        self._in_body = True
        if not self.opened.done():
            self.opened.set_result(status)
        return rest

    def _fail(self, reason: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(reason))
        self.close()

    def _dechunk(self, data: bytes) -> bytes:
        """Decode as much chunked transfer encoding as has arrived."""
        raw = self._raw
        raw += data
        out = bytearray()
        pos, size = 0, len(raw)
        while pos < size:
            if self._data_left:
                take = min(self._data_left, size - pos)
                out += raw[pos : pos + take]
                pos += take
                self._data_left -= take
                if not self._data_left:
                    self._crlf_left = 2
            elif self._crlf_left:
                take = min(self._crlf_left, size - pos)
                pos += take
                self._crlf_left -= take
            else:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                length = int(bytes(raw[pos:eol]).split(b";", 1)[0], 16)
                pos = eol + 2
                if length == 0:  # the last chunk: the server ended the response
                    pos = size
                    break
                self._data_left = length
        del raw[:pos]
        return bytes(out)

    # --- SSE -----------------------------------------------------------------

    def _feed(self, body: bytes, now: float) -> None:
        events = self._events
        events += body
        start = 0
        while (end := events.find(b"\n\n", start)) >= 0:
            self._event(bytes(events[start:end]), now)
            start = end + 2
        del events[:start]

    def _event(self, block: bytes, now: float) -> None:
        ident = kind = data = None
        for line in block.split(b"\n"):
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"id":
                ident = value
            elif name == b"event":
                kind = value
            elif name == b"data":
                data = value
            elif name == b"":
                self.heartbeats += 1  # a comment: `: ping`
        if kind != b"metrics":
            # The opening frame (`event: open`; before it, an `id:` alone) names where the
            # stream starts.
            opening = kind == b"open" or (kind is None and data is None)
            if opening and ident is not None and self.start_seq < 0:
                self.start_seq = int(ident) if ident.isdigit() else -1
            elif kind == b"reset":
                self.resets += 1
            return
        seq = int(ident) if ident is not None and ident.isdigit() else -1
        if data is None or self._tenant_marker not in data or _seq_of(data) != seq:
            self.bad_frames += 1
            if seq < 0:
                return
        if seq <= self._last_seq:
            self.out_of_order += 1
        self._last_seq = seq
        if seq > self.high:
            self.high = seq
        self.seqs.append(seq)
        self.times.append(now)


def _seq_of(payload: bytes) -> int:
    match = _SEQ.search(payload)
    return int(match.group(1)) if match else -2


def request_bytes(host: str, port: int, spec: StreamSpec) -> bytes:
    return (
        f"GET /api/v1/stream/{spec.tenant_id} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Accept: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n"
        f"Cookie: sessionid={spec.session}\r\n"
        "User-Agent: metricstream-bench\r\n"
        "\r\n"
    ).encode()


async def open_stream(config: ClientConfig, spec: StreamSpec, gate: asyncio.Semaphore) -> SseStream:
    """Connect and wait for a 200 head; raises ConnectionError, OSError or TimeoutError."""
    loop = asyncio.get_running_loop()
    proto = SseStream(spec, request_bytes(config.host, config.port, spec), loop.create_future())
    async with gate:
        try:
            async with asyncio.timeout(config.open_timeout):
                await loop.create_connection(lambda: proto, config.host, config.port)
                await proto.opened
        except BaseException:
            proto.close()
            raise
    return proto


# --- Redis baseline ------------------------------------------------------------


class RedisBaseline:
    """One plain PubSub connection subscribed to every tenant channel."""

    def __init__(self, url: str, channels: list[str]) -> None:
        self.url = url
        self.index = {channel.encode(): i for i, channel in enumerate(channels)}
        self.tenants = array("i")
        self.seqs = array("q")
        self.times = array("d")
        self.bad = 0
        self.disconnects = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        timeout = SUBSCRIBE_TIMEOUT_SECONDS
        self._client = aioredis.Redis.from_url(
            self.url, socket_connect_timeout=timeout, client_name="metricstream-bench-baseline"
        )
        self._pubsub = self._client.pubsub()
        await self._pubsub.subscribe(*self.index)
        confirmed = 0
        async with asyncio.timeout(timeout):
            while confirmed < len(self.index):
                message = await self._pubsub.get_message(timeout=1.0)
                if message and message["type"] == "subscribe":
                    confirmed += 1
        self._task = asyncio.create_task(self._read(), name="redis-baseline")

    async def _read(self) -> None:
        pubsub, index = self._pubsub, self.index
        failing = False
        while not self._stopping:
            try:
                message = await pubsub.get_message(timeout=0.5)
            except (RedisError, OSError) as exc:
                # Someone killed the connection (the test suite does CLIENT KILL TYPE
                # pubsub): count it. redis-py has already reconnected and resubscribed,
                # so read again at once; only back off if that fails too.
                self.disconnects += 1
                print(f"bench: Redis baseline connection lost: {exc}", file=sys.stderr)
                if failing:
                    await asyncio.sleep(RECONNECT_DELAY_SECONDS)
                failing = True
                continue
            failing = False
            now = time.time()
            if message is None or message["type"] != "message":
                continue
            tenant = index.get(message["channel"], -1)
            seq = _seq_of(message["data"])
            if tenant < 0 or seq < 0:
                self.bad += 1
                continue
            self.tenants.append(tenant)
            self.seqs.append(seq)
            self.times.append(now)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self._task
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
            await self._client.aclose()


# --- the process ---------------------------------------------------------------


def raise_nofile(needed: int) -> None:
    """Raise the soft open-files limit to `needed` if it is lower (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _main(config: ClientConfig, conn: Connection) -> ClientResult:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.max_seconds
    baseline: RedisBaseline | None = None
    if config.channels:
        baseline = RedisBaseline(config.redis_url, config.channels)
        await baseline.start()

    gate = asyncio.Semaphore(config.open_concurrency)
    outcomes = await asyncio.gather(
        *(open_stream(config, spec, gate) for spec in config.streams), return_exceptions=True
    )
    streams: list[SseStream | None] = []
    failures: Counter[str] = Counter()
    for outcome in outcomes:
        if isinstance(outcome, SseStream):
            streams.append(outcome)
        else:
            streams.append(None)
            failures[f"{type(outcome).__name__}: {outcome}"[:120]] += 1
    live = [s for s in streams if s is not None]
    opened_tenants = [s.spec.tenant for s in live]
    conn.send(("ready", opened_tenants, dict(failures)))

    targets: dict[int, int] = {}
    generation = 0

    def counts() -> tuple[int, int, int, int, float, int]:
        frames = sum(len(s.seqs) for s in live)
        closed_early = sum(1 for s in live if s.closed_early)
        complete = sum(1 for s in live if s.high >= targets.get(s.spec.tenant, 0)) if targets else 0
        redis = len(baseline.seqs) if baseline else 0
        return frames, redis, closed_early, complete, time.time(), generation

    stopping = False
    sent: tuple[int, ...] = ()
    sent_at = 0.0
    while not stopping and loop.time() < deadline:
        await asyncio.sleep(config.progress_seconds)
        while conn.poll(0):
            message = conn.recv()
            if message == "stop":
                stopping = True
            elif message[0] == "target":
                _, generation, targets = message
        frames, redis, closed_early, complete, now, gen = counts()
        if (frames, redis, closed_early, complete, gen) != sent or (
            now - sent_at >= IDLE_PROGRESS_SECONDS or stopping
        ):
            conn.send(("progress", frames, redis, closed_early, complete, now, gen))
            sent, sent_at = (frames, redis, closed_early, complete, gen), now

    if baseline is not None:
        await baseline.stop()
    for stream in live:
        stream.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await asyncio.gather(*(s.lost for s in live))

    empty = array("q"), array("d")
    result = ClientResult(
        streams=config.streams,
        opened=[s is not None for s in streams],
        failures=dict(failures),
        closed_early=sum(1 for s in live if s.closed_early),
        seqs=[s.seqs if s else empty[0] for s in streams],
        times=[s.times if s else empty[1] for s in streams],
        bad_frames=sum(s.bad_frames for s in live),
        out_of_order=sum(s.out_of_order for s in live),
        heartbeats=sum(s.heartbeats for s in live),
        start_seqs=[s.start_seq if s else -1 for s in streams],
        resets=sum(s.resets for s in live),
    )
    if baseline is not None:
        result.redis_tenants = baseline.tenants
        result.redis_seqs = baseline.seqs
        result.redis_times = baseline.times
        result.redis_bad = baseline.bad
        result.redis_disconnects = baseline.disconnects
    return result


def run(config: ClientConfig, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn)."""
    try:
        raise_nofile(len(config.streams) + 256)
        try:
            import uvloop
        except ImportError:
            result = asyncio.run(_main(config, conn))
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result = runner.run(_main(config, conn))
            result.loop = "uvloop"
        conn.send(("result", result))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()
