"""The ingest benchmark's Celery workers (the product's or a baseline), tokens, CPU seconds."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import procstat
from bench.children import stop_process
from bench.fixtures import REPO_ROOT

COPY = "copy"  # the product: `metricstream worker`, rows stored by COPY
WORKER_START_TIMEOUT_SECONDS = 60.0
# Celery's warm shutdown finishes the tasks in hand first; this bounds it.
WORKER_STOP_TIMEOUT_SECONDS = 30.0
WORKER_READY_MARK = "ready."
JOB_FAILED_MARK = "raised unexpected"


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (Celery's pool children), read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


class Worker:
    """`python -m metricstream.cli worker`, or the baseline worker storing rows another way."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int, rows: str) -> None:
        if rows == COPY:
            module = ["metricstream.cli", "worker"]
        else:
            module = ["bench.ingest_baseline_worker", "--rows", rows]
        self.rows = rows
        self.log = log
        self._log_handle = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", *module, "--concurrency", str(concurrency)],
            env=env,
            cwd=REPO_ROOT,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = WORKER_START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while WORKER_READY_MARK not in self.log.read_text(errors="replace"):
            if self.popen.poll() is not None:
                raise SystemExit(f"bench: the {self.rows} worker exited:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the {self.rows} worker did not start:\n{self.tail()}")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        return [self.popen.pid, *descendants(self.popen.pid)]

    def stop(self) -> int | None:
        """SIGTERM (warm shutdown), then SIGKILL to it and its pool if it does not exit in time."""
        pool = descendants(self.popen.pid)
        stop_process(self.popen, WORKER_STOP_TIMEOUT_SECONDS)
        for pid in pool:  # our own children's children, by pid: a killed parent can orphan them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log_handle.close()
        return self.popen.returncode

    def failures(self) -> list[str]:
        """The log lines of jobs that raised so far: each one's batch is lost."""
        self._log_handle.flush()
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if JOB_FAILED_MARK in line]

    def tail(self, lines: int = 30) -> str:
        self._log_handle.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def issue_tokens(tenant_ids: list[str]) -> list[str]:
    """A fresh ingest token for each tenant, in order (needs Django set up)."""
    from django.db import connections

    from metricstream.tenants.models import Tenant
    from metricstream.tenants.services import issue_token

    tokens = [issue_token(Tenant.objects.get(pk=t)).token for t in tenant_ids]
    connections.close_all()
    return tokens


def cpu_seconds(before: procstat.CpuSnapshot, after: procstat.CpuSnapshot) -> dict[str, float]:
    """CPU seconds of each group of our processes, of PostgreSQL, and of the whole machine."""
    spent = {
        name: round(after.processes[name] - before.processes.get(name, 0.0), 3)
        for name in after.processes
    }
    earlier = before.services.get("postgres", {})
    postgres = after.services.get("postgres", {})
    # Backends that ended in between are not counted: a lower bound (see procstat.usage).
    spent["postgres"] = round(sum(s - earlier.get(pid, 0.0) for pid, s in postgres.items()), 3)
    total = after.machine_total - before.machine_total
    if total > 0:
        busy = (after.machine_busy - before.machine_busy) / total
        spent["machine_busy"] = round(busy * after.cores * (after.wall - before.wall), 3)
        spent["everything_else"] = round(
            max(
                0.0, spent["machine_busy"] - sum(v for k, v in spent.items() if k != "machine_busy")
            ),
            3,
        )
    spent["wall"] = round(after.wall - before.wall, 3)
    return spent
