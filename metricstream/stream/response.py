"""The SSE response: replay, then live frames, healed from the database whenever it falls behind.

Invariant: `self.last` is the sequence number of the last batch written to
this client, and batches are written in strictly increasing, gap-free order.
Live frames at or below it are duplicates and dropped; a live frame beyond
`last + 1`, an overflowed inbox or a restored Redis connection means batches
were missed, and they are read from the database (the source of truth)
before anything newer is written.
"""

import asyncio

from starlette.types import Receive, Scope, Send

from metricstream.stream.events import HEARTBEAT, opening_frame, reset_frame
from metricstream.stream.hub import Frame, Hub, Subscription
from metricstream.stream.reads import Reads

HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    # Tells nginx-style proxies not to buffer, or frames would arrive in bursts.
    (b"x-accel-buffering", b"no"),
]


class EventStreamResponse:
    def __init__(
        self,
        hub: Hub,
        sub: Subscription,
        reads: Reads,
        *,
        last_id: int | None,
        retry_ms: int,
    ) -> None:
        self.hub = hub
        self.sub = sub
        self.reads = reads
        self.last_id = last_id
        self.retry_ms = retry_ms
        self.last = 0
        self._send: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._send = send
        # A vanished client is noticed at once, not at the next write: one listener
        # per stream tells the stream to end. A bare future rather than a task
        # group, because every object a stream holds is held once per open stream.
        listener = asyncio.ensure_future(_disconnect(receive))
        listener.add_done_callback(lambda _: self.sub.close_soon())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await self._stream()
        finally:
            listener.cancel()
            self.hub.close(self.sub)

    async def _stream(self) -> None:
        # Read after the subscription is live: anything committed later arrives live.
        self.sub.behind = False
        point = await self.reads.resume_point(self.sub.tenant_id, self.last_id)
        self.last = point.seq
        await self._write(opening_frame(self.retry_ms, point.seq, point.latest))
        if point.reset:
            await self._reset(point.reset, point.latest)
        elif point.seq < point.latest:
            await self._catch_up()

        sub = self.sub
        while True:
            frames = await sub.take()
            if sub.closing:  # drained, or past its lifetime
                break
            if sub.behind:
                sub.behind = False
                await self._catch_up()
            if frames:
                await self._deliver(frames)
            if sub.heartbeat_due:  # nothing written for a heartbeat interval
                await self._write(HEARTBEAT)
        await self._send_body(b"", more=False)

    async def _deliver(self, frames: list[Frame]) -> None:
        pending: list[bytes] = []
        for seq, frame in frames:
            if seq <= self.last:
                continue
            if seq > self.last + 1:  # a gap: fill it from the database
                await self._write(b"".join(pending))
                pending.clear()
                await self._catch_up()
                if seq <= self.last:
                    continue
            pending.append(frame)
            self.last = seq
        if pending:
            # Consecutive batches leave in one write.
            await self._write(b"".join(pending))

    async def _catch_up(self) -> None:
        """Write every committed batch after `self.last`, page by page, or a reset."""
        point = await self.reads.resume_point(self.sub.tenant_id, self.last)
        if point.reset:
            await self._reset(point.reset, point.latest)
            return
        stats = self.hub.stats
        stats.catch_ups += 1
        while self.last < point.latest and not self.sub.closing:
            last, count, frames = await self.reads.frames_after(self.sub.tenant_id, self.last)
            if not count:
                break
            await self._write(frames)
            self.last = last
            stats.catch_up_batches += count

    async def _reset(self, reason: str, latest: int) -> None:
        self.hub.stats.resets += 1
        await self._write(reset_frame(reason, latest))
        self.last = latest

    async def _write(self, body: bytes) -> None:
        if body:
            self.sub.wrote()
            await self._send_body(body, more=True)

    async def _send_body(self, body: bytes, *, more: bool) -> None:
        assert self._send is not None
        await self._send({"type": "http.response.body", "body": body, "more_body": more})


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
