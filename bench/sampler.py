"""Polling something (the server's status, Redis's CLIENT LIST) on a thread, with timestamps.

Used while the main thread is busy driving children, so a slow answer (the
status endpoint of a saturated server) never holds up the benchmark's own loop.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
JOIN_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Sample(Generic[T]):
    asked: float  # time.time() when the request went out
    answered: float  # ... and when its answer came back
    value: T


class Sampler(Generic[T]):
    """Calls `probe` every `interval` seconds until stopped; failures are counted, not raised."""

    def __init__(self, name: str, probe: Callable[[], T], interval: float) -> None:
        self.name = name
        self.probe = probe
        self.interval = interval
        self.samples: list[Sample[T]] = []
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{name}", daemon=True)

    def __enter__(self) -> "Sampler[T]":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT_SECONDS)

    def _run(self) -> None:
        while not self._stop.is_set():
            asked = time.time()
            try:
                value = self.probe()
            except Exception as exc:  # a down Redis or a timed-out status request
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            else:
                self.samples.append(Sample(asked, time.time(), value))
            self._stop.wait(max(0.0, self.interval - (time.time() - asked)))

    def first(self, predicate: Callable[[T], bool], after: float = 0.0) -> Sample[T] | None:
        """The first sample asked at or after `after` whose value satisfies `predicate`."""
        for sample in list(self.samples):
            if sample.asked >= after and predicate(sample.value):
                return sample
        return None

    def last_before(
        self, moment: float, predicate: Callable[[T], bool] = lambda _: True
    ) -> Sample[T] | None:
        """The last sample answered before `moment` whose value satisfies `predicate`."""
        found = None
        for sample in list(self.samples):
            if sample.answered < moment and predicate(sample.value):
                found = sample
        return found
