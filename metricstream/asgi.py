"""The one ASGI application: /api/v1/stream/ to the Starlette stream app, the rest to Django."""

import os

from django.core.asgi import get_asgi_application
from starlette.types import Receive, Scope, Send

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")
django_app = get_asgi_application()  # sets Django up before the stream app imports models

from pathlib import Path  # noqa: E402

from django.conf import settings  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402

from metricstream.stream.app import PREFIX, STATUS_PATH, build, stream_endpoint  # noqa: E402

stream_app = build()
stream = stream_endpoint(stream_app)
# The dashboard's own scripts and styles, and the vendored uPlot build that
# `make` copies in from node_modules: served here, so one process serves all.
static_app = StaticFiles(directory=Path(__file__).parent / "dashboard" / "static")
_STREAM_PATH = PREFIX + "/"
_STATIC_PATH = settings.STATIC_URL


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    # Django's handler serves HTTP only; the stream app owns the lifespan (its hub).
    if scope["type"] == "lifespan":
        await stream_app(scope, receive, send)
    elif scope["path"].startswith(_STREAM_PATH):
        handler = stream_app if scope["path"] == STATUS_PATH else stream
        await handler(scope, receive, send)
    elif scope["path"].startswith(_STATIC_PATH):
        await static_app({**scope, "path": scope["path"][len(_STATIC_PATH) - 1 :]}, receive, send)
    else:
        await django_app(scope, receive, send)
