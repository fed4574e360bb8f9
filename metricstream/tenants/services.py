"""Writes for tenants, operators, memberships and ingest tokens."""

import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from metricstream.tenants import tokens
from metricstream.tenants.models import IngestToken, Membership, Tenant


@dataclass(frozen=True)
class IssuedToken:
    """A token as shown to its owner, once; afterwards only its digest exists."""

    token: str
    record: IngestToken


def create_tenant(name: str) -> tuple[Tenant, IssuedToken]:
    with transaction.atomic():
        tenant = Tenant.objects.create(name=name)
        return tenant, issue_token(tenant)


def issue_token(tenant: Tenant) -> IssuedToken:
    secret = tokens.new_token()
    record = IngestToken.objects.create(
        tenant=tenant, prefix=secret[: tokens.PREFIX_SHOWN], digest=tokens.digest(secret)
    )
    return IssuedToken(token=secret, record=record)


def revoke_token(token: IngestToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def create_operator(email: str, password: str, *, staff: bool = False) -> AbstractBaseUser:
    """Operators log in with their email, which is also their username."""
    user_model = get_user_model()
    return user_model.objects.create_user(
        username=email, email=email, password=password, is_staff=staff
    )


def grant(user: AbstractBaseUser, tenant_id: uuid.UUID) -> Membership:
    membership, _ = Membership.objects.get_or_create(user=user, tenant_id=tenant_id)
    return membership
