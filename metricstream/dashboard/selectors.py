"""Reads for the dashboard: the tenant list with its latest activity, and metric history."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from metricstream.ingest.models import Batch, Metric
from metricstream.stream.events import rfc3339
from metricstream.tenants.models import Tenant
from metricstream.tenants.selectors import tenants_of

# Metrics per history response; the page follows `next` for the rest.
HISTORY_PAGE_METRICS = 5000


def tenants_with_activity(user: AbstractBaseUser) -> list[Tenant]:
    """The operator's tenants, each annotated with `last_batch_at` (None before any batch)."""
    latest = Batch.objects.filter(tenant=OuterRef("pk")).order_by("-seq").values("committed_at")
    return list(tenants_of(user).annotate(last_batch_at=Subquery(latest[:1])))


@dataclass(frozen=True)
class Cursor:
    """Where a history read continues: a fixed snapshot (`upto`) and the last row returned."""

    upto: int
    seq: int = 0
    id: int = 0

    def encode(self) -> str:
        return f"{self.upto}.{self.seq}.{self.id}"

    @classmethod
    def decode(cls, raw: str) -> "Cursor":
        upto, seq, row = (int(part) for part in raw.split("."))
        if min(upto, seq, row) < 0:
            raise ValueError(raw)
        return cls(upto, seq, row)


def history(
    tenant_id: uuid.UUID, *, window_seconds: int, cursor: Cursor | None, now: datetime | None = None
) -> dict[str, Any]:
    """One page of the tenant's metrics within the window, as of one committed sequence number.

    The first page fixes `upto`, the tenant's latest sequence number; the live
    stream then resumes after it (`last_event_id=upto`), so history and stream
    meet without gap or repeat.
    """
    if cursor is None:
        latest = Tenant.objects.filter(pk=tenant_id).values_list("last_seq", flat=True).first()
        cursor = Cursor(upto=latest or 0)
    since = (now or timezone.now()) - timedelta(seconds=window_seconds)
    rows = list(
        Metric.objects.filter(
            tenant_id=tenant_id, seq__lte=cursor.upto, seq__gte=cursor.seq, timestamp__gte=since
        )
        .exclude(seq=cursor.seq, id__lte=cursor.id)
        .order_by("seq", "id")
        .values_list("id", "seq", "name", "value", "timestamp", "labels")[
            : HISTORY_PAGE_METRICS + 1
        ]
    )
    more = len(rows) > HISTORY_PAGE_METRICS
    rows = rows[:HISTORY_PAGE_METRICS]
    return {
        "upto": cursor.upto,
        "metrics": [
            {"seq": seq, "name": name, "value": value, "timestamp": rfc3339(ts), "labels": labels}
            for _, seq, name, value, ts, labels in rows
        ],
        "next": Cursor(cursor.upto, rows[-1][1], rows[-1][0]).encode() if more else None,
    }
