"""The capacity benchmark's client processes: idle SSE streams opened in groups, closed or killed.

Each group of streams lives in client processes of its own (bench/sseclient.py),
so streams can be added a step at a time and a whole step closed or killed.
"""

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from bench import capacity_probe as probe
from bench import fixtures, sseclient, streams
from bench.children import Child, pump_until, stop_all

# Opening thousands of streams through the session check takes a while on 2 cores.
CHILD_READY_TIMEOUT_SECONDS = 240.0
# One stream's connect + response head; a server out of fds stalls here.
OPEN_TIMEOUT_SECONDS = 20.0
RESULT_TIMEOUT_SECONDS = 60.0
# The client processes end on their own after this, whatever happens to the run.
CLIENT_MAX_SECONDS = 1800.0
CLIENT_PROGRESS_SECONDS = 1.0
CLIENT_OPEN_CONCURRENCY = 100


@dataclass
class Side:
    """One server's part of the run: what was measured, and the clients still alive."""

    label: str
    points: list[dict[str, Any]] = field(default_factory=list)
    open_seconds: dict[int, float] = field(default_factory=dict)
    held: int = 0
    failed_at: int | None = None
    failures: dict[str, int] = field(default_factory=dict)
    teardown: probe.Teardown | None = None
    exit_code: int | None = None
    log: str = ""
    live: list[tuple[int, Child]] = field(default_factory=list)  # (ramp boundary, client)

    @property
    def clients(self) -> list[Child]:
        return [c for _, c in self.live]

    def tick(self) -> None:
        """Read the clients' progress, so their pipes never fill while we wait elsewhere."""
        for c in self.clients:
            c.pump()

    def alive_streams(self) -> int:
        """Streams the clients opened and have not seen closed by the server."""
        self.tick()
        opened = sum(len(c.ready[0]) for c in self.clients if c.ready is not None)
        return opened - sum(c.progress[2] for c in self.clients if c.progress)


def start_group(
    seeded: fixtures.Seeded, port: int, first: int, count: int, per_client: int
) -> list[Child]:
    """Client processes for streams first..first+count-1; stream i watches tenant i mod T."""
    specs = streams.stream_specs(seeded, first, count)
    chunks = [specs[k : k + per_client] for k in range(0, len(specs), per_client)]
    return [
        Child(
            f"capacity-client-{first + k * per_client}",
            sseclient.run,
            sseclient.ClientConfig(
                host="127.0.0.1",
                port=port,
                streams=chunk,
                channels=[],
                redis_url="",
                open_concurrency=CLIENT_OPEN_CONCURRENCY,
                open_timeout=OPEN_TIMEOUT_SECONDS,
                max_seconds=CLIENT_MAX_SECONDS,
                progress_seconds=CLIENT_PROGRESS_SECONDS,
            ),
        )
        for k, chunk in enumerate(chunks)
    ]


def open_group(
    side: Side,
    target: probe.Target,
    seeded: fixtures.Seeded,
    first: int,
    upto: int,
    per_client: int,
) -> int:
    """Open streams first..upto-1 in new clients; the server's stream count afterwards."""
    started = time.monotonic()
    group = start_group(seeded, target.server.port, first, upto - first, per_client)
    side.live += [(upto, c) for c in group]
    pump_until(
        group,
        lambda: all(c.ready is not None for c in group),
        CHILD_READY_TIMEOUT_SECONDS,
        f"{side.label}: clients opening streams up to {upto:,}",
    )
    for c in group:
        assert c.ready is not None
        for reason, n in c.ready[1].items():
            side.failures[reason] = side.failures.get(reason, 0) + n
    count = target.wait_streams(side.alive_streams(), side.tick)
    side.open_seconds[upto] = round(time.monotonic() - started, 2)
    return count


def stop_clients(clients: list[Child]) -> None:
    """Ask the clients to close their streams and report, then make sure they are gone."""
    alive = [c for c in clients if c.process.is_alive() and not c.conn.closed]
    for c in alive:
        with contextlib.suppress(OSError, ValueError):
            c.send("stop")
    with contextlib.suppress(SystemExit):
        pump_until(
            alive,
            lambda: all(c.result is not None for c in alive),
            RESULT_TIMEOUT_SECONDS,
            "the clients' results",
        )
    stop_all([c for c in clients if not c.conn.closed])
