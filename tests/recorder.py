"""A client that behaves like a browser's EventSource and records every batch it receives.

It reconnects whenever its stream ends or breaks, sending Last-Event-ID, and
keeps a log of (sequence number, event) so a test can assert that every
committed batch arrived exactly once, in order.
"""

import json
import threading
import time
from dataclasses import dataclass, field

import httpx

from tests.support import events

# A browser waits the server's `retry:`; tests reconnect sooner.
RECONNECT_DELAY_SECONDS = 0.05


@dataclass
class Recorder:
    base: str
    tenant_id: str
    cookies: dict[str, str]
    # Sleep this long after each event: a deliberately slow reader.
    delay_per_event: float = 0.0
    # Read nothing for this long after the first event: a stalled reader.
    stall_seconds: float = 0.0
    # Drop the connection after this many metrics events (0: never).
    reconnect_every: int = 0
    transport: httpx.HTTPTransport | None = None
    seqs: list[int] = field(default_factory=list)
    resets: list[dict] = field(default_factory=list)
    connections: int = 0
    errors: list[str] = field(default_factory=list)
    last_id: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "Recorder":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wait_for(self, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seqs and self.seqs[-1] >= seq:
                return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        url = f"{self.base}/api/v1/stream/{self.tenant_id}"
        timeout = httpx.Timeout(5, read=30)
        with httpx.Client(
            cookies=self.cookies, timeout=timeout, transport=self.transport
        ) as client:
            while not self._stop.is_set():
                headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
                try:
                    with client.stream("GET", url, headers=headers) as response:
                        if response.status_code == 200:
                            self.connections += 1
                            self._read(response)
                except httpx.HTTPError:
                    pass
                except AssertionError as exc:  # reported by the test, not lost in this thread
                    self.errors.append(str(exc))
                    return
                time.sleep(RECONNECT_DELAY_SECONDS)

    def _read(self, response: httpx.Response) -> None:
        received = 0
        for event in events(response):
            if self._stop.is_set():
                return
            if event.id is not None:
                self.last_id = event.id
            if event.event == "metrics":
                batch = json.loads(event.data)
                assert {m["seq"] for m in batch} == {int(event.id)}, event
                assert {m["tenant_id"] for m in batch} == {self.tenant_id}, event
                self.seqs.append(int(event.id))
                received += 1
            elif event.event == "reset":
                self.resets.append(json.loads(event.data))
            if self.stall_seconds and self.connections == 1 and received == 0:
                time.sleep(self.stall_seconds)
            if self.delay_per_event:
                time.sleep(self.delay_per_event)
            if self.reconnect_every and received >= self.reconnect_every:
                return


def assert_exactly_once_in_order(seqs: list[int], last: int) -> None:
    """Every batch 1..last received once, in order: nothing lost, nothing twice."""
    duplicates = len(seqs) - len(set(seqs))
    missing = sorted(set(range(1, last + 1)) - set(seqs))
    assert (duplicates, missing) == (0, []), f"{duplicates} duplicated, missing {missing}"
    assert seqs == sorted(seqs), "out of order"
