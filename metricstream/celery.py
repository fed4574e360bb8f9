"""The Celery application that runs ProcessMetricSubmission."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "metricstream.settings")

app = Celery("metricstream")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # A worker that dies mid-job leaves the message unacknowledged, so it is
    # redelivered; the job is idempotent (one Batch row per submission id).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


app.autodiscover_tasks(["metricstream.ingest"])
