"""The Starlette app serving /api/v1/stream/: thin handlers over the hub and the replay reads."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgiref.sync import sync_to_async
from django.conf import settings
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from metricstream.stream.broker import get_source
from metricstream.stream.hub import Hub
from metricstream.stream.reads import Reads, ReplayLimits
from metricstream.stream.response import EventStreamResponse
from metricstream.stream.selectors import Access, session_user

PREFIX = "/api/v1/stream"
STATUS_PATH = f"{PREFIX}/status"
# Hubs of this process, so a signal handler can drain them (graceful shutdown).
_hubs: set[Hub] = set()


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


UNAUTHENTICATED = ("unauthenticated", "Log in to open a stream.")
FORBIDDEN = ("forbidden", "You are not a member of this tenant, or it does not exist.")


def last_event_id(request: Request) -> int | None:
    """The client's resume point: the header browsers send on reconnect, or a query parameter."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError(raw)
    return int(raw)


def stream_endpoint(app: Starlette) -> ASGIApp:
    """GET {PREFIX}/{tenant}, outside Starlette's router and middleware.

    A stream stays open for up to STREAM_MAX_LIFETIME_SECONDS, and every
    coroutine it sits under stays suspended as long, once per open stream: the
    path a stream's frames take is kept this flat to keep idle streams small.
    """

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        response = await respond(scope, app.state)
        await response(scope, receive, send)

    return endpoint


async def respond(scope: Scope, state: State) -> Response | EventStreamResponse:
    """The stream, or the error; the request object is not kept for the stream's life."""
    request = Request(scope)
    if request.method not in ("GET", "HEAD"):
        return error(405, "method_not_allowed", "Streams are read with GET.")
    return await stream(request, state, scope["path"][len(PREFIX) + 1 :])


async def stream(request: Request, state: State, tenant: str) -> Response | EventStreamResponse:
    try:
        tenant_id = uuid.UUID(tenant)
    except ValueError:
        return error(404, "not_found", "No such stream: the tenant id is not a UUID.")
    try:
        resume = last_event_id(request)
    except ValueError:
        return error(400, "bad_request", "Last-Event-ID must be a sequence number (0 or more).")
    hub: Hub = state.hub
    reads: Reads = state.reads
    access = await reads.access(request.cookies.get(settings.SESSION_COOKIE_NAME), tenant_id)
    if access is Access.ANONYMOUS:
        return error(401, *UNAUTHENTICATED)
    if access is Access.FORBIDDEN:
        return error(403, *FORBIDDEN)
    if hub.draining:
        return error(503, "unavailable", "This server is shutting down; reconnect.")

    sub = await hub.open(tenant_id)
    return EventStreamResponse(
        hub,
        sub,
        reads,
        last_id=resume,
        retry_ms=settings.STREAM_RETRY_MILLISECONDS,
    )


async def status(request: Request) -> Response:
    """This process's streams, subscriptions and delivery counters (staff only)."""
    # Django's own thread, not the replay pool: status must answer during a mass catch-up.
    user = await sync_to_async(session_user)(request.cookies.get(settings.SESSION_COOKIE_NAME))
    if not user.is_authenticated:
        return error(401, *UNAUTHENTICATED)
    if not user.is_staff:
        return error(403, "forbidden", "Only staff may read the stream status.")
    hub: Hub = request.app.state.hub
    stats = hub.stats
    return JSONResponse(
        {
            "streams": hub.stream_count,
            # While Redis is down every stream is behind: it catches up on reconnect.
            "streams_behind": hub.stream_count if not hub.connected else hub.behind_count,
            "channels": hub.channels,
            "broker": "connected" if hub.connected else "disconnected",
            "reconnects": hub.reconnects,
            "draining": hub.draining,
            "frames_fanned_out": stats.frames_fanned_out,
            "frames_dropped": stats.frames_dropped,
            "overflows": stats.overflows,
            "catch_ups": stats.catch_ups,
            "catch_up_batches": stats.catch_up_batches,
            "resets": stats.resets,
            "subscribe_failures": stats.subscribe_failures,
            # For spotting leaks: both return to their idle level when streams close.
            "tasks": len(asyncio.all_tasks()),
            "open_fds": _open_fds(),
        }
    )


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        return None


def drain() -> None:
    """End every open stream and refuse new ones: called on SIGTERM."""
    for hub in _hubs:
        hub.drain()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    hub = Hub(
        get_source(),
        queue_frames=settings.STREAM_QUEUE_FRAMES,
        subscribe_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        heartbeat=settings.STREAM_HEARTBEAT_SECONDS,
        lifetime=settings.STREAM_MAX_LIFETIME_SECONDS,
    )
    reads = Reads(
        threads=settings.STREAM_DB_THREADS,
        limits=ReplayLimits(
            max_batches=settings.STREAM_REPLAY_MAX_BATCHES,
            max_age_seconds=settings.STREAM_REPLAY_MAX_AGE_SECONDS,
            page_batches=settings.STREAM_REPLAY_PAGE_BATCHES,
            page_metrics=settings.STREAM_REPLAY_PAGE_METRICS,
        ),
    )
    await hub.start()
    app.state.hub, app.state.reads = hub, reads
    _hubs.add(hub)
    try:
        yield
    finally:
        _hubs.discard(hub)
        await hub.stop()
        reads.close()


def build() -> Starlette:
    return Starlette(
        routes=[Route(STATUS_PATH, status)],
        lifespan=lifespan,
    )
