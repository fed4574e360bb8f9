"""Realistic-looking metrics for the demo, pushed through the real ingest API."""

import json
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("metricstream.demo")

HOSTS = ("web-1", "web-2", "db-1")
# Agents wait this long for an answer before giving up on one push.
PUSH_TIMEOUT_SECONDS = 5.0


def sample(now: float, rng: random.Random) -> list[dict[str, Any]]:
    metrics = []
    for index, host in enumerate(HOSTS):
        phase = now / 60 + index
        values = {
            "cpu_percent": round(40 + 30 * math.sin(phase) + rng.uniform(-5, 5), 2),
            "memory_used_bytes": float(int(2e9 + 5e8 * math.sin(phase / 3))),
            "http_requests_per_second": round(
                max(0.0, 200 + 80 * math.sin(phase * 2) + rng.gauss(0, 15)), 1
            ),
        }
        metrics += [
            {"name": name, "value": value, "timestamp": now, "labels": {"host": host}}
            for name, value in values.items()
        ]
    return metrics


def push_forever(url: str, token: str, interval: float, stop: threading.Event) -> None:
    rng = random.Random()
    while not stop.wait(interval):
        body = json.dumps({"metrics": sample(time.time(), rng)}).encode()
        request = urllib.request.Request(
            url,
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_SECONDS) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            log.warning("demo push failed: %s", exc)
