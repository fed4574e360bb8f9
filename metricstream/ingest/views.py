"""POST /api/v1/metrics: authenticate the agent, validate, enqueue, answer 202."""

import json
import logging
import time
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from kombu.exceptions import OperationalError

from metricstream.http import json_error
from metricstream.ingest.services import Submission
from metricstream.ingest.tasks import enqueue
from metricstream.ingest.validation import MAX_ERRORS_REPORTED, EnvelopeError, validate_body
from metricstream.tenants.selectors import tenant_for_token

log = logging.getLogger(__name__)


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _too_large() -> JsonResponse:
    limit = settings.INGEST_MAX_BODY_BYTES
    return json_error(413, "too_large", f"The body is larger than {limit} bytes.", limit=limit)


@csrf_exempt
def submit_metrics(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        response = json_error(405, "method_not_allowed", "Use POST.")
        response["Allow"] = "POST"
        return response

    secret = _bearer_token(request)
    tenant = tenant_for_token(secret) if secret else None
    if tenant is None:
        response = json_error(
            401,
            "unauthenticated",
            "A valid ingest token is required: Authorization: Bearer <token>.",
        )
        response["WWW-Authenticate"] = "Bearer"
        return response

    if request.content_type != "application/json":
        return json_error(415, "unsupported_media_type", "Send Content-Type: application/json.")
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return json_error(400, "bad_request", "Content-Length is not a number.")
    if declared > settings.INGEST_MAX_BODY_BYTES:
        return _too_large()
    try:
        raw = request.body
    except RequestDataTooBig:
        return _too_large()
    if len(raw) > settings.INGEST_MAX_BODY_BYTES:
        return _too_large()

    try:
        body = json.loads(raw)
    except ValueError as exc:
        return json_error(400, "malformed_json", f"The body is not valid JSON: {exc}.")

    now = time.time()
    try:
        validated = validate_body(
            body,
            now=now,
            max_metrics=settings.INGEST_MAX_METRICS,
            max_future_seconds=settings.INGEST_MAX_FUTURE_SECONDS,
        )
    except EnvelopeError as exc:
        return json_error(400, "bad_request", str(exc) + ".")
    if validated.errors:
        return json_error(
            422,
            "invalid_metrics",
            f"{len(validated.errors)} problem(s) found; nothing was stored.",
            errors=[e.as_dict() for e in validated.errors[:MAX_ERRORS_REPORTED]],
        )

    submission = Submission(
        id=uuid.uuid4(), tenant_id=tenant.pk, received_at=now, metrics=validated.metrics
    )
    try:
        enqueue(submission, max_retries=settings.CELERY_PUBLISH_MAX_RETRIES)
    except OperationalError as exc:
        log.error("could not enqueue submission for %s: %s", tenant.pk, exc)
        return json_error(
            503, "unavailable", "The job queue is unreachable; nothing was stored. Retry."
        )
    return JsonResponse(
        {"submission_id": str(submission.id), "accepted": len(submission.metrics)}, status=202
    )
