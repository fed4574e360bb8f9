"""The stream hub: one broker subscription per tenant per process, fanned out to its streams.

A tenant's channel is subscribed when its first local stream opens and
unsubscribed after its last one closes. All subscribe and unsubscribe calls
go through one manager task, so they never race one another and a stream
that closes inside a cancelled task need not await anything.

The hub never blocks on a stream. When a stream's inbox overflows, or its
channel's subscription was lost and restored, the stream is marked `behind`
and catches up from the database (see `response.py`).
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass

from metricstream.stream.broker import Source
from metricstream.stream.events import metrics_frame, seq_of
from metricstream.tenants.models import channel_for

log = logging.getLogger(__name__)

# After a failed (un)subscribe on a live connection, the manager retries after this.
RESUBSCRIBE_DELAY_SECONDS = 0.5
# The hub's ticker runs this many times per heartbeat interval: a quiet stream's
# heartbeat leaves 1 to 1 + 1/HEARTBEAT_TICKS intervals after its last write.
HEARTBEAT_TICKS = 4

Frame = tuple[int, bytes]  # (sequence number, encoded SSE frame)


class Subscription:
    """One stream's bounded inbox. Pushing never blocks: a full inbox is emptied."""

    __slots__ = (
        "_frames",
        "_waiter",
        "behind",
        "channel",
        "closing",
        "deadline",
        "heartbeat_due",
        "limit",
        "quiet_ticks",
        "tenant_id",
    )

    def __init__(self, tenant_id: uuid.UUID, limit: int, deadline: float) -> None:
        self.tenant_id = tenant_id
        self.channel = channel_for(tenant_id)
        self.limit = limit
        # Set when live frames may have been missed: catch up from the database.
        self.behind = False
        self.closing = False
        # The loop time at which the stream ends (its maximum lifetime).
        self.deadline = deadline
        # Hub ticks since the stream last wrote; the stream resets it on every write.
        self.quiet_ticks = 0
        self.heartbeat_due = False
        # A list and a future made only while waiting, not a deque and an Event:
        # each of those holds a 64-slot block, once per open stream.
        self._frames: list[Frame] = []
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def push(self, frame: Frame) -> int:
        """Queue a frame; returns how many frames were dropped to stay within the limit."""
        dropped = 0
        if len(self._frames) >= self.limit:
            dropped = len(self._frames) + 1
            self._frames.clear()
            self.behind = True
        else:
            self._frames.append(frame)
        self._wake()
        return dropped

    def mark_behind(self) -> None:
        self.behind = True
        self._wake()

    def close_soon(self) -> None:
        self.closing = True
        self._wake()

    def wrote(self) -> None:
        self.quiet_ticks = 0
        self.heartbeat_due = False

    def tick(self, now: float) -> None:
        if now >= self.deadline:
            self.close_soon()
            return
        self.quiet_ticks += 1
        if self.quiet_ticks >= HEARTBEAT_TICKS:
            self.heartbeat_due = True
            self._wake()

    async def take(self) -> list[Frame]:
        """Every pending frame, waiting for one or a state change (behind, closing, heartbeat).

        No timer per wait: the hub's one ticker wakes quiet streams for heartbeats.
        """
        if not self._frames and not self.behind and not self.closing and not self.heartbeat_due:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frames, self._frames = self._frames, []
        return frames


@dataclass
class HubStats:
    frames_fanned_out: int = 0
    frames_dropped: int = 0
    overflows: int = 0
    subscribe_failures: int = 0
    catch_ups: int = 0
    catch_up_batches: int = 0
    resets: int = 0


class Hub:
    def __init__(
        self,
        source: Source,
        *,
        queue_frames: int,
        subscribe_timeout: float,
        heartbeat: float,
        lifetime: float,
    ) -> None:
        self._source = source
        self._queue_frames = queue_frames
        self._subscribe_timeout = subscribe_timeout
        self._lifetime = lifetime
        # One timer for every stream, instead of one per stream per wait.
        self._tick_seconds = min(heartbeat, lifetime) / HEARTBEAT_TICKS
        self._ticker: asyncio.Task[None] | None = None
        self._streams: dict[str, set[Subscription]] = {}
        self._active: set[str] = set()  # channels the broker has confirmed
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._manager: asyncio.Task[None] | None = None
        self.draining = False
        self.stats = HubStats()

    async def start(self) -> None:
        self._manager = asyncio.create_task(self._manage(), name="hub-subscriptions")
        self._ticker = asyncio.create_task(self._tick(), name="hub-heartbeats")
        await self._source.connect(self._dispatch, self._lost, self._restored)

    async def stop(self) -> None:
        tasks = [task for task in (self._manager, self._ticker) if task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._source.close()

    def drain(self) -> None:
        """Stop taking streams and end the open ones (graceful shutdown)."""
        self.draining = True
        for streams in self._streams.values():
            for sub in streams:
                sub.close_soon()

    @property
    def connected(self) -> bool:
        return self._source.connected

    @property
    def reconnects(self) -> int:
        return self._source.reconnects

    @property
    def stream_count(self) -> int:
        return sum(len(streams) for streams in self._streams.values())

    @property
    def behind_count(self) -> int:
        return sum(sub.behind for streams in self._streams.values() for sub in streams)

    @property
    def channels(self) -> list[str]:
        return sorted(self._active)

    async def open(self, tenant_id: uuid.UUID) -> Subscription:
        """A new stream's subscription, once its channel is live at the broker if it can be.

        When the broker is down or slow to confirm, the stream starts anyway: it
        is marked behind when the channel becomes live, and catches up then.
        """
        deadline = asyncio.get_running_loop().time() + self._lifetime
        sub = Subscription(tenant_id, self._queue_frames, deadline)
        self._streams.setdefault(sub.channel, set()).add(sub)
        if sub.channel in self._active:
            return sub
        ready = self._ready.get(sub.channel)
        if ready is None:
            ready = self._ready[sub.channel] = asyncio.get_running_loop().create_future()
        self._mark(sub.channel)
        if not self.connected:
            return sub
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            log.warning("%s not confirmed in time; the stream will catch up", sub.channel)
        except BaseException:
            self.close(sub)
            raise
        return sub

    def close(self, sub: Subscription) -> None:
        """Synchronous, so a cancelled stream task can call it from `finally`."""
        streams = self._streams.get(sub.channel)
        if streams is None or sub not in streams:
            return
        streams.discard(sub)
        if not streams:
            del self._streams[sub.channel]
            self._mark(sub.channel)

    def _mark(self, channel: str) -> None:
        self._dirty.add(channel)
        self._dirty_event.set()

    def _lost(self) -> None:
        self._active.clear()
        for streams in self._streams.values():
            for sub in streams:
                sub.mark_behind()

    def _restored(self) -> None:
        for channel in self._streams:
            self._mark(channel)

    def _dispatch(self, channel: str, payload: bytes) -> None:
        streams = self._streams.get(channel)
        if not streams:
            return
        seq = seq_of(payload)
        if seq is None:
            log.error("dropping a message without a sequence number on %s", channel)
            return
        frame = (seq, metrics_frame(seq, payload))  # encoded once, written by every stream
        stats = self.stats
        for sub in streams:
            dropped = sub.push(frame)
            if dropped:
                stats.overflows += 1
                stats.frames_dropped += dropped
            else:
                stats.frames_fanned_out += 1

    async def _tick(self) -> None:
        """Wake streams that have been quiet for a heartbeat interval, end those past lifetime."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick_seconds)
            now = loop.time()
            # Ticking only sets flags and wakes waiters: no stream opens or closes meanwhile.
            for streams in self._streams.values():
                for sub in streams:
                    sub.tick(now)

    async def _manage(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            while self._dirty and self.connected:
                channel = self._dirty.pop()
                try:
                    await self._reconcile(channel)
                except Exception as exc:
                    self.stats.subscribe_failures += 1
                    log.warning("could not (un)subscribe %s: %s", channel, exc)
                    if self.connected:
                        await asyncio.sleep(RESUBSCRIBE_DELAY_SECONDS)
                    # Down: the restore marks every wanted channel again.
                    self._mark(channel)

    async def _reconcile(self, channel: str) -> None:
        wanted = channel in self._streams
        if wanted and channel not in self._active:
            await self._source.subscribe(channel)
            self._active.add(channel)
            # Whatever was published before the subscription was confirmed
            # reached no one here: every stream of the channel checks the database.
            for sub in self._streams.get(channel, ()):
                sub.mark_behind()
        elif not wanted and channel in self._active:
            self._active.discard(channel)
            await self._source.unsubscribe(channel)
        ready = self._ready.pop(channel, None)
        if ready and not ready.done():
            ready.set_result(None)
