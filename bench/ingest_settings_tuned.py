"""What-if settings for `python -m bench ingest --django-settings bench.ingest_settings_tuned`.

The product's settings plus the two connection changes the ingest profile asks
for, so their effect is measured in a run of its own (needs psycopg-pool):

- The ingest view is synchronous, and under ASGI Django runs each request in a
  thread of its own, so with persistent connections every request opens a new
  PostgreSQL connection that outlives it until garbage collection. A pool hands
  connections from thread to thread.
- Celery's Django fix-up closes every connection before and after each task
  unless CELERY_DB_REUSE_MAX is set: each job would connect anew.
"""

from metricstream.settings import *  # noqa: F403
from metricstream.settings import DATABASES

# Connections a process keeps open for the pool, at most.
POOL_MAX_SIZE = 8
# Tasks a worker process runs before Celery closes its connections (then reopens them).
CELERY_DB_REUSE_MAX = 1000

if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool requires it
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": POOL_MAX_SIZE,
    }
