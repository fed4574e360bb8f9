"""The hub's fan-out and subscription bookkeeping, over the embedded broker."""

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable

from metricstream.stream.broker import LocalBroker
from metricstream.stream.hub import HEARTBEAT_TICKS, Frame, Hub, Subscription
from metricstream.tenants.models import channel_for

ALICE = uuid.UUID("00000000-0000-4000-8000-00000000a11c")
BOB = uuid.UUID("00000000-0000-4000-8000-000000000b0b")


def payload(tenant: uuid.UUID, seq: int) -> bytes:
    return b'[{"tenant_id":"%s","seq":%d,"name":"cpu","value":1.0}]' % (str(tenant).encode(), seq)


async def take(sub: Subscription, within: float) -> list[Frame]:
    """What the stream would be handed, or [] if nothing wakes it within `within` seconds."""
    try:
        return await asyncio.wait_for(sub.take(), within)
    except TimeoutError:
        return []


def make_hub(broker: LocalBroker, **options: float) -> Hub:
    settings: dict = {
        "queue_frames": 8,
        "subscribe_timeout": 1.0,
        "heartbeat": 60.0,
        "lifetime": 3600.0,
        **options,
    }
    return Hub(broker, **settings)


def run(test: Callable[[Hub, LocalBroker], Awaitable[None]], **options: float) -> None:
    async def main() -> None:
        broker = LocalBroker()
        hub = make_hub(broker, **options)
        await hub.start()
        try:
            await test(hub, broker)
        finally:
            await hub.stop()

    asyncio.run(main())


def test_it_fans_one_frame_out_to_every_stream_of_the_tenant_only() -> None:
    async def test(hub: Hub, broker: LocalBroker) -> None:
        alice_1, alice_2, bob = await hub.open(ALICE), await hub.open(ALICE), await hub.open(BOB)
        broker.publish(channel_for(ALICE), payload(ALICE, 7))
        await asyncio.sleep(0)

        first, second = await take(alice_1, 1), await take(alice_2, 1)
        assert first == [(7, b"id: 7\nevent: metrics\ndata: " + payload(ALICE, 7) + b"\n\n")]
        assert first[0][1] is second[0][1], "a frame is encoded once, not once per stream"
        assert await take(bob, 0.05) == []

    run(test)


def test_it_subscribes_on_the_first_stream_and_unsubscribes_after_the_last() -> None:
    async def test(hub: Hub, broker: LocalBroker) -> None:
        first = await hub.open(ALICE)
        second = await hub.open(ALICE)
        assert (broker.subscriptions(), hub.stream_count) == (1, 2)

        hub.close(first)
        await asyncio.sleep(0.01)
        assert (broker.subscriptions(), hub.stream_count) == (1, 1)

        hub.close(second)
        await asyncio.sleep(0.01)
        assert (broker.subscriptions(), hub.stream_count, hub.channels) == (0, 0, [])

    run(test)


def test_it_drops_a_slow_streams_frames_without_touching_the_others() -> None:
    async def test(hub: Hub, broker: LocalBroker) -> None:
        slow, fast = await hub.open(ALICE), await hub.open(ALICE)
        for seq in range(1, 4):
            broker.publish(channel_for(ALICE), payload(ALICE, seq))
            await asyncio.sleep(0)
            assert [seq for seq, _ in await take(fast, 1)] == [seq]

        # The slow stream's inbox overflowed: emptied and marked for a catch-up.
        assert slow.behind
        assert await take(slow, 1) == []
        assert not fast.behind
        assert (hub.stats.overflows, hub.stats.frames_dropped) == (1, 3)

    run(test, queue_frames=2)


def test_it_delivers_what_a_job_thread_publishes() -> None:
    async def test(hub: Hub, broker: LocalBroker) -> None:
        sub = await hub.open(BOB)
        sub.behind = False  # as a stream does once it has read its starting point
        thread = threading.Thread(target=broker.publish, args=(channel_for(BOB), payload(BOB, 3)))
        thread.start()
        frames = await take(sub, 1)
        thread.join()
        assert frames == [(3, b"id: 3\nevent: metrics\ndata: " + payload(BOB, 3) + b"\n\n")]

    run(test)


def test_it_opens_a_stream_when_the_broker_is_slow_to_confirm() -> None:
    class Silent(LocalBroker):
        async def subscribe(self, channel: str) -> None:
            await asyncio.sleep(3600)

    async def main() -> None:
        hub = make_hub(Silent(), subscribe_timeout=0.1)
        await hub.start()
        try:
            sub = await hub.open(ALICE)
            # It will catch up from the database once the channel is live.
            assert hub.stream_count == 1
            assert hub.channels == []
            hub.close(sub)
        finally:
            await hub.stop()

    asyncio.run(main())


def test_it_marks_every_stream_behind_when_the_broker_connection_is_lost() -> None:
    async def test(hub: Hub, broker: LocalBroker) -> None:
        alice, bob = await hub.open(ALICE), await hub.open(BOB)
        hub._lost()
        assert alice.behind and bob.behind
        assert hub.channels == []

        alice.behind = bob.behind = False
        hub._restored()
        await asyncio.sleep(0.01)
        # Resubscribed, and the streams catch up whatever the outage hid.
        assert len(hub.channels) == 2
        assert alice.behind and bob.behind

    run(test)


def test_it_wakes_a_quiet_stream_for_a_heartbeat_and_not_one_that_wrote() -> None:
    async def test(hub: Hub, broker: LocalBroker) -> None:
        quiet, busy = await hub.open(ALICE), await hub.open(ALICE)
        quiet.behind = busy.behind = False
        for _ in range(HEARTBEAT_TICKS + 2):
            await asyncio.sleep(0.1 / HEARTBEAT_TICKS)
            busy.wrote()  # as the stream does on every write
        assert quiet.heartbeat_due and not busy.heartbeat_due
        assert await take(quiet, 0.01) == []  # woken, with nothing but the heartbeat due

        quiet.wrote()
        assert not quiet.heartbeat_due

    run(test, heartbeat=0.1)


def test_it_closes_a_stream_at_the_end_of_its_lifetime() -> None:
    async def test(hub: Hub, broker: LocalBroker) -> None:
        sub = await hub.open(BOB)
        sub.behind = False  # as a stream does once it has read its starting point
        assert not sub.closing
        await take(sub, 1.0)
        assert sub.closing

    run(test, heartbeat=10.0, lifetime=0.2)
