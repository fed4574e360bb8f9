"""The counting SSE client (bench/fanout_client.c): build it, run it, follow its counts.

It holds thousands of streams in one small C process and only counts frames,
so the server, not the load generator, is what a benchmark measures.
"""

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.console import say

SOURCE = Path(__file__).resolve().parent / "fanout_client.c"
COMPILE_TIMEOUT_SECONDS = 60.0
OPEN_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0


def build(workdir: Path) -> Path:
    """Compile the client into `workdir` with the machine's C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("bench: no C compiler (cc or gcc) to build the counting client")
    binary = workdir / "fanout_client"
    subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(binary), str(SOURCE)],
        check=True,
        timeout=COMPILE_TIMEOUT_SECONDS,
    )
    return binary


@dataclass(frozen=True)
class StreamCount:
    opening_id: int  # -1: the opening frame never arrived
    last_id: int
    frames: int

    @property
    def exact(self) -> bool:
        """Every batch after the opening id exactly once (the server's ids strictly rise)."""
        return self.opening_id >= 0 and self.frames == self.last_id - self.opening_id


@dataclass
class Progress:
    seconds: float = 0.0
    frames: int = 0
    open: int = 0
    at: float = field(default_factory=time.time)


class CountingClient:
    """One client process with `count` streams of `path`, all with the same session."""

    def __init__(
        self, binary: Path, port: int, path: str, cookie: str, count: int, log: Path
    ) -> None:
        self.count = count
        self.opened: tuple[int, int] | None = None
        self.progress = Progress()
        self.streams: list[StreamCount] = []
        self._done = threading.Event()
        self._stderr = log.open("wb")
        self.popen = subprocess.Popen(
            [str(binary), "127.0.0.1", str(port), path, cookie, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="counting-client", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            kind, *fields = line.split()
            if kind == "progress":
                self.progress = Progress(float(fields[0]), int(fields[1]), int(fields[2]))
            elif kind == "opened":
                self.opened = (int(fields[0]), int(fields[1]))
            elif kind == "stream":
                self.streams.append(StreamCount(*(int(f) for f in fields)))
            elif kind == "done":
                self._done.set()

    def wait_opened(self) -> int:
        """How many streams connected (the server may still be answering them)."""
        deadline = time.monotonic() + OPEN_TIMEOUT_SECONDS
        while self.opened is None:
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench: the counting client did not open its streams")
            time.sleep(0.05)
        opened, failed = self.opened
        if failed:
            say(f"WARNING: {failed} of {self.count} connections failed")
        return opened

    def wait_frames(self, at_least: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.progress.frames < at_least:
            if time.monotonic() > deadline or self.popen.poll() is not None:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> list[StreamCount]:
        """Close stdin (the client's signal to report and exit); every stream's counts."""
        if self.popen.poll() is None and self.popen.stdin is not None:
            self.popen.stdin.close()
        self._done.wait(STOP_TIMEOUT_SECONDS)
        try:
            self.popen.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._stderr.close()
        return self.streams

    def kill(self) -> None:
        """Vanish at once: the kernel closes every socket."""
        self.popen.kill()
        self.popen.wait()
        self._stderr.close()


class ClientGroup:
    """Counting clients read as one: one client per tenant, since each holds one session."""

    def __init__(self, clients: list[CountingClient]) -> None:
        self.clients = clients

    @property
    def frames(self) -> int:
        return sum(c.progress.frames for c in self.clients)

    @property
    def pids(self) -> list[int]:
        return [c.popen.pid for c in self.clients]

    def wait_opened(self) -> int:
        return sum(c.wait_opened() for c in self.clients)

    def wait_frames(self, at_least: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.frames < at_least:
            if time.monotonic() > deadline or any(c.popen.poll() is not None for c in self.clients):
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> list[StreamCount]:
        return [count for c in self.clients for count in c.stop()]

    def kill(self) -> None:
        for c in self.clients:
            if c.popen.poll() is None:
                c.kill()
