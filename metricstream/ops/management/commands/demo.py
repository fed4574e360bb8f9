import argparse
import threading
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from metricstream.ops.server import add_bind_arguments, describe_mode, server
from metricstream.ops.synthetic import push_forever
from metricstream.tenants.models import Tenant
from metricstream.tenants.services import create_operator, grant, issue_token

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "metricstream-demo"
DEMO_TENANT = "Demo"
# How long the pusher waits for the server to come up before giving up.
STARTUP_TIMEOUT_SECONDS = 30


class Command(BaseCommand):
    help = (
        "Seed a demo operator and tenant, serve Metricstream, and push synthetic metrics "
        "through the ingest API so data moves at once."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_bind_arguments(parser)
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="seconds between synthetic pushes (default: %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0:
            raise CommandError("--interval must be positive")
        call_command("migrate", interactive=False, verbosity=0)
        user = get_user_model().objects.filter(username=DEMO_EMAIL).first()
        if user is None:
            user = create_operator(DEMO_EMAIL, DEMO_PASSWORD, staff=True)
        tenant = Tenant.objects.filter(name=DEMO_TENANT).first() or Tenant.objects.create(
            name=DEMO_TENANT
        )
        grant(user, tenant.pk)
        token = issue_token(tenant).token

        host, port = options["host"], options["port"]
        base = f"http://{host}:{port}"
        self.stdout.write(
            f"Metricstream demo ({describe_mode()})\n"
            f"  open      {base}/login/\n"
            f"  email     {DEMO_EMAIL}\n"
            f"  password  {DEMO_PASSWORD}\n"
            f"  tenant    {tenant.name} ({tenant.id})\n"
            f"  stream    {base}/api/v1/stream/{tenant.id}\n"
            f"Pushing synthetic metrics every {options['interval']}s. Ctrl-C stops."
        )
        web = server(host, port)
        stop = threading.Event()
        pusher = threading.Thread(
            target=self._push_when_up,
            args=(web, f"{base}/api/v1/metrics", token, options["interval"], stop),
            daemon=True,
        )
        pusher.start()
        try:
            web.run()
        finally:
            stop.set()

    def _push_when_up(
        self, web: Any, url: str, token: str, interval: float, stop: threading.Event
    ) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not web.started:
            if time.monotonic() > deadline or stop.is_set():
                return
            time.sleep(0.1)
        push_forever(url, token, interval, stop)
