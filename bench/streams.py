"""The SSE client processes as a group: start them, open their streams, follow them, close them."""

import itertools
import multiprocessing.connection
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import fixtures, sseclient
from bench.children import Child, pump_until, results_of
from bench.console import say

CHILD_READY_TIMEOUT_SECONDS = 120.0
STREAMS_OPEN_TIMEOUT_SECONDS = 60.0
STREAMS_CLOSED_TIMEOUT_SECONDS = 15.0
RESULT_TIMEOUT_SECONDS = 60.0
_generations = itertools.count(1)


def client_configs(
    seeded: fixtures.Seeded,
    *,
    streams: int,
    clients: int,
    port: int,
    max_seconds: float,
    channels: list[str] | None = None,
    redis_url: str = "",
    progress_seconds: float = sseclient.PROGRESS_SECONDS,
) -> list[sseclient.ClientConfig]:
    """Stream i watches tenant i mod T; streams are dealt to the clients in turn.

    `channels`, if given, are the tenants' channels for the Redis baseline,
    which then lives in client 0.
    """
    specs = stream_specs(seeded, 0, streams)
    return [
        sseclient.ClientConfig(
            host="127.0.0.1",
            port=port,
            streams=specs[k::clients],
            channels=(channels or []) if k == 0 else [],
            redis_url=redis_url,
            max_seconds=max_seconds,
            progress_seconds=progress_seconds,
        )
        for k in range(clients)
    ]


def stream_specs(seeded: fixtures.Seeded, first: int, count: int) -> list[sseclient.StreamSpec]:
    """Streams first..first+count-1; stream i watches tenant i mod T, as its viewer."""
    tenants = len(seeded.tenant_ids)
    return [
        sseclient.StreamSpec(
            tenant=i % tenants,
            tenant_id=seeded.tenant_ids[i % tenants],
            session=seeded.viewer_sessions[i % tenants],
        )
        for i in range(first, first + count)
    ]


def start_clients(configs: list[sseclient.ClientConfig]) -> list[Child]:
    return [Child(f"sse-client-{k}", sseclient.run, config) for k, config in enumerate(configs)]


@dataclass
class Opened:
    streams_of: Counter[int]  # open streams per tenant index
    failures: dict[str, int]
    status: dict  # the server's status once it counted them
    reached: bool  # the server counted as many streams as the clients opened
    warnings: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.streams_of.values())


def open_streams(clients: list[Child], server: fixtures.Server, staff: str, streams: int) -> Opened:
    """Wait for the clients' streams, then for the server to count them."""
    say(f"clients: opening {streams} streams from {len(clients)} process(es)")
    pump_until(
        clients,
        lambda: all(c.ready is not None for c in clients),
        CHILD_READY_TIMEOUT_SECONDS,
        "the SSE clients to open their streams",
    )
    streams_of: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    for c in clients:
        assert c.ready is not None
        streams_of.update(c.ready[0])
        failures.update(c.ready[1])
    opened = sum(streams_of.values())
    reached, status = fixtures.wait_for_streams(
        server.base, staff, opened, STREAMS_OPEN_TIMEOUT_SECONDS
    )
    say(
        f"clients: {opened} streams open, {sum(failures.values())} failed; server reports "
        f"{status['streams']} streams on {len(status.get('channels', []))} channels"
    )
    result = Opened(streams_of, dict(failures), status, reached)
    if failures:
        result.warnings.append(f"streams that failed to open: {dict(failures)}")
    if not reached:
        result.warnings.append(
            f"the server reported {status['streams']} open streams, expected {opened}"
        )
    return result


def close_streams(
    clients: list[Child], server: fixtures.Server, staff: str
) -> tuple[list[sseclient.ClientResult], dict, bool]:
    """Stop the clients (they close their sockets) and collect their results.

    Returns the results, the server's status afterwards and whether its stream
    count returned to 0.
    """
    for c in clients:
        c.send("stop")
    results = results_of(clients, RESULT_TIMEOUT_SECONDS, "the SSE clients' results")
    closed, status = fixtures.wait_for_streams(
        server.base, staff, 0, STREAMS_CLOSED_TIMEOUT_SECONDS
    )
    say(f"clients: streams closed; server now reports {status['streams']} open streams")
    return results, status, closed


def frames_received(clients: list[Child]) -> int:
    return sum(c.progress[0] for c in clients if c.progress)


def streams_complete(clients: list[Child], generation: int) -> int | None:
    """Streams complete against the targets of `generation`; None until every client counted."""
    if not all(len(c.progress) > 5 and c.progress[5] == generation for c in clients):
        return None
    return sum(c.progress[3] for c in clients)


def set_targets(clients: list[Child], targets: dict[int, int]) -> int:
    """Tell the clients the seq each tenant's streams must reach; returns the generation."""
    generation = next(_generations)
    for c in clients:
        c.send(("target", generation, dict(targets)))
    return generation


def wait_complete(
    clients: list[Child],
    generation: int,
    want: int,
    timeout: float,
    what: str,
    every: float = 2.0,
    tick: Callable[[], None] | None = None,
) -> bool:
    """Wait until `want` streams are complete against a generation of targets; False on timeout.

    Prints a progress line every `every` seconds; calls `tick` on every wake-up.
    """
    started = time.monotonic()
    deadline = started + timeout
    next_line = started + every
    while True:
        multiprocessing.connection.wait([c.conn for c in clients], 0.05)
        for c in clients:
            c.pump()
        if tick is not None:
            tick()
        complete = streams_complete(clients, generation)
        if complete is not None and complete >= want:
            return True
        now = time.monotonic()
        if now >= deadline:
            say(f"  {what}: gave up after {timeout:g}s with {complete}/{want} streams complete")
            return False
        if now >= next_line:
            shown = "?" if complete is None else complete
            say(
                f"  {what}: {shown}/{want} streams complete, "
                f"{frames_received(clients):,} frames so far"
            )
            next_line = now + every


class Timeline:
    """Each client's frame count over time (from its progress messages), for live rates."""

    def __init__(self, clients: list[Child]) -> None:
        self.clients = clients
        self.points: list[list[tuple[float, int]]] = [[] for _ in clients]

    def record(self) -> None:
        for points, c in zip(self.points, self.clients, strict=True):
            if len(c.progress) > 4 and (not points or points[-1][0] != c.progress[4]):
                points.append((c.progress[4], c.progress[0]))

    def frames_at(self, moment: float) -> float:
        """Frames received by `moment`, interpolated between progress reports."""
        total = 0.0
        for points in self.points:
            before = [p for p in points if p[0] <= moment]
            after = [p for p in points if p[0] > moment]
            if not before:
                continue
            t1, f1 = before[-1]
            if not after:
                total += f1
                continue
            t2, f2 = after[0]
            total += f1 + (f2 - f1) * (moment - t1) / (t2 - t1)
        return total

    def rate(self, start: float, end: float) -> float:
        return (self.frames_at(end) - self.frames_at(start)) / (end - start) if end > start else 0.0
