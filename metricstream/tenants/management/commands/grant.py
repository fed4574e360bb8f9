import argparse
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from metricstream.tenants.management.commands._output import parse_tenant_id
from metricstream.tenants.models import Tenant
from metricstream.tenants.services import grant


class Command(BaseCommand):
    help = "Let an operator watch a tenant's metrics."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument("tenant_id", metavar="TENANT_ID")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        tenant_id = parse_tenant_id(options["tenant_id"])
        user = get_user_model().objects.filter(username=email).first()
        if user is None:
            raise CommandError(f"no operator {email}; create one with `metricstream user create`")
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            raise CommandError(f"no tenant with id {tenant_id}")
        grant(user, tenant.pk)
        self.stdout.write(f"{email} may now watch {tenant.name!r}")
