"""The hub's Redis Pub/Sub connection: one per web process, whatever the number of streams.

redis-py's asyncio PubSub does not tell its owner when it reconnects, and a
reconnect is exactly when streams must catch up from the database. So this
source owns the connection's life: it notices a lost connection (a failed read,
or silence after a PING, which catches half-open TCP), reconnects with capped,
jittered backoff, and reports both events to the hub.
"""

import asyncio
import contextlib
import logging
import random

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from metricstream.stream.broker import Deliver, Notify

log = logging.getLogger(__name__)

# Reconnect backoff: doubling from the first delay to the cap, each wait
# jittered so many web processes do not reconnect in lockstep.
RECONNECT_FIRST_DELAY_SECONDS = 0.1
RECONNECT_MAX_DELAY_SECONDS = 2.0


class SourceDown(ConnectionError):
    """No connection to Redis at the moment; the hub resubscribes on restore."""


class RedisSource:
    def __init__(self, url: str, timeout: float, health_check: float, burst: int) -> None:
        self._timeout = timeout
        # Messages dispatched before the reader hands the loop back to the streams.
        # A backlog in the socket is otherwise read in one go, every message landing
        # in every inbox before any stream writes, and the inboxes overflow.
        self._burst = burst
        # An idle connection is PINGed after `health_check` seconds; no answer
        # within `timeout` after that means the connection is gone.
        self._health_check = health_check
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # No silent retries: redis-py would reconnect and resubscribe behind our
            # back, and the streams would never learn they must catch up.
            retry=Retry(NoBackoff(), 0),
            # Named, so `CLIENT LIST` shows which connections are the hubs'.
            client_name="metricstream-hub",
            # Servers before Redis 8 answer this handshake step with an error that
            # would be read as a lost connection on every reconnect.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._pubsub: aioredis.client.PubSub | None = None
        self._runner: asyncio.Task[None] | None = None
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self.connected = False
        self.reconnects = 0

    async def connect(self, deliver: Deliver, lost: Notify, restored: Notify) -> None:
        self._runner = asyncio.create_task(self._run(deliver, lost, restored), name="redis-pubsub")

    async def subscribe(self, channel: str) -> None:
        """Returns once Redis has confirmed, so nothing published afterwards is missed."""
        pubsub = self._live()
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[channel.encode()] = confirmed
        try:
            await pubsub.subscribe(channel)
            async with asyncio.timeout(self._timeout):
                await confirmed
        finally:
            self._confirmations.pop(channel.encode(), None)

    async def unsubscribe(self, channel: str) -> None:
        await self._live().unsubscribe(channel)

    async def close(self) -> None:
        if self._runner:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self._drop_connection()
        await self._client.aclose()

    def _live(self) -> aioredis.client.PubSub:
        if not self.connected or self._pubsub is None:
            raise SourceDown("not connected to Redis")
        return self._pubsub

    async def _run(self, deliver: Deliver, lost: Notify, restored: Notify) -> None:
        delay = RECONNECT_FIRST_DELAY_SECONDS
        first = True
        while True:
            try:
                await self._open()
                if not first:
                    self.reconnects += 1
                    log.warning("Redis Pub/Sub connection restored")
                first = False
                self.connected = True
                delay = RECONNECT_FIRST_DELAY_SECONDS
                restored()
                await self._read(deliver)
            except (RedisError, OSError, TimeoutError) as exc:
                if self.connected:
                    log.warning("Redis Pub/Sub connection lost: %s", exc or type(exc).__name__)
                else:
                    log.debug("Redis still unreachable: %s", exc)
            if self.connected:
                self.connected = False
                lost()
            await self._drop_connection()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX_DELAY_SECONDS)

    async def _open(self) -> None:
        self._pubsub = self._client.pubsub()
        await self._pubsub.connect()
        await self._pubsub.ping()  # answered as a "pong" message, read by _read

    async def _drop_connection(self) -> None:
        for confirmed in self._confirmations.values():
            if not confirmed.done():
                confirmed.set_exception(SourceDown("connection lost"))
        self._confirmations.clear()
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def _read(self, deliver: Deliver) -> None:
        assert self._pubsub is not None
        pubsub = self._pubsub
        pinged = False
        since_yield = 0
        while True:
            message = await pubsub.get_message(
                timeout=self._timeout if pinged else self._health_check
            )
            if message is None:
                if pinged:
                    raise TimeoutError(f"no answer to PING within {self._timeout}s")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            kind = message["type"]
            if kind == "message":
                deliver(message["channel"].decode(), message["data"])
                since_yield += 1
                if since_yield >= self._burst:
                    since_yield = 0
                    await asyncio.sleep(0)
            elif kind == "subscribe":
                confirmed = self._confirmations.get(message["channel"])
                if confirmed and not confirmed.done():
                    confirmed.set_result(None)
