"""The one ASGI application: /api/v1/stream/ to the Starlette stream app, the rest to Django."""

import os

from django.core.asgi import get_asgi_application
from starlette.types import Receive, Scope, Send

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")
django_app = get_asgi_application()  # sets Django up before the stream app imports models

from metricstream.stream.app import PREFIX, build  # noqa: E402

stream_app = build()
_STREAM_PATH = PREFIX + "/"


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    # Django's handler serves HTTP only; the stream app owns the lifespan (its hub).
    if scope["type"] == "lifespan" or scope["path"].startswith(_STREAM_PATH):
        await stream_app(scope, receive, send)
    else:
        await django_app(scope, receive, send)
