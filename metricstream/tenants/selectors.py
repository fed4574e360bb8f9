"""Reads for tenants, memberships and ingest tokens."""

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from metricstream.tenants import tokens
from metricstream.tenants.models import IngestToken, Membership, Tenant


def tenant_for_token(secret: str) -> Tenant | None:
    """The tenant an active ingest token belongs to, or None."""
    token = (
        IngestToken.objects.select_related("tenant")
        .filter(digest=tokens.digest(secret), revoked_at__isnull=True)
        .first()
    )
    return token.tenant if token else None


def is_member(user_id: int, tenant_id: uuid.UUID) -> bool:
    return Membership.objects.filter(user_id=user_id, tenant_id=tenant_id).exists()


def tenants_of(user: AbstractBaseUser) -> QuerySet[Tenant]:
    return Tenant.objects.filter(memberships__user=user).order_by("name")
