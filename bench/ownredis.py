"""A redis-server of the benchmark's own, on a spare port, so the machine's Redis is never touched.

It can be stopped and started again on the same port (the recovery benchmark),
and inspected (`CLIENT LIST`, `INFO`, its log) while the server under test uses it.
"""

import contextlib
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from bench.children import stop_process
from bench.fixtures import free_port

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
# The name the hub's connection gives itself (metricstream/stream/redis_source.py).
HUB_CLIENT_NAME = "metricstream-hub"
# "25359:M 04 Dec 2026 16:44:50.532 # ...": the time of a redis-server log line (local time).
_LOG_TIME = re.compile(r"^\d+:\w (\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}) ")


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.log = directory / "redis.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self._client: redis.Redis | None = None

    @property
    def command(self) -> list[str]:
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]

    def start(self) -> float:
        """Spawn redis-server (its log appended to redis.log); returns the spawn time."""
        if self.popen is not None and self.popen.poll() is None:
            raise RuntimeError("redis-server is already running")
        with self.log.open("ab") as log:
            spawned = time.time()
            self.popen = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        return spawned

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> float:
        """Wait for an answer to PING; returns the time of the first one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise SystemExit(f"bench: redis-server exited:\n{self.tail()}")
            if self.answers():
                return time.time()
            time.sleep(0.005)
        raise SystemExit(f"bench: redis-server did not answer within {timeout:g}s")

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except (redis.RedisError, OSError):
            return False

    def stop(self) -> float | None:
        """SIGTERM (SIGKILL if it lingers); when it exited, or None if it was not running."""
        if self.popen is None or self.popen.poll() is not None:
            return None
        stop_process(self.popen, STOP_TIMEOUT_SECONDS)
        with contextlib.suppress(Exception):
            self.client().connection_pool.disconnect()
        return time.time()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def client(self) -> redis.Redis:
        """A short-timeout client for inspection (one connection, reused)."""
        if self._client is None:
            self._client = redis.Redis(
                host="127.0.0.1",
                port=self.port,
                socket_timeout=2.0,
                socket_connect_timeout=1.0,
                client_name="metricstream-bench-inspector",
            )
        return self._client

    def hub_clients(self) -> list[dict[str, Any]]:
        """`CLIENT LIST` entries of the hubs' Pub/Sub connections."""
        return [c for c in self.client().client_list() if c.get("name") == HUB_CLIENT_NAME]

    def channels(self, pattern: str = "tenant.*") -> int:
        """How many channels matching `pattern` have a subscriber."""
        return len(self.client().pubsub_channels(pattern))

    def info(self, section: str) -> dict[str, Any]:
        return dict(self.client().info(section))

    def config(self, name: str) -> str:
        return str(self.client().config_get(name).get(name, ""))

    def log_lines(self, *needles: str) -> list[str]:
        """Lines of redis.log containing any of `needles`."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if any(n in line for n in needles)]

    def log_times(self, *needles: str) -> list[float]:
        """When the lines containing any of `needles` were logged."""
        found = []
        for line in self.log_lines(*needles):
            match = _LOG_TIME.match(line)
            if match:
                moment = datetime.strptime(match.group(1), "%d %b %Y %H:%M:%S.%f")
                found.append(moment.timestamp())
        return found

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
