"""Running the ASGI application under uvicorn."""

import argparse
import asyncio
import logging
import socket
from types import FrameType

import uvicorn
from django.conf import settings

log = logging.getLogger("metricstream.serve")

# On SIGTERM, open streams get this long to end before they are cancelled;
# browsers then reconnect elsewhere.
SHUTDOWN_GRACE_SECONDS = 5


def add_bind_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to bind (default: %(default)s)"
    )


def describe_mode() -> str:
    if settings.EMBEDDED:
        database = settings.DATABASES["default"]["NAME"]
        return f"embedded default: SQLite at {database}, jobs and broker in-process"
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = "Redis" if settings.REDIS_URL else "in-process (no REDIS_URL)"
    return f"database: {engine}; broker: {broker}"


class GracefulServer(uvicorn.Server):
    """On SIGTERM/SIGINT, end open streams at once so uvicorn's own drain completes quickly.

    Browsers reconnect (to any replica) with Last-Event-ID and miss nothing.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        from metricstream.stream.app import drain

        loop = getattr(self, "_loop", None)
        if loop is not None and not self.should_exit:
            log.info("shutting down: ending open streams (grace %ss)", SHUTDOWN_GRACE_SECONDS)
            loop.call_soon_threadsafe(drain)
        super().handle_exit(sig, frame)


def server(host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        "metricstream.asgi:application",
        host=host,
        port=port,
        lifespan="on",
        log_level=settings.LOG_LEVEL.lower(),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        # Streams are long-lived by design; proxies in front set their own limits.
        timeout_keep_alive=5,
    )
    return GracefulServer(config)
