"""Shared output helpers for the tenant-side commands."""

import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError


def emit(command: BaseCommand, as_json: bool, data: dict[str, Any], text: str) -> None:
    command.stdout.write(json.dumps(data) if as_json else text)


def parse_tenant_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise CommandError(f"{raw!r} is not a tenant id (a UUID)") from None
