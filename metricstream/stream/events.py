"""The event protocol (DESIGN.md, "Event protocol"): batch payloads and SSE frames.

A batch is encoded once, by the job, into the bytes published on Redis and
sent as the SSE `data:` line; the hub frames those bytes once per batch and
every stream of the tenant writes the same frame object.
"""

import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

# The first `"seq":` in a payload is the first element's: keys are written in
# the order below and the only key before it holds a UUID.
_SEQ = re.compile(rb'"seq":(\d+)')


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Point(Protocol):
    """What a batch element is made of: a Metric row, stored or about to be."""

    name: str
    value: float
    timestamp: datetime
    labels: dict[str, Any]


def encode_batch(tenant_id: uuid.UUID, seq: int, metrics: Iterable[Point]) -> bytes:
    """The JSON array of one committed batch."""
    tenant = str(tenant_id)
    return json.dumps(
        [
            {
                "tenant_id": tenant,
                "seq": seq,
                "name": metric.name,
                "value": metric.value,
                "timestamp": rfc3339(metric.timestamp),
                "labels": metric.labels,
            }
            for metric in metrics
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def seq_of(payload: bytes) -> int | None:
    """The sequence number of an encoded batch, read without decoding all of it."""
    match = _SEQ.search(payload)
    return int(match.group(1)) if match else None


def metrics_frame(seq: int, payload: bytes) -> bytes:
    # json.dumps never writes a raw newline, so the payload is one `data:` line.
    return b"id: %d\nevent: metrics\ndata: %s\n\n" % (seq, payload)


def opening_frame(retry_milliseconds: int, resume_from: int, latest: int) -> bytes:
    """The reconnect delay, the id to resume from, and the tenant's latest sequence number.

    Its `id:` sets the browser's last event id even before the first batch, so
    a stream that drops early loses nothing; `latest` tells a client replaying
    from further back when it has caught up.
    """
    return b'retry: %d\nid: %d\nevent: open\ndata: {"latest":%d}\n\n' % (
        retry_milliseconds,
        resume_from,
        latest,
    )


def reset_frame(reason: str, latest: int) -> bytes:
    """Tell the client its view has a hole we cannot fill: reload, then continue live."""
    body = json.dumps({"reason": reason, "continue_from": latest + 1}).encode()
    return b"id: %d\nevent: reset\ndata: %s\n\n" % (latest, body)


HEARTBEAT = b": ping\n\n"
