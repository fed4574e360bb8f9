"""Writes for ingestion: accepting a submission and storing it as one sequenced batch."""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

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
    with transaction.atomic():
        # The tenant's row lock serialises its batches: sequence numbers are
        # assigned in commit order, so replay by `seq > last` never skips one.
        tenant = (
            Tenant.objects.select_for_update()
            .only("id", "last_seq")
            .filter(pk=submission.tenant_id)
            .first()
        )
        if tenant is None:
            log.warning(
                "submission %s dropped: tenant %s no longer exists",
                submission.id,
                submission.tenant_id,
            )
            return None
        if Batch.objects.filter(pk=submission.id).exists():
            log.info("submission %s already stored; redelivery ignored", submission.id)
            return None

        seq = tenant.last_seq + 1
        Tenant.objects.filter(pk=tenant.pk).update(last_seq=seq)
        batch = Batch.objects.create(
            id=submission.id,
            tenant_id=tenant.pk,
            seq=seq,
            size=len(submission.metrics),
            received_at=received_at,
        )
        rows = [
            Metric(
                tenant_id=tenant.pk,
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
        payload = encode_batch(tenant.pk, seq, rows)
        channel = channel_for(tenant.pk)
        transaction.on_commit(lambda: publish(channel, payload))
    return batch


def publish(channel: str, payload: bytes) -> None:
    """Ring the doorbell. A failure loses no data: the batch is committed, and replay heals."""
    try:
        get_publisher().publish(channel, payload)
    except Exception:
        log.warning("could not publish on %s; the batch is stored but was not broadcast", channel)
