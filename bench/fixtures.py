"""The world the benchmark runs in: its own database, seeded data, and a real server process."""

import contextlib
import os
import re
import resource
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench.children import stop_process
from bench.console import say

# Benchmarks create and drop only databases named metricstream_bench_<benchmark>: each
# its own, so two benchmarks on one PostgreSQL never drop each other's.
BENCH_DATABASE = "metricstream_bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/metricstream"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT_SECONDS = 30.0
SERVER_STOP_TIMEOUT_SECONDS = 15.0
MIGRATE_TIMEOUT_SECONDS = 300.0
HTTP_TIMEOUT_SECONDS = 10.0
SERVE_COMMAND = ("metricstream.cli", "serve")


def database_name(benchmark: str) -> str:
    return f"{BENCH_DATABASE}_{benchmark.replace('-', '_')}"


def bench_database_url(base_url: str, benchmark: str) -> str:
    """The same server and credentials as `base_url`, with the benchmark's own database."""
    parts = urlsplit(base_url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise SystemExit(f"bench: DATABASE_URL must point at PostgreSQL, not {parts.scheme!r}")
    path = "/" + database_name(benchmark)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def recreate_database(bench_url: str) -> None:
    """DROP and CREATE the bench database, connecting to the server's `postgres` database."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(bench_url)
    name = parts.path.lstrip("/")
    assert name.startswith(BENCH_DATABASE + "_")  # never anything but a bench database
    maintenance = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    with psycopg.connect(maintenance, autocommit=True, connect_timeout=10) as conn:
        identifier = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(identifier))


@contextlib.contextmanager
def environment(benchmark: str, redis_url: str | None = None) -> Iterator[dict[str, str]]:
    """Point this process (and so every child spawned meanwhile) at the bench database.

    `redis_url` replaces REDIS_URL (a benchmark's own redis-server). The previous
    environment comes back afterwards, so benchmarks run one after another each
    start from the caller's settings.
    """
    saved = dict(os.environ)
    try:
        base_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        os.environ["DATABASE_URL"] = bench_database_url(base_url, benchmark)
        os.environ["REDIS_URL"] = redis_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        os.environ["SECRET_KEY"] = os.environ.get("SECRET_KEY") or "metricstream-bench-secret-key"
        os.environ["METRICSTREAM_QUEUE"] = "bench"
        os.environ["DJANGO_SETTINGS_MODULE"] = "metricstream.settings"
        yield dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def prepare_database(tenants: int, env: dict[str, str]) -> "Seeded":
    """Recreate and migrate the bench database, then seed it (sets Django up in this process)."""
    from django.apps import apps

    name = urlsplit(env["DATABASE_URL"]).path.lstrip("/")
    if apps.ready:  # an earlier benchmark in this process, maybe on another database
        forget_connections(name)
    say(f"database: recreating {name} and migrating")
    recreate_database(env["DATABASE_URL"])
    metricstream("migrate", env=env)
    import django

    django.setup()
    say(f"database: seeding {tenants} tenants, their viewers and a staff operator")
    return seed(tenants)


def forget_connections(database: str) -> None:
    """Close this process's connections and their pool, and point Django at `database`.

    Django reads its settings once per process; each benchmark has a database of
    its own, and recreating it kills every connection still open to it.
    """
    from django.db import connections

    for conn in connections.all():
        conn.close()
        if hasattr(conn, "close_pool"):  # the PostgreSQL backend (Django >= 5.1)
            conn.close_pool()
    connections["default"].settings_dict["NAME"] = database


def last_seqs(tenant_ids: list[str]) -> dict[int, int]:
    """Each tenant's latest committed sequence number, by tenant index (needs Django set up)."""
    from django.db import close_old_connections

    from metricstream.tenants.models import Tenant

    close_old_connections()
    index = {tenant: i for i, tenant in enumerate(tenant_ids)}
    rows = Tenant.objects.filter(pk__in=tenant_ids).values_list("pk", "last_seq")
    return {index[str(pk)]: seq for pk, seq in rows}


def metricstream(*args: str, env: dict[str, str]) -> None:
    """Run the real console script to completion (e.g. `migrate`)."""
    result = subprocess.run(
        [sys.executable, "-m", "metricstream.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench: `metricstream {' '.join(args)}` failed:\n{result.stderr}")


@dataclass(frozen=True)
class Seeded:
    tenant_ids: list[str]
    viewer_sessions: list[str]  # one operator per tenant, member of it; its sessionid
    staff_email: str
    staff_password: str


def seed(tenants: int) -> Seeded:
    """Tenants, one viewer operator per tenant (logged in), and one staff operator.

    Needs django.setup() done with DATABASE_URL pointing at the bench database.
    Viewers get an unusable password (no slow password hashing for 100 users);
    their sessions are created directly with the test client's force_login.
    """
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client

    from metricstream.tenants.services import create_operator, create_tenant, grant

    user_model = get_user_model()
    tenant_ids: list[str] = []
    sessions: list[str] = []
    for i in range(tenants):
        tenant, _issued = create_tenant(f"bench-{i:04d}")
        email = f"viewer-{i:04d}@bench.invalid"
        viewer = user_model.objects.create_user(username=email, email=email, password=None)
        grant(viewer, tenant.pk)
        client = Client()
        client.force_login(viewer)
        tenant_ids.append(str(tenant.pk))
        sessions.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    password = secrets.token_urlsafe(16)
    create_operator("staff@bench.invalid", password, staff=True)
    connections.close_all()
    return Seeded(tenant_ids, sessions, "staff@bench.invalid", password)


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit, for this process and the children it starts.

    Thousands of streams need thousands of sockets on each side; the soft limit
    (often 1,024) is a default, the hard one is the machine's real bound.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`python -m metricstream.cli serve` as a subprocess, its output in a log file."""

    def __init__(
        self, env: dict[str, str], log: Path, module: tuple[str, ...] = SERVE_COMMAND
    ) -> None:
        """`module` runs as `python -m <module...> --port N`: the product, or a baseline."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_handle = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", *module, "--port", str(self.port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise SystemExit(f"bench: the server exited:\n{self.tail()}")
            try:
                httpx.get(self.base + "/login/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit(f"bench: the server did not start within {timeout:.0f}s:\n{self.tail()}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        code = stop_process(self.popen, SERVER_STOP_TIMEOUT_SECONDS)
        self._log_handle.close()
        return code

    def tail(self, lines: int = 30) -> str:
        self._log_handle.flush()
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def log_times(log: Path, needle: str) -> list[float]:
    """When lines containing `needle` were logged (Metricstream's `asctime` format, local time)."""
    from datetime import datetime

    found = []
    for line in log.read_text(errors="replace").splitlines():
        if needle in line:
            with contextlib.suppress(ValueError):
                found.append(datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return found


def form_login(base: str, email: str, password: str) -> str:
    """Log in through the real login form, as a browser would; returns the sessionid."""
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as client:
        page = client.get(base + "/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if not token:
            raise SystemExit("bench: no CSRF token on the login page")
        response = client.post(
            base + "/login/",
            data={"csrfmiddlewaretoken": token.group(1), "username": email, "password": password},
            headers={"Referer": base + "/login/"},
        )
        session = client.cookies.get("sessionid")
        if response.status_code != 302 or not session:
            raise SystemExit(f"bench: staff login failed: HTTP {response.status_code}")
        return session


def stream_status(base: str, session: str, timeout: float = HTTP_TIMEOUT_SECONDS) -> dict:
    response = httpx.get(
        base + "/api/v1/stream/status",
        cookies={"sessionid": session},
        timeout=timeout,
    )
    response.raise_for_status()
    return response.json()


def patient_status(base: str, session: str, within: float) -> dict | None:
    """The status, asking again until `within` seconds have passed; None if it never answered.

    For a saturated server, whose status requests queue behind its catch-up reads.
    """
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        try:
            return stream_status(base, session, timeout=max(1.0, left))
        except httpx.HTTPError as exc:
            say(f"  status: no answer yet ({type(exc).__name__}); asking again")
    return None


def wait_for_streams(base: str, session: str, want: int, timeout: float) -> tuple[bool, dict]:
    """Poll the server's status until it reports `want` open streams; (reached, last status)."""
    deadline = time.monotonic() + timeout
    status = stream_status(base, session)
    while status["streams"] != want and time.monotonic() < deadline:
        time.sleep(0.2)
        status = stream_status(base, session)
    return status["streams"] == want, status


def commit_directly(tenant_id: str, batches: int, metrics_per_batch: int) -> None:
    """Store batches 1..`batches` of a fresh tenant in three statements (needs Django set up).

    Not the ingest path (other benchmarks measure that): this makes what a
    benchmark then publishes itself real, so a stream that falls behind catches
    up from rows that exist. Call it after the streams opened: a stream starts
    at the tenant's latest batch, and would take these for old ones.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ingest_batch (id, tenant_id, seq, size, received_at, committed_at) "
            "SELECT gen_random_uuid(), %s, s, %s, now(), now() FROM generate_series(1, %s) s",
            [tenant_id, metrics_per_batch, batches],
        )
        cursor.execute(
            "INSERT INTO ingest_metric (tenant_id, seq, name, value, timestamp, labels, "
            "received_at) SELECT %s, s, 'bench.m' || m, s * 0.5, now(), "
            '\'{"host": "bench-1"}\'::jsonb, now() '
            "FROM generate_series(1, %s) s, generate_series(1, %s) m",
            [tenant_id, batches, metrics_per_batch],
        )
        cursor.execute(
            "UPDATE tenants_tenant SET last_seq = %s WHERE id = %s", [batches, tenant_id]
        )
