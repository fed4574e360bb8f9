"""GET /api/v1/stream/{tenant} against a real uvicorn server, PostgreSQL and Redis."""

import uuid

import httpx
import pytest
import redis
from django.conf import settings

from tests.conftest import Operator, stream_status
from tests.support import Server, events, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

FORBIDDEN = {
    "error": "forbidden",
    "message": "You are not a member of this tenant, or it does not exist.",
}


def stream_url(server: Server, tenant_id: object) -> str:
    return f"{server.base}/api/v1/stream/{tenant_id}"


def numsub(channel: str) -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return client.pubsub_numsub(channel)[0][1]
    finally:
        client.close()


def test_it_streams_with_the_event_stream_headers(
    server: Server, alice: Operator, bob: Operator
) -> None:
    url = stream_url(server, alice.tenant.pk)
    with httpx.stream("GET", url, cookies=alice.session_cookie(), timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["connection"] == "keep-alive"
        assert response.headers["x-accel-buffering"] == "no"
        first = next(events(response))
        assert first.retry == 2000


def test_it_answers_401_json_without_a_session(
    server: Server, alice: Operator, bob: Operator
) -> None:
    response = httpx.get(stream_url(server, alice.tenant.pk), timeout=5)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "unauthenticated", "message": "Log in to open a stream."}


def test_it_answers_401_for_a_forged_session(
    server: Server, alice: Operator, bob: Operator
) -> None:
    cookies = {settings.SESSION_COOKIE_NAME: "x" * 32}
    response = httpx.get(stream_url(server, alice.tenant.pk), cookies=cookies, timeout=5)

    assert response.status_code == 401


def test_it_answers_403_across_tenants(server: Server, alice: Operator, bob: Operator) -> None:
    response = httpx.get(
        stream_url(server, alice.tenant.pk), cookies=bob.session_cookie(), timeout=5
    )

    assert response.status_code == 403
    assert response.json() == FORBIDDEN


def test_it_answers_the_same_403_for_a_tenant_that_does_not_exist(
    server: Server, alice: Operator, bob: Operator
) -> None:
    response = httpx.get(stream_url(server, uuid.uuid4()), cookies=bob.session_cookie(), timeout=5)

    assert response.status_code == 403
    assert response.json() == FORBIDDEN


def test_it_answers_404_for_a_malformed_tenant_id(
    server: Server, alice: Operator, bob: Operator
) -> None:
    response = httpx.get(
        stream_url(server, "not-a-uuid"), cookies=alice.session_cookie(), timeout=5
    )

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_it_answers_405_json_to_anything_but_get(
    server: Server, alice: Operator, bob: Operator
) -> None:
    response = httpx.post(
        stream_url(server, alice.tenant.pk), cookies=alice.session_cookie(), timeout=5
    )

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_it_frees_the_stream_and_its_redis_subscription_when_the_client_leaves(
    server: Server, alice: Operator, bob: Operator, staff_cookie: dict[str, str]
) -> None:
    channel = f"tenant.{alice.tenant.pk}.metrics"
    url = stream_url(server, alice.tenant.pk)
    with (
        httpx.Client(cookies=alice.session_cookie(), timeout=5) as client,
        client.stream("GET", url) as first,
        client.stream("GET", url) as second,
    ):
        # Keep both parsers alive: a discarded generator closes its connection.
        readers = [events(first), events(second)]
        assert all(next(reader).retry for reader in readers)
        assert stream_status(server, staff_cookie)["streams"] == 2
        # Two browsers, one Redis subscription: the hub fans out.
        assert numsub(channel) == 1

    # The default heartbeat is 15 s: a release within a second is the disconnect listener's.
    assert wait_until(lambda: stream_status(server, staff_cookie)["streams"] == 0, timeout=1.0)
    assert wait_until(lambda: numsub(channel) == 0, timeout=1.0)
    assert stream_status(server, staff_cookie)["channels"] == []


def test_it_keeps_the_status_for_staff(server: Server, alice: Operator, bob: Operator) -> None:
    url = f"{server.base}/api/v1/stream/status"

    assert httpx.get(url, timeout=5).status_code == 401
    response = httpx.get(url, cookies=alice.session_cookie(), timeout=5)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
