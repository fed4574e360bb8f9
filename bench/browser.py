"""Commit -> on-screen latency in a real browser, and the live view's JS heap over a long soak.

The page reports, through its `metricstream:rendered` DOM event, the moment a
batch's values are in the DOM (`performance.timeOrigin + performance.now()`);
the committer records each batch's commit time. The baseline, in the same
page and the same run, is a bare EventSource on the same stream: receipt
without any rendering.
"""

import argparse
import json
import math
import random
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import fixtures, report
from bench.console import say
from bench.stats import distribution

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
# Seconds to wait for the page to say "live", and for the last frames to be drawn.
PAGE_READY_TIMEOUT_SECONDS = 30.0
DRAIN_SECONDS = 5.0
# Heap samples taken over the soak (after a forced garbage collection each).
HEAP_SAMPLES = 10
HOSTS = ("web-1", "web-2", "db-1")

# Installed before the page's own script runs: records when each batch is on
# screen, and opens the baseline EventSource once the page is live.
RECORDER = """
window.__onScreen = [];
window.__received = [];
document.addEventListener("metricstream:rendered", (e) => {
  if (!window.__baseline) return;
  for (const seq of e.detail.seqs) window.__onScreen.push([seq, e.detail.at]);
});
window.__openBaseline = (url) => {
  window.__baseline = new EventSource(url);
  window.__baseline.addEventListener("metrics", (e) => {
    window.__received.push([Number(e.lastEventId), performance.timeOrigin + performance.now()]);
  });
};
// Before the soak: the benchmark's own records must not be what grows.
window.__stopRecording = () => {
  window.__baseline.close();
  window.__baseline = null;
  window.__onScreen = [];
  window.__received = [];
};
"""


NAME = "browser"
SUMMARY = (
    "commit -> on-screen latency in Chromium, and the tab's JS heap over a soak (browser.json)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--batches", type=int, default=500, help="batches timed (default: %(default)s)")
    add("--rate", type=float, default=50.0, help="batches/s while timing (default: %(default)s)")
    add(
        "--soak-minutes",
        type=float,
        default=10.0,
        help="minutes of feeding before the heap verdict; 0 skips it (default: %(default)s)",
    )
    add(
        "--soak-rate",
        type=float,
        default=20.0,
        help="batches/s while soaking (default: %(default)s)",
    )
    add("--metrics-per-batch", type=int, default=6, help="(default: %(default)s)")


def parameters(args: argparse.Namespace) -> tuple["Parameters", list[str]]:
    params = Parameters(
        batches=args.batches,
        rate=args.rate,
        soak_minutes=args.soak_minutes,
        soak_rate=args.soak_rate,
        metrics_per_batch=args.metrics_per_batch,
    )
    problems = [
        message
        for ok, message in (
            (params.batches >= 1, "--batches must be at least 1"),
            (params.rate > 0, "--rate must be positive"),
            (params.soak_minutes >= 0, "--soak-minutes must not be negative"),
            (params.soak_rate > 0, "--soak-rate must be positive"),
            (params.metrics_per_batch >= 1, "--metrics-per-batch must be at least 1"),
        )
        if not ok
    ]
    return params, problems


@dataclass(frozen=True)
class Parameters:
    batches: int = 500
    rate: float = 50.0
    soak_minutes: float = 10.0
    soak_rate: float = 20.0
    metrics_per_batch: int = 6


class Committer:
    """Commits batches from this process as the job does, recording each commit time."""

    def __init__(self, tenant_id: str) -> None:
        import metricstream.ingest.services as services

        self.tenant_id = uuid.UUID(tenant_id)
        self.commits: dict[int, float] = {}
        self._services = services
        real_publish = services.publish

        def timed_publish(channel: str, payload: bytes) -> None:
            # on_commit runs this right after COMMIT returns: that is the commit time.
            committed = time.time()
            self.commits[json.loads(payload)[0]["seq"]] = committed
            real_publish(channel, payload)

        services.publish = timed_publish
        self._rng = random.Random(7)

    def commit_in_thread(self, count: int, rate: float, metrics_per_batch: int) -> None:
        """Playwright's sync API runs an event loop in this thread, where Django refuses the ORM."""
        from django.db import connection

        def feed() -> None:
            try:
                self.commit(count, rate, metrics_per_batch)
            finally:
                connection.close()  # this thread's own connection

        feeder = threading.Thread(target=feed)
        feeder.start()
        feeder.join()

    def commit(self, count: int, rate: float, metrics_per_batch: int) -> None:
        interval = 1.0 / rate
        start = time.monotonic()
        for index in range(count):
            now = time.time()
            metrics = [
                {
                    "name": ("cpu_percent", "http_requests_per_second")[i % 2],
                    "value": round(50 + 30 * math.sin(now / 10 + i) + self._rng.random(), 2),
                    "timestamp": now,
                    "labels": {"host": HOSTS[i % len(HOSTS)]},
                }
                for i in range(metrics_per_batch)
            ]
            submission = self._services.Submission(uuid.uuid4(), self.tenant_id, now, metrics)
            self._services.store_submission(submission)
            delay = start + (index + 1) * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def latencies(commits: dict[int, float], seen: list[list[float]]) -> list[float]:
    first: dict[int, float] = {}
    for seq, at_ms in seen:
        first.setdefault(int(seq), at_ms / 1000.0)
    return [first[seq] - at for seq, at in commits.items() if seq in first]


def run(p: Parameters) -> int:
    from playwright.sync_api import sync_playwright

    with fixtures.environment(NAME) as env:
        seeded = fixtures.prepare_database(1, env)
        tenant = seeded.tenant_ids[0]
        log = Path(tempfile.mkdtemp(prefix="metricstream-bench-")) / "server.log"
        server = fixtures.Server(env, log)
        server.wait_ready()
        say(f"server: {server.base}")
        committer = Committer(tenant)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies(
                    [{"name": "sessionid", "value": seeded.viewer_sessions[0], "url": server.base}]
                )
                page = context.new_page()
                page.add_init_script(RECORDER)
                page.goto(f"{server.base}/tenants/{tenant}/")
                page.wait_for_function(
                    "document.getElementById('state').textContent === 'live'",
                    timeout=PAGE_READY_TIMEOUT_SECONDS * 1000,
                )
                page.evaluate(f"window.__openBaseline('/api/v1/stream/{tenant}')")
                time.sleep(1)

                say(f"latency: committing {p.batches} batches at {p.rate}/s")
                committer.commit_in_thread(p.batches, p.rate, p.metrics_per_batch)
                time.sleep(DRAIN_SECONDS)
                on_screen = latencies(committer.commits, page.evaluate("window.__onScreen"))
                received = latencies(committer.commits, page.evaluate("window.__received"))
                page.evaluate("window.__stopRecording()")
                say(f"latency: {len(on_screen)} of {len(committer.commits)} batches on screen")

                heap = soak(page, committer, p)
                browser.close()
        finally:
            server.stop()

    results = {
        "batches_committed": len(committer.commits),
        "batches_on_screen": len(on_screen),
        "latency_ms": {
            "commit_to_on_screen": distribution(on_screen),
            "commit_to_eventsource_receipt_baseline": distribution(received),
        },
        "heap": heap,
    }
    document = report.envelope({**asdict(p), "browser": CHROMIUM}, results, "browser-latency")
    path = report.write(document, "browser")
    say(table(results))
    say(f"wrote {path}")
    return 0


def soak(page: Any, committer: Committer, p: Parameters) -> dict[str, Any]:
    """Feed the page for `soak_minutes` and sample its JS heap after forced collections."""
    if p.soak_minutes <= 0:
        return {"skipped": True}
    cdp = page.context.new_cdp_session(page)
    samples: list[dict[str, float]] = []
    per_sample = p.soak_minutes * 60 / HEAP_SAMPLES
    say(f"soak: {p.soak_minutes} min at {p.soak_rate} batches/s, {HEAP_SAMPLES} heap samples")
    started = time.monotonic()
    for index in range(HEAP_SAMPLES):
        committer.commit_in_thread(int(per_sample * p.soak_rate), p.soak_rate, p.metrics_per_batch)
        cdp.send("HeapProfiler.collectGarbage")
        usage = cdp.send("Runtime.getHeapUsage")
        samples.append(
            {
                "minute": round((time.monotonic() - started) / 60, 2),
                "used_mb": usage["usedSize"] / 2**20,
            }
        )
        say(f"soak: sample {index + 1}/{HEAP_SAMPLES}: {samples[-1]['used_mb']:.1f} MB")
    half = len(samples) // 2
    first = statistics.mean(s["used_mb"] for s in samples[:half])
    second = statistics.mean(s["used_mb"] for s in samples[half:])
    # The buffers fill up to their bounds first; flat means no growth after that.
    late = samples[half - 1 :]
    return {
        "samples": samples,
        "first_half_mean_mb": round(first, 2),
        "second_half_mean_mb": round(second, 2),
        "growth_ratio": round(second / first, 3),
        "second_half_growth_mb": round(late[-1]["used_mb"] - late[0]["used_mb"], 3),
    }


def table(results: dict[str, Any]) -> str:
    lines = ["commit -> browser latency, ms          count     p50     p90     p99     max"]
    for label, key in (
        ("on screen (values in the DOM)", "commit_to_on_screen"),
        ("EventSource receipt (baseline)", "commit_to_eventsource_receipt_baseline"),
    ):
        d = results["latency_ms"][key]
        lines.append(
            f"  {label:<34} {d['count']:>6} {d['p50']:>7.2f} {d['p90']:>7.2f} "
            f"{d['p99']:>7.2f} {d['max']:>7.2f}"
        )
    heap = results["heap"]
    if not heap.get("skipped"):
        lines.append(
            f"  JS heap: first half {heap['first_half_mean_mb']} MB, second half "
            f"{heap['second_half_mean_mb']} MB (x{heap['growth_ratio']}); "
            f"growth over the second half {heap['second_half_growth_mb']:+} MB"
        )
    return "\n".join(lines)
