"""The stream app's database reads, on a small thread pool of their own.

The stream app is async and the ORM is not; these reads (authorisation at
connect, replay and catch-up) run on a bounded pool so that a thousand streams
catching up at once queue here instead of exhausting database connections or
starving Django's own thread.
"""

import asyncio
import threading
import uuid
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from metricstream.stream import selectors
from metricstream.stream.events import metrics_frame

T = TypeVar("T")


@dataclass(frozen=True)
class ReplayLimits:
    # The replay window: a Last-Event-ID further back than either gets `reset`.
    max_batches: int
    max_age_seconds: float
    # One replay query returns at most this much.
    page_batches: int
    page_metrics: int


class Reads:
    def __init__(self, *, threads: int, limits: ReplayLimits) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stream-db")
        self.limits = limits
        # Identical replay reads that have not started yet, shared: after a Redis
        # outage every stream of a tenant asks for the same page at the same
        # moment. A read that has started is never joined, so no stream gets an
        # answer older than its question.
        self._waiting: dict[Hashable, tuple[object, asyncio.Future[Any]]] = {}
        self._lock = threading.Lock()

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _shared(self, key: Hashable, call: Callable[[], T]) -> T:
        token = object()

        def start() -> T:
            with self._lock:
                if self._waiting.get(key, (None,))[0] is token:
                    del self._waiting[key]
            return call()

        with self._lock:
            waiting = self._waiting.get(key)
            if waiting is None:
                future = asyncio.get_running_loop().run_in_executor(self._executor, start)
                self._waiting[key] = (token, future)
            else:
                future = waiting[1]
        # Shielded: one stream leaving must not cancel the read for the others.
        return await asyncio.shield(future)

    async def access(self, session_key: str | None, tenant_id: uuid.UUID) -> selectors.Access:
        return await self._run(partial(selectors.stream_access, session_key, tenant_id))

    async def resume_point(
        self, tenant_id: uuid.UUID, last_id: int | None
    ) -> selectors.ResumePoint:
        return await self._shared(
            ("resume", tenant_id, last_id),
            partial(
                selectors.resume_point,
                tenant_id,
                last_id,
                max_batches=self.limits.max_batches,
                max_age_seconds=self.limits.max_age_seconds,
            ),
        )

    async def frames_after(self, tenant_id: uuid.UUID, after: int) -> tuple[int, int, bytes]:
        """One replay page, framed once for every stream that shares it.

        Returns (last sequence number in the page, batches in it, the SSE frames);
        (after, 0, b"") when nothing was committed after `after`.
        """
        return await self._shared(("page", tenant_id, after), partial(self._page, tenant_id, after))

    def _page(self, tenant_id: uuid.UUID, after: int) -> tuple[int, int, bytes]:
        page = selectors.batches_after(
            tenant_id,
            after,
            max_batches=self.limits.page_batches,
            max_metrics=self.limits.page_metrics,
        )
        if not page:
            return after, 0, b""
        return page[-1][0], len(page), b"".join(metrics_frame(seq, body) for seq, body in page)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
