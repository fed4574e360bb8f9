"""Reads for streams: who may open one (at connect), and where it resumes from (replay)."""

import enum
import uuid
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from itertools import groupby
from operator import attrgetter
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import close_old_connections
from django.utils import timezone

from metricstream.ingest.models import Batch, Metric
from metricstream.stream.events import encode_batch
from metricstream.tenants.models import Tenant
from metricstream.tenants.selectors import is_member


class Access(enum.Enum):
    GRANTED = "granted"
    ANONYMOUS = "anonymous"
    FORBIDDEN = "forbidden"


AnyUser = AbstractBaseUser | AnonymousUser


def session_user(session_key: str | None) -> AnyUser:
    """The user of a Django session cookie, verified as Django's auth middleware does."""
    # The stream app runs outside Django's request cycle, which would otherwise
    # retire stale or broken connections.
    close_old_connections()
    if not session_key:
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return get_user(SimpleNamespace(session=store))


def stream_access(session_key: str | None, tenant_id: uuid.UUID) -> Access:
    user = session_user(session_key)
    if not user.is_authenticated:
        return Access.ANONYMOUS
    # The same answer whether or not the tenant exists: ids are not probed.
    return Access.GRANTED if is_member(user.pk, tenant_id) else Access.FORBIDDEN


@dataclass(frozen=True)
class ResumePoint:
    """Where a stream continues: after `seq`; `reset` names why the client's id was refused."""

    seq: int
    latest: int
    reset: str = ""


def resume_point(
    tenant_id: uuid.UUID, last_id: int | None, *, max_batches: int, max_age_seconds: float
) -> ResumePoint:
    """Check a Last-Event-ID against the tenant's latest sequence and the replay window."""
    close_old_connections()
    latest = Tenant.objects.filter(pk=tenant_id).values_list("last_seq", flat=True).first() or 0
    if last_id is None or last_id == latest:
        return ResumePoint(latest, latest)
    if last_id > latest:
        return ResumePoint(latest, latest, reset="ahead")
    if latest - last_id > max_batches:
        return ResumePoint(latest, latest, reset="expired")
    oldest_wanted = (
        Batch.objects.filter(tenant_id=tenant_id, seq=last_id + 1)
        .values_list("committed_at", flat=True)
        .first()
    )
    if oldest_wanted is None or oldest_wanted < timezone.now() - timedelta(seconds=max_age_seconds):
        return ResumePoint(latest, latest, reset="expired")
    return ResumePoint(last_id, latest)


def batches_after(
    tenant_id: uuid.UUID, after: int, *, max_batches: int, max_metrics: int
) -> list[tuple[int, bytes]]:
    """One page of committed batches after `after`, encoded as published: [(seq, payload)].

    A page holds at most `max_batches` batches and, beyond its first batch, at
    most `max_metrics` metrics, so replay never loads an unbounded result.
    """
    close_old_connections()
    sizes = list(
        Batch.objects.filter(tenant_id=tenant_id, seq__gt=after)
        .order_by("seq")
        .values_list("seq", "size")[:max_batches]
    )
    if not sizes:
        return []
    last, total = sizes[0][0], sizes[0][1]
    for seq, size in sizes[1:]:
        if total + size > max_metrics:
            break
        last, total = seq, total + size
    rows = (
        Metric.objects.filter(tenant_id=tenant_id, seq__gt=after, seq__lte=last)
        .order_by("seq", "id")
        .values_list("seq", "name", "value", "timestamp", "labels", named=True)
    )
    return [
        (seq, encode_batch(tenant_id, seq, group))
        for seq, group in groupby(rows.iterator(chunk_size=2000), key=attrgetter("seq"))
    ]
