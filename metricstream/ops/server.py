"""Running the ASGI application under uvicorn."""

import argparse
import logging

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
    return uvicorn.Server(config)
