"""Replay reads: identical reads waiting for a thread are shared, started ones never joined."""

import asyncio
import threading

from metricstream.stream.reads import Reads, ReplayLimits

LIMITS = ReplayLimits(max_batches=10, max_age_seconds=60, page_batches=10, page_metrics=100)


def test_it_shares_identical_reads_that_have_not_started() -> None:
    async def main() -> tuple[list[int], int]:
        reads = Reads(threads=1, limits=LIMITS)
        release = threading.Event()
        calls: list[str] = []

        def read(name: str) -> int:
            calls.append(name)
            release.wait(5)
            return len(calls)

        try:
            # The only thread is busy with a first read, so the next ones wait...
            first = asyncio.ensure_future(reads._shared("a", lambda: read("a")))
            await asyncio.sleep(0.05)
            # ...and these ten identical ones become a single read.
            rest = [asyncio.ensure_future(reads._shared("a", lambda: read("a"))) for _ in range(10)]
            await asyncio.sleep(0.05)
            release.set()
            results = await asyncio.gather(first, *rest)
            return results, len(calls)
        finally:
            reads.close()

    results, calls = asyncio.run(main())

    # The started read was not joined: the others got a read of their own, made after they asked.
    assert calls == 2
    assert results == [1] + [2] * 10
