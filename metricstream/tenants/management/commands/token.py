import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from metricstream.tenants.management.commands._output import emit, parse_tenant_id
from metricstream.tenants.models import IngestToken, Tenant
from metricstream.tenants.services import issue_token, revoke_token


class Command(BaseCommand):
    help = "Create, list or revoke ingest tokens. A token is shown once, at creation."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="issue a new token for a tenant")
        create.add_argument("tenant_id", metavar="TENANT_ID")
        create.add_argument("--json", action="store_true", help="print {tenant_id, token} as JSON")
        listing = actions.add_parser("list", help="list a tenant's tokens (prefixes only)")
        listing.add_argument("tenant_id", metavar="TENANT_ID")
        listing.add_argument("--json", action="store_true", help="print a JSON array")
        revoke = actions.add_parser("revoke", help="revoke a token by its prefix")
        revoke.add_argument("tenant_id", metavar="TENANT_ID")
        revoke.add_argument("prefix", help="the token's first characters, as `token list` shows")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_id = parse_tenant_id(options["tenant_id"])
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            raise CommandError(f"no tenant with id {tenant_id}")
        action = options["action"]
        if action == "create":
            issued = issue_token(tenant)
            emit(
                self,
                options["json"],
                {"tenant_id": str(tenant.id), "token": issued.token},
                f"New ingest token for {tenant.name!r}: {issued.token}\n"
                "Keep it now: only its hash is stored.",
            )
        elif action == "list":
            rows = [
                {
                    "prefix": t.prefix,
                    "created_at": t.created_at.isoformat(),
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in tenant.tokens.all()
            ]
            if options["json"]:
                self.stdout.write(json.dumps(rows))
            for row in [] if options["json"] else rows:
                state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
                self.stdout.write(f"{row['prefix']}…  created {row['created_at']}  {state}")
        else:
            matches = list(IngestToken.objects.filter(tenant=tenant, prefix=options["prefix"]))
            if len(matches) != 1:
                raise CommandError(
                    f"{len(matches)} tokens of {tenant.name!r} have prefix {options['prefix']!r}"
                )
            revoke_token(matches[0])
            self.stdout.write(f"Revoked token {matches[0].prefix}… of {tenant.name!r}")
