"""Progress lines, so a person watching knows which phase the benchmark is in."""

import sys
import time

_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


class Warnings(list[str]):
    """Warnings for the results file, each also printed as it happens."""

    def warn(self, message: str) -> None:
        self.append(message)
        say(f"WARNING: {message}")
