"""GET /api/v1/tenants/{id}/metrics: the history the live view starts from."""

import time
import uuid

import pytest
from django.test import Client

from metricstream.dashboard import selectors
from tests.conftest import Operator
from tests.support import store

pytestmark = pytest.mark.django_db


def url(operator: Operator, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/tenants/{operator.tenant.pk}/metrics" + (f"?{query}" if query else "")


def client_for(operator: Operator) -> Client:
    client = Client()
    client.force_login(operator.user)
    return client


def test_it_returns_the_window_up_to_the_latest_batch(alice: Operator, bob: Operator) -> None:
    now = time.time()
    store(alice.tenant.pk, [{"name": "cpu", "value": 1.0, "timestamp": now - 1200, "labels": {}}])
    store(alice.tenant.pk, [{"name": "cpu", "value": 2.0, "timestamp": now - 60, "labels": {}}])
    store(bob.tenant.pk, [{"name": "cpu", "value": 9.0, "timestamp": now - 60, "labels": {}}])

    body = client_for(alice).get(url(alice, window="15m")).json()

    assert body["upto"] == 2
    assert body["next"] is None
    assert [(m["seq"], m["value"]) for m in body["metrics"]] == [(2, 2.0)]


def test_it_pages_through_a_fixed_snapshot(alice: Operator, bob: Operator, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "HISTORY_PAGE_METRICS", 3)
    now = time.time()
    for batch in range(3):
        store(
            alice.tenant.pk,
            [
                {"name": "cpu", "value": float(batch * 10 + i), "timestamp": now, "labels": {}}
                for i in range(2)
            ],
        )
    client = client_for(alice)

    first = client.get(url(alice)).json()
    store(alice.tenant.pk, [{"name": "cpu", "value": 99.0, "timestamp": now, "labels": {}}])
    second = client.get(url(alice, cursor=first["next"])).json()

    values = [m["value"] for m in first["metrics"] + second["metrics"]]
    assert values == [0.0, 1.0, 10.0, 11.0, 20.0, 21.0]
    assert first["upto"] == second["upto"] == 3
    assert second["next"] is None


def test_it_answers_401_json_without_a_session(alice: Operator, bob: Operator) -> None:
    response = Client().get(url(alice))

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


def test_it_answers_403_across_tenants(alice: Operator, bob: Operator) -> None:
    response = client_for(bob).get(url(alice))

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_it_answers_404_for_a_malformed_id_and_403_for_an_unknown_one(
    alice: Operator, bob: Operator
) -> None:
    client = client_for(alice)

    assert client.get("/api/v1/tenants/nope/metrics").status_code == 404
    assert client.get(f"/api/v1/tenants/{uuid.uuid4()}/metrics").status_code == 403


@pytest.mark.parametrize("params", [{"window": "2d"}, {"cursor": "x"}, {"cursor": "1.-2.3"}])
def test_it_rejects_bad_parameters(alice: Operator, bob: Operator, params: dict) -> None:
    response = client_for(alice).get(url(alice, **params))

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
