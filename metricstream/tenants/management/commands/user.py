import argparse
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from metricstream.tenants.services import create_operator


class Command(BaseCommand):
    help = "Create an operator account; operators log in with their email."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="create an operator")
        create.add_argument("email")
        secret = create.add_mutually_exclusive_group(required=True)
        secret.add_argument("--password", help="the password (visible in the process list)")
        secret.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        create.add_argument(
            "--staff", action="store_true", help="may use the admin and the stream status"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not an email address") from None
        password = (
            sys.stdin.readline().rstrip("\n") if options["password_stdin"] else options["password"]
        )
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if get_user_model().objects.filter(username=email).exists():
            raise CommandError(f"an operator {email} already exists")
        create_operator(email, password, staff=options["staff"])
        self.stdout.write(f"Created operator {email}")
