import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from metricstream.tenants.management.commands._output import emit
from metricstream.tenants.models import Tenant
from metricstream.tenants.services import create_tenant


class Command(BaseCommand):
    help = "Create or list tenants. A new tenant comes with an ingest token, shown once."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="create a tenant and its first ingest token")
        create.add_argument("name", help="a human-readable name, e.g. 'Acme production'")
        create.add_argument("--json", action="store_true", help="print {id, name, token} as JSON")
        listing = actions.add_parser("list", help="list every tenant")
        listing.add_argument("--json", action="store_true", help="print a JSON array")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            name = options["name"].strip()
            if not name:
                raise CommandError("the tenant name must not be empty")
            tenant, issued = create_tenant(name)
            emit(
                self,
                options["json"],
                {"id": str(tenant.id), "name": tenant.name, "token": issued.token},
                f"Created tenant {tenant.name!r}\n"
                f"  id:    {tenant.id}\n"
                f"  token: {issued.token}\n"
                "Keep the token now: only its hash is stored.",
            )
        else:
            tenants = [
                {"id": str(t.id), "name": t.name, "batches": t.last_seq}
                for t in Tenant.objects.order_by("name")
            ]
            if options["json"]:
                self.stdout.write(json.dumps(tenants))
            elif not tenants:
                self.stdout.write("No tenants yet: metricstream tenant create NAME")
            for t in [] if options["json"] else tenants:
                self.stdout.write(f"{t['id']}  {t['name']}  ({t['batches']} batches)")
