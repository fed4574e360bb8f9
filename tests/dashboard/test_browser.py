"""The live view in a real browser against a real server, PostgreSQL and Redis."""

import math
import os
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Operator, stream_status
from tests.dashboard.conftest import log_in
from tests.support import (
    Process,
    Server,
    commit_batches,
    free_port,
    start_server,
    store,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


def push(server: Server, operator: Operator, *metrics: dict) -> None:
    response = httpx.post(
        f"{server.base}/api/v1/metrics",
        json={"metrics": list(metrics)},
        headers={"Authorization": f"Bearer {operator.token}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text


def open_live(page: Page, server: Server, operator: Operator) -> None:
    log_in(page, server.base, operator)
    page.goto(f"{server.base}/tenants/{operator.tenant.pk}/")
    expect(page.locator("#state")).to_have_text("live")


def rendered(page: Page) -> list[int]:
    return page.evaluate("window.__rendered")


def test_it_shows_pushed_metrics_without_a_reload(
    page: Page, server: Server, worker: Process, alice: Operator, bob: Operator
) -> None:
    open_live(page, server, alice)

    push(server, alice, {"name": "cpu_percent", "value": 42.5, "labels": {"host": "web-1"}})
    push(server, alice, {"name": "queue_depth", "value": 7, "labels": {}})

    row = page.locator("#latest tbody tr", has_text="host=web-1")
    expect(row).to_contain_text("cpu_percent")
    expect(row).to_contain_text("42.5")
    expect(page.locator('.chart[data-metric="cpu_percent"] canvas')).to_have_count(1)
    expect(page.locator('.chart[data-metric="queue_depth"] canvas')).to_have_count(1)
    assert rendered(page) == [1, 2]


def test_it_shows_bob_a_403_and_opens_no_stream(
    page: Page, server: Server, alice: Operator, bob: Operator, staff_cookie: dict[str, str]
) -> None:
    log_in(page, server.base, bob)

    response = page.goto(f"{server.base}/tenants/{alice.tenant.pk}/")

    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    assert stream_status(server, staff_cookie)["streams"] == 0


def test_it_closes_its_stream_when_the_tab_closes(
    page: Page, server: Server, alice: Operator, bob: Operator, staff_cookie: dict[str, str]
) -> None:
    open_live(page, server, alice)
    assert stream_status(server, staff_cookie)["streams"] == 1

    page.close()

    assert wait_until(lambda: stream_status(server, staff_cookie)["streams"] == 0, timeout=1.0)


def test_it_shows_reconnecting_then_fills_the_gap_after_a_restart(
    page: Page, services_env: dict[str, str], tmp_path: Path, alice: Operator, bob: Operator
) -> None:
    port = free_port()
    server = start_server(services_env, tmp_path / "server.log", port=port)
    try:
        commit_batches(alice.tenant.pk, 3)
        open_live(page, server, alice)

        server.stop()
        expect(page.locator("#state")).to_have_text("reconnecting")
        commit_batches(alice.tenant.pk, 5)  # committed while the page cannot hear
        server = start_server(services_env, tmp_path / "server.log", port=port)

        expect(page.locator("#state")).to_have_text("live", timeout=15_000)
        assert wait_until(lambda: rendered(page) == [4, 5, 6, 7, 8], timeout=5), rendered(page)
        # The latest value is the last batch committed while the page was away.
        row = page.locator("#latest tbody tr")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(2)).to_have_text("4")
    finally:
        server.stop()


def test_it_renders_the_live_view(
    page: Page, server: Server, alice: Operator, bob: Operator, tmp_path: Path
) -> None:
    """Also writes the README's screenshot when SCREENSHOT names a file (`make screenshot`)."""
    now = time.time()
    for step in range(120):
        at = now - 600 + step * 5
        store(
            alice.tenant.pk,
            [
                {
                    "name": name,
                    "value": round(base + scale * math.sin(step / 9 + i) + 3 * math.cos(step), 2),
                    "timestamp": at,
                    "labels": {"host": host},
                }
                for i, host in enumerate(("web-1", "web-2", "db-1"))
                for name, base, scale in (
                    ("cpu_percent", 45, 25),
                    ("http_requests_per_second", 220, 80),
                    ("memory_used_bytes", 2e9, 4e8),
                )
            ],
            now=at,
        )
    open_live(page, server, alice)
    expect(page.locator(".chart canvas")).to_have_count(3)
    target = Path(os.environ.get("SCREENSHOT") or tmp_path / "live.png")
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
