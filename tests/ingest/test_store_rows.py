"""How a batch's rows reach PostgreSQL: in one statement (small batches) or by COPY, stored
exactly as the ORM would store them."""

import time
import uuid
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import connection, transaction

from metricstream.ingest import services
from metricstream.ingest.models import Batch, Metric
from metricstream.ingest.services import Submission, store_submission
from tests.conftest import Operator

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="COPY is the PostgreSQL path"
)

# Label values that COPY's text format must escape and jsonb must keep.
AWKWARD_LABELS = {
    "tab": "a\tb",
    "newline": "line1\nline2\r",
    "backslash": "C:\\path\\N",
    "quote": 'say "hi"',
    "unicode": "héllo wörld ✓ 😀",
    "empty": "",
    "null_word": "\\N",
}
FIELDS = ("tenant_id", "seq", "name", "value", "timestamp", "labels", "received_at")


def submission(operator: Operator, received_at: float) -> Submission:
    return Submission(
        id=uuid.uuid4(),
        tenant_id=operator.tenant.pk,
        received_at=received_at,
        metrics=[
            {
                "name": "cpu.user_seconds:total",
                "value": 0.1 + 0.2,
                "timestamp": 1_700_000_000.123456,
                "labels": AWKWARD_LABELS,
            },
            {"name": "q", "value": -1.5e-300, "timestamp": 0.0, "labels": {}},
            {
                "name": "big",
                "value": 1.7976931348623157e308,
                "timestamp": 2_000_000_000.000001,
                "labels": {"host": "web-1"},
            },
        ],
    )


def stored(seq: int, tenant: uuid.UUID) -> list[tuple]:
    rows = Metric.objects.filter(tenant_id=tenant, seq=seq).order_by("id")
    return [tuple(getattr(m, f) for f in FIELDS if f != "seq") for m in rows]


# ONE_STATEMENT_MAX_METRICS values that send the 3-metric test batch down each path.
PATHS = {"one-statement": 1000, "copy": 0}


@pytest.fixture(params=list(PATHS))
def path(request: pytest.FixtureRequest):
    with mock.patch.object(services, "ONE_STATEMENT_MAX_METRICS", PATHS[request.param]):
        yield request.param


@pytest.fixture
def publisher():
    with mock.patch("metricstream.ingest.services.get_publisher", return_value=mock.Mock()):
        yield


@pytest.mark.django_db(transaction=True)
def test_it_stores_what_the_orm_stores(alice: Operator, path: str, publisher: None) -> None:
    received = 1_764_000_000.654321
    by_path = store_submission(submission(alice, received))
    with (
        mock.patch.object(services, "ONE_STATEMENT_MAX_METRICS", 0),
        mock.patch.object(services, "store_rows", services.bulk_create_rows),
    ):
        by_orm = store_submission(submission(alice, received))

    assert by_path is not None and by_orm is not None
    assert (by_path.seq, by_orm.seq) == (1, 2)
    assert stored(1, alice.tenant.pk) == stored(2, alice.tenant.pk)
    first = Metric.objects.filter(seq=1).order_by("id").first()
    assert first is not None
    assert first.labels == AWKWARD_LABELS
    assert first.value == 0.1 + 0.2
    assert first.timestamp == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert first.received_at == datetime.fromtimestamp(received, UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT labels = %s::jsonb FROM ingest_metric WHERE seq = 1 LIMIT 1",
            [
                '{"tab": "a\\tb", "newline": "line1\\nline2\\r", "backslash": '
                '"C:\\\\path\\\\N", "quote": "say \\"hi\\"", "unicode": '
                '"h\\u00e9llo w\\u00f6rld \\u2713 \\ud83d\\ude00", "empty": "", '
                '"null_word": "\\\\N"}'
            ],
        )
        assert cursor.fetchone() == (True,)


@pytest.mark.django_db(transaction=True)
def test_it_takes_the_sequence_number_with_the_batch_row(
    alice: Operator, bob: Operator, path: str, publisher: None
) -> None:
    received = time.time()
    batch = store_submission(submission(alice, received))

    assert batch is not None
    saved = Batch.objects.get(pk=batch.pk)
    assert (saved.tenant_id, saved.seq, saved.size) == (alice.tenant.pk, 1, 3)
    assert saved.received_at == datetime.fromtimestamp(received, UTC)
    assert saved.committed_at == batch.committed_at
    alice.tenant.refresh_from_db()
    bob.tenant.refresh_from_db()
    assert (alice.tenant.last_seq, bob.tenant.last_seq) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_submission_stores_no_row_twice(
    alice: Operator, path: str, publisher: None
) -> None:
    message = submission(alice, time.time())

    assert store_submission(message) is not None
    assert store_submission(message) is None

    assert Metric.objects.count() == 3
    assert Batch.objects.count() == 1
    alice.tenant.refresh_from_db()
    assert alice.tenant.last_seq == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_failing_after_copy_leaves_no_rows(alice: Operator, publisher: None) -> None:
    def copy_then_fail(batch: Batch, points: list[services.Point]) -> None:
        services.copy_rows(batch, points)
        assert Metric.objects.count() == 3  # written, inside the transaction
        raise RuntimeError("disk full")

    with (
        mock.patch.object(services, "ONE_STATEMENT_MAX_METRICS", 0),
        mock.patch.object(services, "store_rows", copy_then_fail),
        pytest.raises(RuntimeError),
    ):
        store_submission(submission(alice, time.time()))

    assert not Metric.objects.exists()
    assert not Batch.objects.exists()
    alice.tenant.refresh_from_db()
    assert alice.tenant.last_seq == 0


@pytest.mark.django_db(transaction=True)
def test_a_deleted_tenant_stores_nothing(alice: Operator, path: str, publisher: None) -> None:
    message = submission(alice, time.time())
    alice.tenant.delete()

    assert store_submission(message) is None
    assert not Batch.objects.exists()
    assert not Metric.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_redelivery_inside_a_callers_transaction_leaves_it_usable(
    alice: Operator, path: str, publisher: None
) -> None:
    message = submission(alice, time.time())
    with transaction.atomic():
        assert store_submission(message) is not None
        assert store_submission(message) is None
        assert Batch.objects.count() == 1  # the caller's transaction still works

    assert Metric.objects.count() == 3
