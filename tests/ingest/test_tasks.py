"""The story's Task 4: ProcessMetricSubmission publishes the right data on the right channel."""

import json
import time
import uuid
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.db import OperationalError

from metricstream.ingest import services
from metricstream.ingest.models import Batch, Metric
from metricstream.ingest.services import Submission
from metricstream.ingest.tasks import process_metric_submission
from tests.conftest import Operator


def submission(operator: Operator, *values: float) -> Submission:
    return Submission(
        id=uuid.uuid4(),
        tenant_id=operator.tenant.pk,
        received_at=time.time(),
        metrics=[
            {"name": "cpu", "value": v, "timestamp": 1_700_000_000.25, "labels": {"host": "a"}}
            for v in values
        ],
    )


@pytest.fixture
def publisher():
    """The story asks for Redis to be mocked here; the end-to-end tests use the real one."""
    fake = mock.Mock()
    with mock.patch("metricstream.ingest.services.get_publisher", return_value=fake):
        yield fake


@pytest.mark.django_db(transaction=True)
def test_it_publishes_the_batch_on_the_tenants_channel(
    alice: Operator, bob: Operator, publisher: mock.Mock
) -> None:
    seq = process_metric_submission.apply(args=[submission(alice, 45.0, 46.5).to_message()]).get()

    assert seq == 1
    publisher.publish.assert_called_once()
    channel, payload = publisher.publish.call_args.args
    assert channel == f"tenant.{str(alice.tenant.pk).lower()}.metrics"
    assert channel != f"tenant.{bob.tenant.pk}.metrics"
    assert json.loads(payload) == [
        {
            "tenant_id": str(alice.tenant.pk),
            "seq": 1,
            "name": "cpu",
            "value": value,
            "timestamp": "2023-11-14T22:13:20.250000Z",
            "labels": {"host": "a"},
        }
        for value in (45.0, 46.5)
    ]


@pytest.mark.django_db(transaction=True)
def test_it_stores_the_batch_and_advances_the_sequence(
    alice: Operator, bob: Operator, publisher: mock.Mock
) -> None:
    process_metric_submission.apply(args=[submission(alice, 1).to_message()])
    process_metric_submission.apply(args=[submission(alice, 2, 3).to_message()])
    process_metric_submission.apply(args=[submission(bob, 9).to_message()])

    alice.tenant.refresh_from_db()
    assert alice.tenant.last_seq == 2
    assert list(
        Metric.objects.filter(tenant=alice.tenant).order_by("id").values_list("seq", "value")
    ) == [(1, 1.0), (2, 2.0), (2, 3.0)]
    assert Metric.objects.filter(tenant=bob.tenant).get().seq == 1


@pytest.mark.django_db(transaction=True)
def test_it_stores_a_redelivered_submission_once_and_publishes_it_again(
    alice: Operator, bob: Operator, publisher: mock.Mock
) -> None:
    message = submission(alice, 45.0).to_message()
    assert process_metric_submission.apply(args=[message]).get() == 1
    assert process_metric_submission.apply(args=[message]).get() is None

    assert Batch.objects.filter(tenant=alice.tenant).count() == 1
    assert Metric.objects.filter(tenant=alice.tenant).count() == 1
    # The first delivery may have died between its commit and its PUBLISH: the
    # redelivery rings again, with the same bytes (streams drop what they have).
    first, again = publisher.publish.call_args_list
    assert first == again


@pytest.mark.django_db(transaction=True)
def test_it_publishes_nothing_when_the_transaction_fails(
    alice: Operator, bob: Operator, publisher: mock.Mock
) -> None:
    message = submission(alice, 45.0).to_message()
    with (
        # The path with a transaction of its own (a single statement cannot fail halfway).
        mock.patch.object(services, "ONE_STATEMENT_MAX_METRICS", 0),
        mock.patch.object(services, "store_rows", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError),
    ):
        process_metric_submission.apply(args=[message], throw=True)

    alice.tenant.refresh_from_db()
    assert alice.tenant.last_seq == 0
    assert not Batch.objects.exists()
    publisher.publish.assert_not_called()


@pytest.mark.django_db(transaction=True)
def test_it_is_retried_when_the_database_is_briefly_out_of_reach(
    alice: Operator, bob: Operator, publisher: mock.Mock
) -> None:
    message = submission(alice, 45.0).to_message()
    outage = OperationalError("sorry, too many clients already")

    with (
        mock.patch("metricstream.ingest.tasks.store_submission", side_effect=outage),
        pytest.raises(Retry),  # a worker schedules the next try, after a backoff
    ):
        process_metric_submission.apply(args=[message])

    assert not Metric.objects.exists()
    assert process_metric_submission.apply(args=[message]).get() == 1
    assert Metric.objects.filter(tenant=alice.tenant).count() == 1
    publisher.publish.assert_called_once()
