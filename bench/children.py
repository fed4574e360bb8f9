"""Child processes of the benchmarks (committers, SSE clients, publishers) and their control pipes.

A child is a spawned process whose entry point takes (config, connection). It
sends ("ready", ...) once set up, ("progress", ...) while it works, ("result", x)
when a piece of work is done and ("error", traceback) if it fails.
"""

import contextlib
import multiprocessing
import multiprocessing.connection
import subprocess
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class Child:
    """A spawned worker process and the parent's end of its control pipe."""

    def __init__(self, name: str, target: Callable[[Any, Connection], None], config: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child_end = context.Pipe()
        self.process = context.Process(
            target=target, args=(config, child_end), name=name, daemon=True
        )
        self.process.start()
        child_end.close()
        self.ready: tuple[Any, ...] | None = None
        self.progress: tuple[Any, ...] = ()
        self.result: Any = None

    def pump(self) -> None:
        """Read every message waiting; a child's traceback stops the benchmark."""
        try:
            while self.conn.poll(0):
                kind, *rest = self.conn.recv()
                if kind == "ready":
                    self.ready = tuple(rest)
                elif kind == "progress":
                    self.progress = tuple(rest)
                elif kind == "result":
                    self.result = rest[0]
                elif kind == "error":
                    raise SystemExit(f"bench: {self.name} failed:\n{rest[0]}")
        except (EOFError, OSError):
            if self.result is None:
                raise SystemExit(f"bench: {self.name} exited without a result") from None

    def send(self, message: Any) -> None:
        self.conn.send(message)

    def request(self, message: Any) -> None:
        """Send a command to a child that answers each one with a "result"."""
        self.result = None
        self.conn.send(message)

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("exit",))  # a committer waits for this before it exits
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


def answer(body: Callable[[], Any], conn: Connection, hold: float) -> None:
    """A child's entry point around `body`: its result, or its traceback, sent to the parent.

    After the result the child waits up to `hold` seconds for "exit", so what it
    holds open (a database backend, its CPU counters) stays for the parent to read.
    """
    try:
        conn.send(("result", body()))
        conn.poll(hold)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def pump_until(children: list[Child], done: Callable[[], bool], timeout: float, what: str) -> None:
    """Read messages until done() is true; SystemExit after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for child in children:
            child.pump()
        if done():
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"bench: timed out after {timeout:.0f}s waiting for {what}")
        waiting = [c.conn for c in children if c.result is None]
        if waiting:
            multiprocessing.connection.wait(waiting, min(left, 0.5))
        else:
            time.sleep(min(left, 0.1))


def results_of(children: list[Child], timeout: float, what: str) -> list[Any]:
    """Wait for every child's result and return them in order."""
    pump_until(children, lambda: all(c.result is not None for c in children), timeout, what)
    return [c.result for c in children]


def stop_all(children: list[Child]) -> None:
    """Stop every child, even if stopping one of them fails."""
    for child in children:
        with contextlib.suppress(Exception):
            child.stop()


def stop_process(popen: subprocess.Popen[bytes], timeout: float) -> int | None:
    """SIGTERM, then SIGKILL if it does not exit within `timeout`; its exit code."""
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=timeout)
    return popen.returncode
