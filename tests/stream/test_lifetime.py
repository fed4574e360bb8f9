"""Heartbeats and the maximum stream lifetime, on a server configured with short ones."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Operator
from tests.support import Server, events, start_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def brisk_server(services_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    env = {**services_env, "STREAM_HEARTBEAT_SECONDS": "0.2", "STREAM_MAX_LIFETIME_SECONDS": "1.5"}
    server = start_server(env, tmp_path / "server.log")
    yield server
    server.stop()


def test_it_sends_heartbeats_and_ends_the_stream_after_its_lifetime(
    brisk_server: Server, alice: Operator, bob: Operator
) -> None:
    url = f"{brisk_server.base}/api/v1/stream/{alice.tenant.pk}"
    started = time.monotonic()
    with httpx.stream("GET", url, cookies=alice.session_cookie(), timeout=5) as response:
        received = list(events(response))  # ends when the server closes the stream
    lasted = time.monotonic() - started

    assert received[0].retry is not None
    pings = [event for event in received if event.comments == ["ping"]]
    assert len(pings) >= 4
    assert 1.4 <= lasted < 3.0
