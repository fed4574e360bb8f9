from django.contrib import admin

from metricstream.tenants.models import IngestToken, Membership, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "last_seq", "created_at"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "last_seq"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "created_at"]
    autocomplete_fields = ["tenant"]


@admin.register(IngestToken)
class IngestTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "tenant", "created_at", "revoked_at"]
    readonly_fields = ["prefix", "digest", "tenant"]
