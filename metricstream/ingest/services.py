"""Writes for ingestion: accepting a submission and storing it as one sequenced batch."""

import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from json import dumps
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from metricstream.ingest.models import Batch, Metric
from metricstream.stream.broker import get_publisher
from metricstream.stream.events import encode_batch
from metricstream.tenants.models import Tenant, channel_for

log = logging.getLogger(__name__)

# Rows per INSERT statement when storing a batch without COPY (SQLite).
INSERT_CHUNK = 1000
# Up to this many metrics a batch goes in as one statement, its own transaction: one
# round trip instead of five (BEGIN, batch row, COPY's start and end, COMMIT). Past it,
# COPY's lower cost per row wins; the two were even at about 50 metrics (bench/ingest).
ONE_STATEMENT_MAX_METRICS = 32
# The Metric columns a batch writes, in the order of the rows handed to COPY.
METRIC_FIELDS = ("tenant", "seq", "name", "value", "timestamp", "labels", "received_at")


@dataclass(frozen=True)
class Submission:
    """What the ingest view hands the job: validated metrics, timestamps in unix seconds."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    received_at: float
    metrics: list[dict[str, Any]]

    def to_message(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "tenant_id": str(self.tenant_id),
            "received_at": self.received_at,
            "metrics": self.metrics,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "Submission":
        return cls(
            id=uuid.UUID(message["id"]),
            tenant_id=uuid.UUID(message["tenant_id"]),
            received_at=message["received_at"],
            metrics=message["metrics"],
        )


def store_submission(submission: Submission) -> Batch | None:
    """Store a submission as the tenant's next batch and publish it after commit.

    Returns None when there is nothing to do: the submission was stored by an
    earlier delivery of the same job, or its tenant has been deleted.
    """
    received_at = datetime.fromtimestamp(submission.received_at, UTC)
    points = to_points(submission.metrics)
    try:
        if connection.vendor == "postgresql" and len(points) <= ONE_STATEMENT_MAX_METRICS:
            batch = _store_in_one_statement(submission, received_at, points)
            if batch is not None:
                _publish_on_commit(batch, points)
        else:
            with transaction.atomic():
                batch = _open_batch(submission, received_at)
                if batch is not None:
                    # Looked up when called, so a benchmark baseline can swap this step.
                    store_rows(batch, points)
                    _publish_on_commit(batch, points)
    except IntegrityError:
        stored = Batch.objects.filter(pk=submission.id).first()
        if stored is None:
            raise
        # An earlier delivery committed this batch and may have died before its
        # PUBLISH (a worker killed mid-job): ring again. Streams drop a batch they have.
        republish(stored)
        log.info("submission %s already stored; published again", submission.id)
        return None
    if batch is None:
        log.warning(
            "submission %s dropped: tenant %s no longer exists",
            submission.id,
            submission.tenant_id,
        )
    return batch


def _publish_on_commit(batch: Batch, points: "list[Point]") -> None:
    payload = encode_batch(batch.tenant_id, batch.seq, points)
    channel = channel_for(batch.tenant_id)
    transaction.on_commit(lambda: publish(channel, payload))


class Point(NamedTuple):
    """One metric of a batch: a row to store and an element of the published payload."""

    name: str
    value: float
    timestamp: datetime
    labels: dict[str, Any]


def to_points(metrics: list[dict[str, Any]]) -> list[Point]:
    # A plain tuple per metric: a Metric instance costs more to build than to store by COPY.
    return [
        Point(m["name"], m["value"], datetime.fromtimestamp(m["timestamp"], UTC), m["labels"])
        for m in metrics
    ]


def _open_batch(submission: Submission, received_at: datetime) -> Batch | None:
    """Take the tenant's next sequence number and insert the Batch row; None if no tenant.

    The submission id is the batch's primary key: a redelivered job fails here
    with IntegrityError and its whole transaction, sequence number included,
    rolls back.
    """
    batch = _new_batch(submission, received_at)
    if connection.vendor != "postgresql":
        seq = _next_seq(submission.tenant_id)
        if seq is None:
            return None
        batch.seq = seq
        batch.save(force_insert=True)
        return batch
    with connection.cursor() as cursor:
        cursor.execute(_open_batch_sql(), _open_batch_params(batch))
        row = cursor.fetchone()
    return _opened(batch, row)


def _new_batch(submission: Submission, received_at: datetime) -> Batch:
    return Batch(
        id=submission.id,
        tenant_id=submission.tenant_id,
        seq=0,
        size=len(submission.metrics),
        received_at=received_at,
        committed_at=timezone.now(),
    )


def _opened(batch: Batch, row: tuple[Any, ...] | None) -> Batch | None:
    """The batch as stored, given the row its INSERT returned (none: no such tenant)."""
    if row is None:
        return None
    batch.seq = row[0]
    batch._state.adding = False
    batch._state.db = connection.alias
    return batch


# The statements below depend only on the models and the (one) database, so each
# is built once per process rather than once per batch.
@cache
def _open_batch_sql() -> str:
    """One round trip: advance the sequence under the tenant's row lock and insert the batch."""
    return f"WITH {_next_seq_cte()} {_insert_batch_sql()}"


def _next_seq_cte() -> str:
    table = connection.ops.quote_name(Tenant._meta.db_table)
    return (
        f"tenant AS (UPDATE {table} SET last_seq = last_seq + 1 "
        f"WHERE id = %s RETURNING id, last_seq)"
    )


def _insert_batch_sql() -> str:
    return (
        f"INSERT INTO {connection.ops.quote_name(Batch._meta.db_table)} "
        f"(id, tenant_id, seq, size, received_at, committed_at) "
        f"SELECT %s, tenant.id, tenant.last_seq, %s, %s, %s FROM tenant "
        f"RETURNING seq, tenant_id"
    )


def _open_batch_params(batch: Batch) -> list[Any]:
    return [batch.tenant_id, batch.id, batch.size, batch.received_at, batch.committed_at]


def _store_in_one_statement(
    submission: Submission, received_at: datetime, points: list[Point]
) -> Batch | None:
    """The sequence number, the Batch row and every metric row in one statement.

    On its own it is a transaction; inside a caller's, a savepoint keeps a
    redelivery's IntegrityError from breaking the caller's transaction.
    """
    batch = _new_batch(submission, received_at)
    params = [
        *_open_batch_params(batch),
        batch.received_at,
        [p.name for p in points],
        [p.value for p in points],
        [p.timestamp.isoformat() for p in points],
        [dumps(p.labels) for p in points],
    ]
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with guard, connection.cursor() as cursor:
        cursor.execute(_one_statement_sql(), params)
        row = cursor.fetchone()
    return _opened(batch, row)


@cache
def _metric_columns() -> str:
    qn = connection.ops.quote_name
    return ", ".join(qn(Metric._meta.get_field(f).column) for f in METRIC_FIELDS)


@cache
def _one_statement_sql() -> str:
    qn = connection.ops.quote_name
    columns = _metric_columns()
    # Text arrays, parsed by PostgreSQL, as for COPY: cheaper than adapting each value.
    return (
        f"WITH {_next_seq_cte()}, batch AS ({_insert_batch_sql()}), rows AS ("
        f"INSERT INTO {qn(Metric._meta.db_table)} ({columns}) "
        f"SELECT batch.tenant_id, batch.seq, m.name, m.value, m.at::timestamptz, "
        f"m.labels::jsonb, %s FROM batch, "
        f"unnest(%s::text[], %s::float8[], %s::text[], %s::text[]) AS m(name, value, at, labels)"
        f") SELECT seq FROM batch"
    )


def store_rows(batch: Batch, points: list[Point]) -> None:
    """Insert a batch's metric rows: COPY on PostgreSQL, INSERTs elsewhere (SQLite)."""
    if connection.vendor == "postgresql":
        copy_rows(batch, points)
    else:
        bulk_create_rows(batch, points)


@cache
def _copy_sql() -> str:
    table = connection.ops.quote_name(Metric._meta.db_table)
    return f"COPY {table} ({_metric_columns()}) FROM STDIN"


def copy_rows(batch: Batch, points: list[Point]) -> None:
    # COPY streams every row in one statement; the ORM's INSERT ... UNNEST spent most
    # of its time adapting parameters in Python (70 -> 20 µs a metric, batches of 1,000).
    statement = _copy_sql()
    # Values go as the text PostgreSQL parses into the same uuid, timestamptz and jsonb:
    # psycopg's datetime and Jsonb dumpers cost about 6 µs a row, these strings 1.5.
    # The labels are json.dumps'd, as Django's JSONField does on psycopg 3.
    tenant, seq, received = str(batch.tenant_id), batch.seq, batch.received_at.isoformat()
    with connection.cursor() as wrapper, wrapper.cursor.copy(statement) as copy:
        for p in points:
            row = (tenant, seq, p.name, p.value, p.timestamp.isoformat(), dumps(p.labels), received)
            copy.write_row(row)


def bulk_create_rows(batch: Batch, points: list[Point]) -> None:
    Metric.objects.bulk_create(metric_rows(batch, points), batch_size=INSERT_CHUNK)


def metric_rows(batch: Batch, points: list[Point]) -> list[Metric]:
    """The batch's metrics as unsaved Metric instances."""
    return [
        Metric(
            tenant_id=batch.tenant_id,
            seq=batch.seq,
            name=p.name,
            value=p.value,
            timestamp=p.timestamp,
            labels=p.labels,
            received_at=batch.received_at,
        )
        for p in points
    ]


def _next_seq(tenant_id: uuid.UUID) -> int | None:
    """Advance the tenant's sequence number and return it, holding its row lock until commit.

    The lock serialises the tenant's batches: sequence numbers are assigned in
    commit order, so replay by `seq > last` never skips a late commit. One
    statement takes the lock and the number (PostgreSQL, and SQLite >= 3.35).
    """
    table = connection.ops.quote_name(Tenant._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq",
            [Tenant._meta.pk.get_db_prep_value(tenant_id, connection)],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def republish(batch: Batch) -> None:
    """Publish a stored batch again, encoded from its rows as its first publication was."""
    rows = Metric.objects.filter(tenant_id=batch.tenant_id, seq=batch.seq).order_by("id")
    publish(channel_for(batch.tenant_id), encode_batch(batch.tenant_id, batch.seq, rows))


def publish(channel: str, payload: bytes) -> None:
    """Ring the doorbell. A failure loses no data: the batch is committed, and replay heals."""
    try:
        get_publisher().publish(channel, payload)
    except Exception:
        log.warning("could not publish on %s; the batch is stored but was not broadcast", channel)
