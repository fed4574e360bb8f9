"""The hub's Redis Pub/Sub connection: one per web process, whatever the number of streams."""

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from metricstream.stream.broker import Deliver

log = logging.getLogger(__name__)

# Waiting after a failed read before the next attempt reconnects; capped so a
# Redis that comes back is noticed within a second.
RECONNECT_DELAY_SECONDS = 0.2
RECONNECT_DELAY_MAX_SECONDS = 1.0


class RedisSource:
    def __init__(self, url: str, timeout: float) -> None:
        self._timeout = timeout
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._pubsub = self._client.pubsub()
        self._deliver: Deliver | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Subscriptions waiting for Redis to confirm them.
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}

    async def connect(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._reader = asyncio.create_task(self._read(), name="redis-pubsub-reader")

    async def subscribe(self, channel: str) -> None:
        """Returns once Redis has confirmed, so nothing published afterwards is missed."""
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[channel.encode()] = confirmed
        await self._pubsub.subscribe(channel)
        self._ready.set()
        async with asyncio.timeout(self._timeout):
            await confirmed

    async def unsubscribe(self, channel: str) -> None:
        await self._pubsub.unsubscribe(channel)

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._pubsub.aclose()
        await self._client.aclose()

    async def _read(self) -> None:
        assert self._deliver is not None
        deliver = self._deliver
        await self._ready.wait()  # the connection exists from the first subscribe on
        delay = RECONNECT_DELAY_SECONDS
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("Redis Pub/Sub read failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY_MAX_SECONDS)
                continue
            delay = RECONNECT_DELAY_SECONDS
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                deliver(message["channel"].decode(), message["data"])
            elif kind == "subscribe":
                confirmed = self._confirmations.pop(message["channel"], None)
                if confirmed and not confirmed.done():
                    confirmed.set_result(None)
