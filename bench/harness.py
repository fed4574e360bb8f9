"""What the benchmarks with a redis-server of their own share: the world they start, the
run's processes and observations, the status calls, and the run itself from start to report."""

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench import fixtures, ownredis, report, streams
from bench.children import Child, stop_all
from bench.console import Warnings, say
from bench.sseclient import ClientResult

R = TypeVar("R", bound="OwnRedisRun")

# How long a status request may wait during a catch-up storm before the run gives up.
STATUS_PATIENCE_SECONDS = 60.0


def add_world_arguments(parser: argparse.ArgumentParser, *, tenants: int) -> None:
    """The streams, tenants, client processes and batch size every such benchmark takes."""
    add = parser.add_argument
    add("--streams", type=int, default=1000, help="concurrent SSE streams (default: %(default)s)")
    add("--tenants", type=int, default=tenants, help="tenants (default: %(default)s)")
    add("--clients", type=int, default=1, help="SSE client processes (default: %(default)s)")
    add("--metrics-per-batch", type=int, default=5, help="(default: %(default)s)")


def world_checks(args: argparse.Namespace) -> list[tuple[bool, str]]:
    return [
        (args.tenants >= 1, "--tenants must be at least 1"),
        (args.streams >= args.tenants, "--streams must be at least --tenants"),
        (1 <= args.clients <= args.streams, "--clients must be 1..--streams"),
        (args.metrics_per_batch >= 1, "--metrics-per-batch must be at least 1"),
    ]


class OwnRedisRun:
    """The processes of one run and what was observed; subclasses add their own."""

    def __init__(self, workdir: Path, own: ownredis.OwnRedis) -> None:
        self.workdir = workdir
        self.own = own
        self.warnings = Warnings()
        self.server: fixtures.Server | None = None
        self.clients: list[Child] = []
        self.seeded: fixtures.Seeded | None = None
        self.staff = ""
        self.opened: streams.Opened | None = None
        self.results: list[ClientResult] = []
        self.found: dict[str, Any] = {}

    def feeders(self) -> list[Child]:
        """The run's load-generating children besides the SSE clients."""
        return []

    def poll_status(self) -> dict:
        """One status request with the ordinary timeout."""
        assert self.server is not None
        return fixtures.stream_status(self.server.base, self.staff)

    def status_or_none(self, patience: float = STATUS_PATIENCE_SECONDS) -> dict | None:
        assert self.server is not None
        return fixtures.patient_status(self.server.base, self.staff, patience)

    def patient_status(self, patience: float = STATUS_PATIENCE_SECONDS) -> dict:
        """The status once a catch-up storm lets it through."""
        found = self.status_or_none(patience)
        if found is None:
            raise SystemExit(f"bench: no status from the server within {patience:g}s")
        return found

    def start_server(self, env: dict[str, str], tenants: int) -> fixtures.Seeded:
        """Own Redis, a fresh seeded database, and the server starting (not yet ready)."""
        self.own.start()
        self.own.wait_ready()
        say(f"redis: own redis-server on port {self.own.port} (log: {self.own.log})")
        self.seeded = fixtures.prepare_database(tenants, env)
        self.server = fixtures.Server(env, self.workdir / "server.log")
        say(f"server: starting on {self.server.base} (log: {self.server.log})")
        return self.seeded

    def open_streams(self, count: int, clients: int, max_seconds: float) -> None:
        """Wait for the server, log in as staff, and open `count` streams."""
        assert self.server is not None and self.seeded is not None
        self.server.wait_ready()
        self.staff = fixtures.form_login(
            self.server.base, self.seeded.staff_email, self.seeded.staff_password
        )
        configs = streams.client_configs(
            self.seeded,
            streams=count,
            clients=clients,
            port=self.server.port,
            max_seconds=max_seconds,
            progress_seconds=0.1,
        )
        self.clients = streams.start_clients(configs)
        self.opened = streams.open_streams(self.clients, self.server, self.staff, count)
        for warning in self.opened.warnings:
            self.warnings.warn(warning)

    def stop(self) -> None:
        stop_all([*self.feeders(), *self.clients])
        if self.server is not None:
            self.found["server_exit_code"] = self.server.stop()
            say(f"server: stopped (exit code {self.found['server_exit_code']})")
        self.own.stop()


def execute(
    name: str,
    make: Callable[[Path, ownredis.OwnRedis], R],
    phases: Callable[[R, dict[str, str]], None],
    summarise: Callable[[R], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
) -> int:
    """Run the phases against an own Redis, close the streams, and write and print the report."""
    workdir = Path(tempfile.mkdtemp(prefix=f"metricstream-bench-{name}-"))
    own = ownredis.OwnRedis(workdir)
    with fixtures.environment(name, own.url) as env:
        run = make(workdir, own)
        try:
            phases(run, env)
            run.results, status, closed = streams.close_streams(run.clients, run.server, run.staff)
            run.found["streams_after_clients_closed"] = status["streams"]
            if not closed:
                run.warnings.warn(
                    f"{status['streams']} streams still open after the clients closed"
                )
        finally:
            run.stop()
    say("checking every stream's receipts")
    document = summarise(run)
    path = report.write(document, name)
    print(table(document))
    say(f"results written to {path}")
    return 0
