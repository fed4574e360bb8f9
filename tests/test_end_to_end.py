"""Agent → ingest API → ProcessMetricSubmission → database → Pub/Sub → SSE, with real processes."""

import json
import time
from pathlib import Path

import httpx
import pytest

from metricstream.ingest.models import Batch
from tests.conftest import PASSWORD, Operator
from tests.support import (
    Process,
    Server,
    base_env,
    events,
    form_login,
    free_port,
    metricstream,
    next_metrics,
    start_server,
)

METRIC = {"name": "cpu_percent", "value": 45.5, "labels": {"host": "web-1"}}


def push(base: str, token: str, *metrics: dict) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/metrics",
        json={"metrics": list(metrics)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def watch_and_push(base: str, email: str, tenant_id: str, token: str) -> tuple[dict, list]:
    """Log in through the form, open the stream, push one metric, return the frame it became."""
    with httpx.Client(timeout=httpx.Timeout(10)) as browser:
        form_login(browser, base, email, PASSWORD)
        with browser.stream("GET", f"{base}/api/v1/stream/{tenant_id}") as response:
            assert response.status_code == 200
            stream = events(response)
            assert next(stream).retry is not None
            accepted = push(base, token, METRIC)
            assert accepted.status_code == 202, accepted.text
            frame = next_metrics(stream)
    return accepted.json(), [frame.id, json.loads(frame.data)]


@pytest.mark.django_db(transaction=True)
def test_it_delivers_a_pushed_metric_live_with_postgresql_and_redis(
    server: Server, worker: Process, alice: Operator, bob: Operator
) -> None:
    accepted, (frame_id, data) = watch_and_push(
        server.base, alice.email, str(alice.tenant.pk), alice.token
    )

    batch = Batch.objects.get(pk=accepted["submission_id"])
    assert frame_id == str(batch.seq) == "1"
    assert len(data) == 1
    assert data[0]["tenant_id"] == str(alice.tenant.pk)
    assert data[0]["seq"] == 1
    assert (data[0]["name"], data[0]["value"], data[0]["labels"]) == (
        "cpu_percent",
        45.5,
        {"host": "web-1"},
    )


@pytest.mark.django_db(transaction=True)
def test_it_does_not_leak_one_tenants_metrics_into_anothers_stream(
    server: Server, worker: Process, alice: Operator, bob: Operator
) -> None:
    with httpx.Client(timeout=httpx.Timeout(10)) as browser:
        form_login(browser, server.base, bob.email, PASSWORD)
        with browser.stream("GET", f"{server.base}/api/v1/stream/{bob.tenant.pk}") as response:
            stream = events(response)
            next(stream)
            assert push(server.base, alice.token, METRIC).status_code == 202
            assert push(server.base, bob.token, {**METRIC, "value": 7.0}).status_code == 202
            frame = next_metrics(stream)

    data = json.loads(frame.data)
    assert [(m["tenant_id"], m["value"]) for m in data] == [(str(bob.tenant.pk), 7.0)]


def test_it_delivers_a_pushed_metric_live_in_the_embedded_default(tmp_path: Path) -> None:
    env = base_env()  # neither DATABASE_URL nor REDIS_URL: SQLite and in-process broker
    env.pop("SECRET_KEY", None)
    metricstream("migrate", env=env, cwd=tmp_path)
    tenant = json.loads(
        metricstream("tenant", "create", "Embedded", "--json", env=env, cwd=tmp_path).stdout
    )
    metricstream(
        "user",
        "create",
        "carol@example.com",
        "--password-stdin",
        env=env,
        cwd=tmp_path,
        stdin=PASSWORD + "\n",
    )
    metricstream("grant", "carol@example.com", tenant["id"], env=env, cwd=tmp_path)

    server = start_server(env, tmp_path / "server.log", cwd=tmp_path)
    try:
        accepted, (frame_id, data) = watch_and_push(
            server.base, "carol@example.com", tenant["id"], tenant["token"]
        )
    finally:
        server.stop()
    assert "embedded default" in server.output()
    assert (tmp_path / "var" / "metricstream.sqlite3").exists()
    assert accepted["accepted"] == 1
    assert frame_id == "1"
    assert data[0]["tenant_id"] == tenant["id"]
    assert data[0]["value"] == 45.5


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_and_stores_nothing_when_the_queue_is_unreachable(
    services_env: dict[str, str], tmp_path: Path, alice: Operator, bob: Operator
) -> None:
    env = {**services_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    server = start_server(env, tmp_path / "server.log")
    try:
        started = time.monotonic()
        response = push(server.base, alice.token, METRIC)
        elapsed = time.monotonic() - started
    finally:
        server.stop()

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert elapsed < 5, "the agent must not be kept waiting"
    assert not Batch.objects.exists()
