"""Writes for ingestion: accepting a submission and storing it as one sequenced batch."""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction

from metricstream.ingest.models import Batch, Metric
from metricstream.stream.broker import get_publisher
from metricstream.stream.events import encode_batch
from metricstream.tenants.models import Tenant, channel_for

log = logging.getLogger(__name__)

# Rows per INSERT statement when storing a batch.
INSERT_CHUNK = 1000


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
    try:
        with transaction.atomic():
            seq = _next_seq(submission.tenant_id)
            if seq is None:
                log.warning(
                    "submission %s dropped: tenant %s no longer exists",
                    submission.id,
                    submission.tenant_id,
                )
                return None
            # The submission id is the batch's primary key: a redelivered job
            # fails here and its whole transaction, sequence number included, rolls back.
            batch = Batch.objects.create(
                id=submission.id,
                tenant_id=submission.tenant_id,
                seq=seq,
                size=len(submission.metrics),
                received_at=received_at,
            )
            rows = [
                Metric(
                    tenant_id=submission.tenant_id,
                    seq=seq,
                    name=item["name"],
                    value=item["value"],
                    timestamp=datetime.fromtimestamp(item["timestamp"], UTC),
                    labels=item["labels"],
                    received_at=received_at,
                )
                for item in submission.metrics
            ]
            Metric.objects.bulk_create(rows, batch_size=INSERT_CHUNK)
            payload = encode_batch(submission.tenant_id, seq, rows)
            channel = channel_for(submission.tenant_id)
            transaction.on_commit(lambda: publish(channel, payload))
    except IntegrityError:
        if not Batch.objects.filter(pk=submission.id).exists():
            raise
        log.info("submission %s already stored; redelivery ignored", submission.id)
        return None
    return batch


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


def publish(channel: str, payload: bytes) -> None:
    """Ring the doorbell. A failure loses no data: the batch is committed, and replay heals."""
    try:
        get_publisher().publish(channel, payload)
    except Exception:
        log.warning("could not publish on %s; the batch is stored but was not broadcast", channel)
