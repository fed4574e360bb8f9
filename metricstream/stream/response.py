"""The SSE response: frames from a hub subscription, ended by disconnect, lifetime or overflow."""

import asyncio

import anyio
from starlette.types import Receive, Scope, Send

from metricstream.stream.events import HEARTBEAT, retry_frame
from metricstream.stream.hub import Hub, Subscription

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
        *,
        heartbeat: float,
        lifetime: float,
        retry_ms: int,
    ) -> None:
        self.hub = hub
        self.sub = sub
        self.heartbeat = heartbeat
        self.lifetime = lifetime
        self.retry_ms = retry_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            # The stream and the disconnect listener share one task group: whichever
            # ends first cancels the other, so a vanished client is noticed at once
            # rather than at the next write.
            async with anyio.create_task_group() as group:
                group.start_soon(self._listen_for_disconnect, receive, group.cancel_scope)
                await self._stream(send)
                group.cancel_scope.cancel()
        finally:
            self.hub.close(self.sub)

    async def _stream(self, send: Send) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lifetime
        await _write(send, retry_frame(self.retry_ms))
        while (remaining := deadline - loop.time()) > 0:
            frames = await self.sub.take(min(self.heartbeat, remaining))
            if self.sub.overflowed:
                # Too far behind: end the stream; the browser reconnects.
                break
            if frames:
                await _write(send, b"".join(frames))
            elif deadline > loop.time():
                await _write(send, HEARTBEAT)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _listen_for_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()


async def _write(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})
