"""The ProcessMetricSubmission job."""

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from metricstream.ingest.services import Submission, store_submission

# A database briefly out of reach (restarting, out of connections) must not lose an
# accepted submission: the job is tried again, which redelivery-safety makes harmless.
# With exponential backoff from 1 s (jittered), five retries span about 30 s.
JOB_MAX_RETRIES = 5
JOB_RETRY_BACKOFF_MAX_SECONDS = 16


@shared_task(
    name="ProcessMetricSubmission",
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=JOB_MAX_RETRIES,
    retry_backoff=True,
    retry_backoff_max=JOB_RETRY_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
)
def process_metric_submission(message: dict[str, Any]) -> int | None:
    """Persist one submission in one transaction, then publish it; returns its sequence number."""
    batch = store_submission(Submission.from_message(message))
    return batch.seq if batch else None


def enqueue(submission: Submission, *, max_retries: int) -> None:
    """Hand a submission to a worker (or run it here, in the embedded default).

    Raises kombu's OperationalError when the broker stays unreachable after
    `max_retries` quick retries, so the agent is told to retry rather than kept waiting.
    """
    process_metric_submission.apply_async(
        args=[submission.to_message()],
        retry=True,
        retry_policy={
            "max_retries": max_retries,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
    )
