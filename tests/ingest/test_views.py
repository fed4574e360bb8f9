import json
from typing import Any

import pytest
from django.test import Client

from metricstream.ingest.models import Batch, Metric
from metricstream.tenants.models import IngestToken
from metricstream.tenants.services import revoke_token
from tests.conftest import Operator

URL = "/api/v1/metrics"
GOOD = {"metrics": [{"name": "cpu", "value": 45.0, "labels": {"host": "web-1"}}]}


def post(body: Any, token: str | None, content_type: str = "application/json", **extra: Any):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return Client().post(URL, data=data, content_type=content_type, **headers, **extra)


def assert_nothing_stored() -> None:
    assert not Batch.objects.exists()
    assert not Metric.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_accepts_metrics_and_stores_them_for_the_tokens_tenant(
    alice: Operator, bob: Operator, eager_jobs: None
) -> None:
    response = post(GOOD, alice.token)

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    batch = Batch.objects.get(pk=body["submission_id"])
    assert batch.tenant_id == alice.tenant.pk
    metric = Metric.objects.get()
    assert (metric.tenant_id, metric.name, metric.value, metric.labels) == (
        alice.tenant.pk,
        "cpu",
        45.0,
        {"host": "web-1"},
    )
    assert not Metric.objects.filter(tenant=bob.tenant).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ms_unknown", "Basic YWxpY2U6cHc="])
def test_it_rejects_a_missing_or_unknown_token(
    alice: Operator, bob: Operator, header: str | None
) -> None:
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().post(URL, data=json.dumps(GOOD), content_type="application/json", **extra)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response["WWW-Authenticate"] == "Bearer"
    assert_nothing_stored()


@pytest.mark.django_db
def test_it_rejects_a_revoked_token(alice: Operator, bob: Operator) -> None:
    revoke_token(IngestToken.objects.get(tenant=alice.tenant))

    response = post(GOOD, alice.token)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert_nothing_stored()


@pytest.mark.django_db
def test_it_rejects_a_body_that_is_not_json(alice: Operator, bob: Operator) -> None:
    response = post("cpu=45", alice.token, content_type="text/plain")

    assert response.status_code == 415
    assert response.json() == {
        "error": "unsupported_media_type",
        "message": "Send Content-Type: application/json.",
    }
    assert_nothing_stored()


@pytest.mark.django_db
def test_it_rejects_malformed_json(alice: Operator, bob: Operator) -> None:
    response = post('{"metrics": [', alice.token)

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert "not valid JSON" in response.json()["message"]
    assert_nothing_stored()


@pytest.mark.django_db
def test_it_rejects_a_body_without_a_metrics_array(alice: Operator, bob: Operator) -> None:
    response = post({"metric": []}, alice.token)

    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request",
        "message": 'the body must be a JSON object with a "metrics" array.',
    }


@pytest.mark.django_db
def test_it_rejects_an_oversized_body(alice: Operator, bob: Operator, settings) -> None:
    settings.INGEST_MAX_BODY_BYTES = 2048
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    body = {"metrics": [{"name": "cpu", "value": 1.0, "labels": {"k": "v" * 200}}] * 20}

    response = post(body, alice.token)

    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert response.json()["limit"] == 2048
    assert_nothing_stored()


@pytest.mark.django_db
def test_it_rejects_too_many_metrics(alice: Operator, bob: Operator, settings) -> None:
    settings.INGEST_MAX_METRICS = 3

    response = post({"metrics": [{"name": "cpu", "value": 1}] * 4}, alice.token)

    assert response.status_code == 400
    assert "at most 3" in response.json()["message"]
    assert_nothing_stored()


@pytest.mark.django_db(transaction=True)
def test_it_rejects_the_whole_batch_when_one_item_is_invalid(
    alice: Operator, bob: Operator, eager_jobs: None
) -> None:
    body = {
        "metrics": [
            {"name": "cpu", "value": 1},
            {"name": "cpu load", "value": 1},
            {"name": "mem", "value": "NaN"},
            {"name": "temp", "value": 1, "timestamp": 4_000_000_000},
        ]
    }

    response = post(body, alice.token)

    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "invalid_metrics"
    assert [(e["index"], e["field"]) for e in payload["errors"]] == [
        (1, "name"),
        (2, "value"),
        (3, "timestamp"),
    ]
    assert payload["errors"][2]["reason"] == "is more than 600 seconds in the future"
    assert_nothing_stored()


@pytest.mark.django_db
def test_it_answers_other_methods_with_405(alice: Operator, bob: Operator) -> None:
    response = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {alice.token}")

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
