import argparse
from typing import Any

from django.core.management.base import BaseCommand

from metricstream.ops.server import add_bind_arguments, describe_mode, server


class Command(BaseCommand):
    help = "Run the web server: dashboard, ingest API and live streams."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_bind_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(
            f"Metricstream on http://{options['host']}:{options['port']}/ ({describe_mode()})"
        )
        server(options["host"], options["port"]).run()
