"""Transport between the ingest job and the stream hubs: Redis Pub/Sub or in-process.

Publishing is synchronous (the job runs in a worker thread or process);
receiving is asynchronous (the hub runs in the web process's event loop).
Both transports implement the same two interfaces.
"""

import asyncio
import threading
from collections.abc import Callable
from functools import cache
from typing import Protocol

import redis
from django.conf import settings

Deliver = Callable[[str, bytes], None]
Notify = Callable[[], None]


class Publisher(Protocol):
    def publish(self, channel: str, payload: bytes) -> None: ...


class Source(Protocol):
    """What the hub reads from.

    `connect` starts the source; it calls `restored` each time a connection is
    (re-)established with no channel subscribed, and `lost` when one is lost;
    `subscribe` returns once the broker has confirmed the subscription.
    """

    @property
    def connected(self) -> bool: ...
    @property
    def reconnects(self) -> int: ...
    async def connect(self, deliver: Deliver, lost: Notify, restored: Notify) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def close(self) -> None: ...


class RedisPublisher:
    def __init__(self, url: str, timeout: float) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def publish(self, channel: str, payload: bytes) -> None:
        self._client.publish(channel, payload)


class LocalBroker:
    """The embedded stand-in for Redis Pub/Sub: delivers into one process's event loop.

    It is both the publisher (called from the job's thread) and the hub's source.
    """

    connected = True
    reconnects = 0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None

    def publish(self, channel: str, payload: bytes) -> None:
        with self._lock:
            loop, deliver = self._loop, self._deliver
            subscribed = channel in self._channels
        if loop is None or deliver is None or not subscribed:
            return  # like Pub/Sub: nobody listening, nothing kept
        loop.call_soon_threadsafe(deliver, channel, payload)

    async def connect(self, deliver: Deliver, lost: Notify, restored: Notify) -> None:
        with self._lock:
            self._loop, self._deliver = asyncio.get_running_loop(), deliver
        restored()

    async def subscribe(self, channel: str) -> None:
        with self._lock:
            self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        with self._lock:
            self._channels.discard(channel)

    async def close(self) -> None:
        with self._lock:
            self._loop = self._deliver = None
            self._channels.clear()

    def subscriptions(self) -> int:
        with self._lock:
            return len(self._channels)


@cache
def local_broker() -> LocalBroker:
    return LocalBroker()


@cache
def get_publisher() -> Publisher:
    if settings.REDIS_URL:
        return RedisPublisher(settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT_SECONDS)
    return local_broker()


def get_source() -> Source:
    if settings.REDIS_URL:
        from metricstream.stream.redis_source import RedisSource

        return RedisSource(
            settings.REDIS_URL,
            settings.REDIS_SOCKET_TIMEOUT_SECONDS,
            settings.REDIS_HEALTH_CHECK_SECONDS,
            # Between two turns of the streams a quarter of an inbox fills at most,
            # and each stream still writes up to that many batches at once.
            burst=max(1, settings.STREAM_QUEUE_FRAMES // 4),
        )
    return local_broker()
