import uuid

from django.conf import settings
from django.db import models


class Tenant(models.Model):
    """The root of multi-tenant isolation: every metric and stream belongs to one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    # The sequence number of the tenant's last committed batch; advanced under
    # this row's lock so commit order equals sequence order.
    last_seq = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def channel(self) -> str:
        return channel_for(self.id)


def channel_for(tenant_id: uuid.UUID) -> str:
    """The Pub/Sub channel of a tenant: its UUID in canonical lowercase form."""
    return f"tenant.{tenant_id}.metrics"


class Membership(models.Model):
    """An operator may watch a tenant's stream only through a membership."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.tenant}"


class IngestToken(models.Model):
    """A bearer token an agent uses to push metrics; only its SHA-256 is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tokens")
    # The first characters of the token, so an operator can tell tokens apart.
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
