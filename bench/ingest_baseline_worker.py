"""`python -m bench.ingest_baseline_worker --rows VARIANT [worker options]`: the same Celery
worker as `metricstream worker`, with the job's row-storing step swapped for a baseline.

The swap happens in the parent before the pool forks, so every child runs the
same job body (sequence number, Batch row, publish after commit) and only the
way the metric rows reach PostgreSQL differs.
"""

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Django is set up in main(), before the models are imported
    from metricstream.ingest.models import Batch
    from metricstream.ingest.services import Point

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")

ROW_AT_A_TIME = "orm-row-at-a-time"
BULK_CREATE = "orm-bulk-create"
VARIANTS = (ROW_AT_A_TIME, BULK_CREATE)


def store_rows_one_at_a_time(batch: "Batch", points: "list[Point]") -> None:
    """One INSERT per metric, through the ORM: what a straightforward job would do."""
    from metricstream.ingest.services import metric_rows

    for row in metric_rows(batch, points):
        row.save()


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--rows" or argv[1] not in VARIANTS:
        print(f"usage: --rows {{{','.join(VARIANTS)}}} [worker options]", file=sys.stderr)
        return 2
    import django

    django.setup()
    from metricstream import cli
    from metricstream.ingest import services

    services.ONE_STATEMENT_MAX_METRICS = 0  # every batch through the row-storing step
    services.store_rows = (
        store_rows_one_at_a_time if argv[1] == ROW_AT_A_TIME else services.bulk_create_rows
    )
    return cli.main(["worker", *argv[2:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
