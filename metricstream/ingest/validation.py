"""Validate an ingest request body into normalised metrics, or say exactly what is wrong.

Every rejected item is reported with its index, field and reason, so an agent
author can fix all problems from one response.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NAME_PATTERN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:.\-]*")
NAME_MAX_LENGTH = 200
LABEL_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LABEL_KEY_MAX_LENGTH = 100
LABEL_VALUE_MAX_LENGTH = 256
# Each label set is a chart series; more than this is almost always an agent
# putting unbounded values (request ids, timestamps) into labels.
MAX_LABELS = 16
# Errors reported per request: enough to fix an agent, bounded for a huge bad batch.
MAX_ERRORS_REPORTED = 100
ITEM_FIELDS = frozenset({"name", "value", "timestamp", "labels"})


@dataclass(frozen=True)
class ItemError:
    index: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass
class Validated:
    """Metrics ready for the job: timestamps as unix seconds, labels as str → str."""

    metrics: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)


class EnvelopeError(ValueError):
    """The body is not `{"metrics": [...]}` at all: nothing to report per item."""


def validate_body(
    body: Any, *, now: float, max_metrics: int, max_future_seconds: float
) -> Validated:
    if not isinstance(body, dict) or "metrics" not in body:
        raise EnvelopeError('the body must be a JSON object with a "metrics" array')
    items = body["metrics"]
    if not isinstance(items, list):
        raise EnvelopeError('"metrics" must be an array')
    if not items:
        raise EnvelopeError('"metrics" must not be empty')
    if len(items) > max_metrics:
        raise EnvelopeError(f'"metrics" has {len(items)} items; at most {max_metrics} allowed')

    result = Validated()
    latest = now + max_future_seconds
    for index, item in enumerate(items):
        errors = _validate_item(index, item, now=now, latest=latest, out=result.metrics)
        result.errors.extend(errors)
    return result


def _validate_item(
    index: int, item: Any, *, now: float, latest: float, out: list[dict[str, Any]]
) -> list[ItemError]:
    if not isinstance(item, dict):
        return [ItemError(index, "", "must be an object")]
    errors: list[ItemError] = [
        ItemError(index, key, "unknown field") for key in item if key not in ITEM_FIELDS
    ]

    name = item.get("name")
    if not isinstance(name, str):
        errors.append(ItemError(index, "name", "is required and must be a string"))
    elif len(name) > NAME_MAX_LENGTH:
        errors.append(ItemError(index, "name", f"is longer than {NAME_MAX_LENGTH} characters"))
    elif not NAME_PATTERN.fullmatch(name):
        errors.append(ItemError(index, "name", f"must match {NAME_PATTERN.pattern}"))

    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(ItemError(index, "value", "is required and must be a number"))
    elif not math.isfinite(value):
        errors.append(ItemError(index, "value", "must be finite"))

    timestamp, reason = _parse_timestamp(item.get("timestamp"), now=now, latest=latest)
    if reason:
        errors.append(ItemError(index, "timestamp", reason))

    labels = item.get("labels", {})
    errors.extend(ItemError(index, "labels", reason) for reason in _label_problems(labels))

    if not errors:
        out.append({"name": name, "value": float(value), "timestamp": timestamp, "labels": labels})
    return errors


def _parse_timestamp(raw: Any, *, now: float, latest: float) -> tuple[float, str]:
    if raw is None:
        return now, ""
    if isinstance(raw, bool):
        return 0.0, "must be an RFC 3339 string or unix seconds"
    if isinstance(raw, int | float):
        if not math.isfinite(raw) or raw < 0:
            return 0.0, "must be non-negative, finite unix seconds"
        seconds = float(raw)
    elif isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return 0.0, "is not an RFC 3339 date-time"
        if parsed.tzinfo is None:
            return 0.0, "needs a UTC offset (e.g. 'Z' or '+02:00')"
        seconds = parsed.astimezone(UTC).timestamp()
    else:
        return 0.0, "must be an RFC 3339 string or unix seconds"
    if seconds > latest:
        ahead = int(latest - now)
        return 0.0, f"is more than {ahead} seconds in the future"
    return seconds, ""


def _label_problems(labels: Any) -> list[str]:
    if not isinstance(labels, dict):
        return ["must be an object of string values"]
    problems = []
    if len(labels) > MAX_LABELS:
        problems.append(f"has {len(labels)} labels; at most {MAX_LABELS} allowed")
    for key, value in labels.items():
        if len(key) > LABEL_KEY_MAX_LENGTH:
            problems.append(f"key {key[:20]!r}… is longer than {LABEL_KEY_MAX_LENGTH} characters")
        elif not LABEL_KEY_PATTERN.fullmatch(key):
            problems.append(f"key {key!r} must match {LABEL_KEY_PATTERN.pattern}")
        if not isinstance(value, str):
            problems.append(f"value of {key[:LABEL_KEY_MAX_LENGTH]!r} must be a string")
        elif len(value) > LABEL_VALUE_MAX_LENGTH:
            problems.append(
                f"value of {key[:LABEL_KEY_MAX_LENGTH]!r} is longer than "
                f"{LABEL_VALUE_MAX_LENGTH} characters"
            )
    return problems
