"""Nothing lost, nothing twice: every fault scenario, with real Redis, PostgreSQL and processes.

Each test records every (tenant, seq) a reconnecting client receives and
asserts that each committed batch arrived exactly once, in order.
"""

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from metricstream.ingest.models import Batch
from metricstream.stream.broker import RedisPublisher
from tests.conftest import Operator, stream_status
from tests.recorder import Recorder, assert_exactly_once_in_order
from tests.support import (
    Server,
    commit_batches,
    committing,
    free_port,
    start_server,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


def record(server: Server, operator: Operator, **options: object) -> Recorder:
    recorder = Recorder(server.base, str(operator.tenant.pk), operator.session_cookie(), **options)
    recorder.start()
    # Started once the opening frame fixed the stream's starting point.
    assert wait_until(lambda: recorder.last_id is not None, timeout=10)
    return recorder


def finish(recorder: Recorder, last: int, timeout: float = 30) -> None:
    try:
        assert recorder.wait_for(last, timeout=timeout), (
            f"received {len(recorder.seqs)} batches, up to {recorder.seqs[-1:]}, over "
            f"{recorder.connections} connections; errors: {recorder.errors}"
        )
        time.sleep(0.2)  # anything extra (a duplicate) would arrive now
    finally:
        recorder.stop()
    assert recorder.errors == []
    assert_exactly_once_in_order(recorder.seqs, last=last)


def test_it_heals_a_killed_pubsub_connection(
    services_env: dict[str, str],
    tmp_path: Path,
    own_redis,
    alice: Operator,
    bob: Operator,
    staff_cookie: dict[str, str],
) -> None:
    port, _ = own_redis
    url = f"redis://127.0.0.1:{port}/0"
    server = start_server({**services_env, "REDIS_URL": url}, tmp_path / "server.log")
    publisher = RedisPublisher(url, timeout=1.0)
    recorder = record(server, alice)
    try:
        committer = committing(alice.tenant.pk, 60, interval=0.01, publisher=publisher)
        time.sleep(0.2)
        redis.Redis(port=port).execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        committer.join()
        finish(recorder, last=60)
        stats = stream_status(server, staff_cookie)
    finally:
        server.stop()
    assert stats["reconnects"] >= 1, stats


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """A redis-server of the test's own, so restarting it leaves the machine's alone."""
    port = free_port()
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL)]
    assert wait_until(lambda: _answers(port), timeout=10)
    yield port, procs
    for proc in procs:
        proc.terminate()
        proc.wait()


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=0.5).ping()
    except redis.RedisError:
        return False


def test_it_heals_a_full_redis_restart(
    services_env: dict[str, str], tmp_path: Path, own_redis, alice: Operator, bob: Operator
) -> None:
    port, procs = own_redis
    url = f"redis://127.0.0.1:{port}/0"
    server = start_server({**services_env, "REDIS_URL": url}, tmp_path / "server.log")
    publisher = RedisPublisher(url, timeout=1.0)
    recorder = record(server, alice)
    try:
        commit_batches(alice.tenant.pk, 20, interval=0.005, publisher=publisher)
        procs[0].terminate()
        procs[0].wait()
        # Committed while Redis is down: stored, never published.
        commit_batches(alice.tenant.pk, 20, interval=0.005, publisher=publisher)
        procs.append(subprocess.Popen(procs[0].args, stdout=subprocess.DEVNULL))
        assert wait_until(lambda: _answers(port), timeout=10)
        commit_batches(alice.tenant.pk, 20, interval=0.005, publisher=publisher)
        finish(recorder, last=60)
    finally:
        server.stop()
    assert "Redis Pub/Sub connection restored" in server.output()


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def test_it_commits_and_publishes_a_crashed_workers_job_exactly_once(
    services_env: dict[str, str], tmp_path: Path, alice: Operator, bob: Operator
) -> None:
    env = {
        **services_env,
        "METRICSTREAM_QUEUE": f"test-crash-{uuid.uuid4()}",
        "CELERY_VISIBILITY_TIMEOUT": "10",
    }
    server = start_server(env, tmp_path / "server.log")
    first = start_worker(env, tmp_path / "worker-1.log")
    recorder = record(server, alice)
    db = connection.settings_dict
    try:
        with psycopg.connect(
            host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]
        ) as blocker:
            # Hold the tenant's row lock: the job stops inside its transaction.
            blocker.execute(
                "SELECT 1 FROM tenants_tenant WHERE id = %s FOR UPDATE", [alice.tenant.pk]
            )
            response = httpx.post(
                f"{server.base}/api/v1/metrics",
                json={"metrics": [{"name": "cpu", "value": 1.0}]},
                headers={"Authorization": f"Bearer {alice.token}"},
                timeout=10,
            )
            assert response.status_code == 202
            assert wait_until(_waiting_for_a_lock, timeout=15), first.output()
            first.kill()  # SIGKILL mid-job
        # The lock is released. The dead worker's job either rolled back or, stored by
        # a single statement that needed no COMMIT from it, committed unpublished:
        # the redelivery stores it or publishes it again, and the stream has it once.

        second = start_worker(env, tmp_path / "worker-2.log")
        try:
            finish(recorder, last=1, timeout=40)
        finally:
            second.stop()
    finally:
        server.stop()
    assert list(Batch.objects.values_list("id", "seq")) == [
        (uuid.UUID(response.json()["submission_id"]), 1)
    ]


def test_it_loses_nothing_when_the_web_process_restarts(
    services_env: dict[str, str], tmp_path: Path, alice: Operator, bob: Operator
) -> None:
    port = free_port()
    server = start_server(services_env, tmp_path / "server.log", port=port)
    recorder = record(server, alice)
    committer = committing(alice.tenant.pk, 80, interval=0.01)
    try:
        time.sleep(0.2)
        started = time.monotonic()
        server.stop()  # SIGTERM: streams end cleanly, then the process exits
        stopped_in = time.monotonic() - started
        server = start_server(services_env, tmp_path / "server.log", port=port)
        committer.join()
        finish(recorder, last=80)
    finally:
        server.stop()
    assert stopped_in < 5, "open streams must not hold up shutdown"
    assert recorder.connections >= 2


def test_it_catches_a_slow_reader_up_without_slowing_the_others(
    services_env: dict[str, str],
    tmp_path: Path,
    alice: Operator,
    bob: Operator,
    staff_cookie: dict[str, str],
) -> None:
    server = start_server({**services_env, "STREAM_QUEUE_FRAMES": "4"}, tmp_path / "server.log")
    # A reader that stalls, then reads a frame every 50 ms, while ~8 MB of batches
    # commit: more than the socket buffers hold, so the server's writes to it
    # block and its inbox overflows, while the other stream reads at full speed.
    slow = record(server, alice, stall_seconds=2, delay_per_event=0.05)
    fast = record(server, alice)
    try:
        commit_batches(alice.tenant.pk, 100, size=20, wide=True)
        assert fast.wait_for(100, timeout=30)
        slow_progress = len(slow.seqs)
        finish(fast, last=100)
        finish(slow, last=100, timeout=60)
        stats = stream_status(server, staff_cookie)
    finally:
        server.stop()
    assert slow_progress < 100, "the slow reader kept up; the test proves nothing"
    assert stats["overflows"] >= 1 and stats["catch_ups"] >= 1, stats


def test_it_frees_everything_after_connection_churn(
    server: Server, alice: Operator, bob: Operator, staff_cookie: dict[str, str]
) -> None:
    from tests.stream.churn import churn

    baseline = stream_status(server, staff_cookie)
    committer = committing(alice.tenant.pk, 200, interval=0.005)
    cycles = churn(server.base, str(alice.tenant.pk), alice.session_cookie(), cycles=2000)
    committer.join()

    assert cycles == 2000
    assert wait_until(lambda: stream_status(server, staff_cookie)["streams"] == 0, timeout=5)
    after = stream_status(server, staff_cookie)
    channel = f"tenant.{alice.tenant.pk}.metrics"
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert wait_until(lambda: client.pubsub_numsub(channel)[0][1] == 0, timeout=2)
    assert after["channels"] == []
    assert after["tasks"] <= baseline["tasks"] + 2, (baseline, after)
    assert after["open_fds"] <= baseline["open_fds"] + 5, (baseline, after)


def test_it_notices_a_silently_dead_redis_connection(
    services_env: dict[str, str],
    tmp_path: Path,
    own_redis,
    alice: Operator,
    bob: Operator,
    staff_cookie: dict[str, str],
) -> None:
    from tests.stream.freezer import FreezingProxy

    port, _ = own_redis
    proxy = FreezingProxy(port).start()
    env = {
        **services_env,
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
        "REDIS_HEALTH_CHECK_SECONDS": "0.5",
        "REDIS_SOCKET_TIMEOUT_SECONDS": "0.5",
    }
    server = start_server(env, tmp_path / "server.log")
    # Published straight to Redis: only the hub's link goes through the proxy.
    publisher = RedisPublisher(f"redis://127.0.0.1:{port}/0", timeout=1.0)
    recorder = record(server, alice)
    try:
        commit_batches(alice.tenant.pk, 10, publisher=publisher)
        assert recorder.wait_for(10, timeout=10)
        proxy.freeze()  # no FIN, no RST: the hub's connection just goes quiet
        commit_batches(alice.tenant.pk, 10, publisher=publisher)
        finish(recorder, last=20, timeout=20)
        stats = stream_status(server, staff_cookie)
    finally:
        server.stop()
        proxy.stop()
    assert stats["reconnects"] >= 1, stats
