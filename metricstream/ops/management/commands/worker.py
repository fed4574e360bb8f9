import argparse
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from metricstream.celery import app


class Command(BaseCommand):
    help = "Run the Celery worker that executes ProcessMetricSubmission."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=os.cpu_count() or 1,
            help="worker processes (default: the number of CPUs, %(default)s)",
        )
        parser.add_argument(
            "--pool",
            choices=["prefork", "solo", "threads"],
            default="prefork",
            help="Celery execution pool (default: %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "the worker needs REDIS_URL; without it jobs run inside `metricstream serve`"
            )
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        app.worker_main(
            [
                "worker",
                f"--loglevel={settings.LOG_LEVEL}",
                f"--concurrency={options['concurrency']}",
                f"--pool={options['pool']}",
                f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
