"""The Starlette app serving /api/v1/stream/: thin handlers over the hub."""

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgiref.sync import sync_to_async
from django.conf import settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from metricstream.stream.broker import get_source
from metricstream.stream.hub import Hub, HubUnavailable
from metricstream.stream.response import EventStreamResponse
from metricstream.stream.selectors import Access, session_user, stream_access

log = logging.getLogger(__name__)

PREFIX = "/api/v1/stream"


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


UNAUTHENTICATED = ("unauthenticated", "Log in to open a stream.")
FORBIDDEN = ("forbidden", "You are not a member of this tenant, or it does not exist.")


async def stream(request: Request) -> Response | EventStreamResponse:
    try:
        tenant_id = uuid.UUID(request.path_params["tenant"])
    except ValueError:
        return error(404, "not_found", "No such stream: the tenant id is not a UUID.")
    session_key = request.cookies.get(settings.SESSION_COOKIE_NAME)
    access = await sync_to_async(stream_access)(session_key, tenant_id)
    if access is Access.ANONYMOUS:
        return error(401, *UNAUTHENTICATED)
    if access is Access.FORBIDDEN:
        return error(403, *FORBIDDEN)

    hub: Hub = request.app.state.hub
    try:
        sub = await hub.open(tenant_id)
    except HubUnavailable:
        log.warning("stream for %s refused: the broker did not confirm the subscription", tenant_id)
        return error(503, "unavailable", "The live feed is unavailable; retry shortly.")
    return EventStreamResponse(
        hub,
        sub,
        heartbeat=settings.STREAM_HEARTBEAT_SECONDS,
        lifetime=settings.STREAM_MAX_LIFETIME_SECONDS,
        retry_ms=settings.STREAM_RETRY_MILLISECONDS,
    )


async def status(request: Request) -> Response:
    """This process's streams and subscriptions, for operators (staff only)."""
    user = await sync_to_async(session_user)(request.cookies.get(settings.SESSION_COOKIE_NAME))
    if not user.is_authenticated:
        return error(401, *UNAUTHENTICATED)
    if not user.is_staff:
        return error(403, "forbidden", "Only staff may read the stream status.")
    hub: Hub = request.app.state.hub
    return JSONResponse(
        {
            "streams": hub.stream_count,
            "channels": hub.channels,
            "frames_fanned_out": hub.stats.frames_fanned_out,
            "frames_dropped": hub.stats.frames_dropped,
            "overflows": hub.stats.overflows,
            "subscribe_failures": hub.stats.subscribe_failures,
        }
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    hub = Hub(
        get_source(),
        queue_frames=settings.STREAM_QUEUE_FRAMES,
        subscribe_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
    )
    await hub.start()
    app.state.hub = hub
    try:
        yield
    finally:
        await hub.stop()


def build() -> Starlette:
    return Starlette(
        routes=[
            Route(f"{PREFIX}/status", status),
            Route(f"{PREFIX}/{{tenant}}", stream),
        ],
        lifespan=lifespan,
    )
