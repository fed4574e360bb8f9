"""Resume with Last-Event-ID: replay from the database, then live, with no gap and no repeat."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Operator
from tests.recorder import Recorder, assert_exactly_once_in_order
from tests.support import Server, commit_batches, committing, events, start_server, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def open_stream(server: Server, operator: Operator, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{server.base}/api/v1/stream/{operator.tenant.pk}",
        cookies=operator.session_cookie(),
        headers=headers,
        timeout=5,
    )


def first_events(server: Server, operator: Operator, count: int, query: str = "", **headers: str):
    url = f"{server.base}/api/v1/stream/{operator.tenant.pk}{query}"
    with httpx.stream(
        "GET", url, cookies=operator.session_cookie(), headers=headers, timeout=5
    ) as response:
        assert response.status_code == 200
        stream = events(response)
        return [next(stream) for _ in range(count)]


def test_it_replays_every_batch_after_the_last_event_id_then_continues_live(
    server: Server, alice: Operator, bob: Operator
) -> None:
    commit_batches(alice.tenant.pk, 5)
    commit_batches(bob.tenant.pk, 3)

    opening, *replayed = first_events(server, alice, 4, **{"Last-Event-ID": "2"})

    assert opening.id == "2"
    assert [(e.event, e.id) for e in replayed] == [
        ("metrics", "3"),
        ("metrics", "4"),
        ("metrics", "5"),
    ]
    assert {m["tenant_id"] for e in replayed for m in json.loads(e.data)} == {str(alice.tenant.pk)}


def test_it_accepts_the_resume_point_as_a_query_parameter(
    server: Server, alice: Operator, bob: Operator
) -> None:
    commit_batches(alice.tenant.pk, 3)

    _, replayed = first_events(server, alice, 2, query="?last_event_id=2")

    assert (replayed.event, replayed.id) == ("metrics", "3")


def test_it_gives_a_fresh_stream_its_starting_id(
    server: Server, alice: Operator, bob: Operator
) -> None:
    commit_batches(alice.tenant.pk, 4)

    (opening,) = first_events(server, alice, 1)

    # A browser that drops before the first batch resumes from here.
    assert (opening.retry, opening.id) == (2000, "4")


def test_it_loses_and_repeats_nothing_across_reconnects_while_batches_commit(
    server: Server, alice: Operator, bob: Operator
) -> None:
    recorder = Recorder(
        server.base, str(alice.tenant.pk), alice.session_cookie(), reconnect_every=3
    ).start()
    try:
        assert wait_until(lambda: recorder.last_id is not None, timeout=10)
        committing(alice.tenant.pk, 60, interval=0.01).join()
        commit_batches(bob.tenant.pk, 5)
        assert recorder.wait_for(60, timeout=20), recorder.seqs
    finally:
        recorder.stop()

    assert recorder.errors == []
    assert recorder.connections >= 10
    assert_exactly_once_in_order(recorder.seqs, last=60)


@pytest.mark.parametrize(("last_id", "reason"), [("999", "ahead"), ("1", "expired")])
def test_it_resets_a_client_whose_last_event_id_cannot_be_replayed(
    narrow_server: Server, alice: Operator, bob: Operator, last_id: str, reason: str
) -> None:
    commit_batches(alice.tenant.pk, 10)

    _, reset = first_events(narrow_server, alice, 2, **{"Last-Event-ID": last_id})

    assert (reset.event, reset.id) == ("reset", "10")
    assert json.loads(reset.data) == {"reason": reason, "continue_from": 11}


def test_it_refuses_a_malformed_last_event_id(
    server: Server, alice: Operator, bob: Operator
) -> None:
    response = open_stream(server, alice, **{"Last-Event-ID": "twelve"})

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


@pytest.fixture
def narrow_server(services_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    """A server whose replay window is five batches."""
    server = start_server(
        {**services_env, "STREAM_REPLAY_MAX_BATCHES": "5"}, tmp_path / "server.log"
    )
    yield server
    server.stop()
