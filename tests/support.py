"""Real processes for tests: a uvicorn server, a Celery worker, an SSE reader, a form login."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import httpx

# How long a test waits for a process to start serving before it fails.
STARTUP_TIMEOUT_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metricstream(
    *args: str, env: dict[str, str], cwd: Path | None = None, stdin: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real console script."""
    result = subprocess.run(
        [sys.executable, "-m", "metricstream.cli", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"metricstream {' '.join(args)} failed:\n{result.stderr}")
    return result


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def kill(self) -> None:
        """SIGKILL the process and its children: a crash, not a shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Process:
    handle = log.open("ab")
    popen = subprocess.Popen(
        [sys.executable, "-m", "metricstream.cli", *args],
        env=env,
        cwd=cwd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so a test can kill the process and its children at once
    )
    return Process(popen, log)


@dataclass
class Server(Process):
    base: str = ""


def start_server(
    env: dict[str, str], log: Path, cwd: Path | None = None, port: int | None = None
) -> Server:
    port = port or free_port()
    proc = start(["serve", "--port", str(port)], env, log, cwd)
    server = Server(proc.popen, proc.log, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise AssertionError(f"server exited:\n{server.output()}")
        try:
            httpx.get(server.base + "/login/", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise AssertionError(f"server did not start:\n{server.output()}")


def start_worker(env: dict[str, str], log: Path) -> Process:
    worker = start(["worker", "--concurrency", "1"], env, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while "ready." not in worker.output():
        if worker.popen.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise AssertionError(f"worker did not start:\n{worker.output()}")
        time.sleep(0.1)
    return worker


def form_login(client: httpx.Client, base: str, email: str, password: str) -> None:
    """Log in through the real login form, as a browser would."""
    page = client.get(base + "/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    response = client.post(
        base + "/login/",
        data={"csrfmiddlewaretoken": token.group(1), "username": email, "password": password},
        headers={"Referer": base + "/login/"},
    )
    assert response.status_code == 302, response.text
    assert "sessionid" in client.cookies


@dataclass
class Event:
    id: str | None = None
    event: str = "message"
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)


def events(response: httpx.Response) -> Iterator[Event]:
    """Parse an SSE response into events; `retry:`-only and comment blocks are yielded too."""
    current = Event()
    for line in response.iter_lines():
        if line == "":
            yield current
            current = Event()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            current.comments.append(value)
        elif name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        elif name == "data":
            current.data = value if not current.data else current.data + "\n" + value
        elif name == "retry":
            current.retry = int(value)


def next_metrics(stream: Iterator[Event]) -> Event:
    for event in stream:
        if event.event == "metrics":
            return event
    raise AssertionError("the stream ended before a metrics event")


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(overrides)
    return env


def store(tenant_id: object, metrics: list[dict], *, now: float | None = None) -> None:
    """Commit one batch as ProcessMetricSubmission does (timestamps in unix seconds)."""
    from metricstream.ingest.services import Submission, store_submission

    received = time.time() if now is None else now
    store_submission(Submission(uuid.uuid4(), tenant_id, received, metrics))  # type: ignore[arg-type]


def commit_batches(
    tenant_id: object,
    count: int,
    *,
    interval: float = 0.0,
    size: int = 1,
    wide: bool = False,
    publisher: object | None = None,
) -> None:
    """Commit batches as ProcessMetricSubmission does, from this process (in a thread).

    `publisher` replaces the configured one, to publish to another real Redis;
    `wide` gives every metric the most labels allowed, each as long as allowed (~4 KB).
    """
    from django.db import connection

    patch = (
        mock.patch("metricstream.ingest.services.get_publisher", return_value=publisher)
        if publisher is not None
        else contextlib.nullcontext()
    )
    try:
        with patch:
            padding = {f"k{k}": "x" * 256 for k in range(15)} if wide else {}
            for index in range(count):
                now = time.time()
                metrics = [
                    {
                        "name": "n",
                        "value": float(index),
                        "timestamp": now,
                        "labels": {"i": str(i), **padding},
                    }
                    for i in range(size)
                ]
                store(tenant_id, metrics, now=now)
                if interval:
                    time.sleep(interval)
    finally:
        connection.close()


def committing(tenant_id: object, count: int, **options: object) -> threading.Thread:
    thread = threading.Thread(target=commit_batches, args=(tenant_id, count), kwargs=options)
    thread.start()
    return thread
