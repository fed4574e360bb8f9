"""The baseline the performance benchmarks compare against: one Redis subscription per stream.

`python -m bench.naive --port N` serves the product's application, except that
/api/v1/stream/{tenant} is the naive design DESIGN.md rejects: every stream opens
its own Redis Pub/Sub connection and frames each message itself. Same URL,
same session check, same frames, same uvicorn settings; no hub, no resume. It
lives in bench/ only, as the figure the hub has to beat.

/api/v1/stream/status answers {"streams": N} (no auth: bench only).
"""

import argparse
import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import redis.asyncio as aioredis
from django.conf import settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from metricstream import asgi  # first: it sets Django up
from metricstream.stream.app import PREFIX, lifespan
from metricstream.stream.events import HEARTBEAT, metrics_frame, opening_frame, seq_of
from metricstream.stream.response import HEADERS
from metricstream.stream.selectors import Access
from metricstream.tenants.models import channel_for

_open = 0
# redis-py's pool allows 100 connections by default; this baseline needs one per stream.
NAIVE_MAX_CONNECTIONS = 100_000


class NaiveStream:
    """One stream, one Redis connection: subscribe, then frame and write every message."""

    def __init__(self, client: aioredis.Redis, channel: str, opening: bytes) -> None:
        self.client = client
        self.channel = channel
        self.opening = opening

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        global _open
        _open += 1
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": self.opening, "more_body": True})
            async with anyio.create_task_group() as group:
                group.start_soon(self._listen_for_disconnect, receive, group.cancel_scope)
                await self._relay(pubsub, send)
        finally:
            _open -= 1
            with anyio.CancelScope(shield=True):
                await pubsub.aclose()

    async def _relay(self, pubsub: aioredis.client.PubSub, send: Send) -> None:
        heartbeat = settings.STREAM_HEARTBEAT_SECONDS
        while True:
            message = await pubsub.get_message(timeout=heartbeat)
            if message is None:
                body = HEARTBEAT
            else:
                payload: bytes = message["data"]
                body = metrics_frame(seq_of(payload) or 0, payload)
            await send({"type": "http.response.body", "body": body, "more_body": True})

    @staticmethod
    async def _listen_for_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()


async def stream(request: Request) -> Response | NaiveStream:
    try:
        tenant_id = uuid.UUID(request.path_params["tenant"])
    except ValueError:
        return JSONResponse({"error": "not_found"}, status_code=404)
    access = await request.app.state.reads.access(
        request.cookies.get(settings.SESSION_COOKIE_NAME), tenant_id
    )
    if access is not Access.GRANTED:
        return JSONResponse({"error": access.name.lower()}, status_code=403)
    # The same opening frame as the product's, so the benchmark's client counts alike.
    point = await request.app.state.reads.resume_point(tenant_id, None)
    opening = opening_frame(settings.STREAM_RETRY_MILLISECONDS, point.seq, point.latest)
    return NaiveStream(request.app.state.redis, channel_for(tenant_id), opening)


async def status(request: Request) -> Response:
    return JSONResponse({"streams": _open, "tasks": len(asyncio.all_tasks())})


@asynccontextmanager
async def naive_lifespan(app: Starlette) -> AsyncIterator[None]:
    # The product's lifespan gives the same session-check reads; its hub stays idle.
    async with lifespan(app):
        # One connection per stream is the point of this baseline: no practical cap.
        app.state.redis = aioredis.Redis.from_url(
            settings.REDIS_URL, max_connections=NAIVE_MAX_CONNECTIONS
        )
        try:
            yield
        finally:
            await app.state.redis.aclose()


stream_app = Starlette(
    routes=[Route(f"{PREFIX}/status", status), Route(f"{PREFIX}/{{tenant}}", stream)],
    lifespan=naive_lifespan,
)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan" or scope["path"].startswith(PREFIX + "/"):
        await stream_app(scope, receive, send)
    else:
        await asgi.application(scope, receive, send)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.naive", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    from metricstream.ops.server import server

    config = server(args.host, args.port).config
    config.app = "bench.naive:application"
    import uvicorn

    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
