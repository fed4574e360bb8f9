"""A real Chromium (Debian's), driven by Playwright."""

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import PASSWORD, Operator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
# Collects every batch the page reports on screen, for the assertions.
RECORD_RENDERED = """
window.__rendered = [];
document.addEventListener("metricstream:rendered", (e) => {
  for (const seq of e.detail.seqs) window.__rendered.push(seq);
});
"""


# Per module: Playwright's event loop must be gone before other tests call asyncio.run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), "install Debian's chromium (make test does)"
    # Playwright's sync API keeps an event loop running in this thread, which
    # makes Django refuse the tests' own (synchronous) ORM calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(RECORD_RENDERED)
    page.set_default_timeout(10_000)
    yield page
    context.close()


def log_in(page: Page, base: str, operator: Operator) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", operator.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
