"""Fixtures of the browser tests: headless Chromium (Debian's ``chromium``,
never a downloaded browser) driven by Playwright, against the real API
servers of the test harness (tests/harness).

Without chromium the tests skip with a reason, unless
``OSISM_REQUIRE_CHROMIUM=1`` (CI) makes that a failure.

Every page a test opens is watched: an uncaught script error or a
Content-Security-Policy violation on it fails the test at teardown, and
every request it makes is recorded (see ``EventsPage``).
"""

import os
import shutil
from typing import Any, Callable, Iterator, List

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.events_page import EventsPage

# The harness's fixtures (real redis-server and API servers, the report of
# their output on a failure) come from its plugin, tests/harness/fixtures.py.
from tests.harness.fixtures import missing_server

DEBIAN_CHROMIUM = "/usr/bin/chromium"
# Headless in a container: no sandbox (root), no GPU, and none of the
# browser's own traffic (updates, sync, safe browsing lists), so the only
# requests are the page's.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAUNCH_DEADLINE_MS = 30_000


def chromium_executable() -> str:
    executable = shutil.which("chromium") or (
        DEBIAN_CHROMIUM if os.access(DEBIAN_CHROMIUM, os.X_OK) else None
    )
    if executable is None:
        missing_server(
            "chromium is not installed; install it (Debian: apt-get install "
            "chromium) to run the browser tests of the events page",
            "OSISM_REQUIRE_CHROMIUM",
        )
    return executable


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Not per session: Playwright's sync API
    keeps its own event loop marked as running in this thread while it is
    started, which the anyio tests that follow could not run beside."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=LAUNCH_DEADLINE_MS,
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(browser) -> Iterator[Callable[..., EventsPage]]:
    """Factory: ``open_page(base_url, path="/ui", **context_options)`` opens
    the events page in a fresh browser context (its own session storage),
    1280x800 unless ``viewport`` says otherwise, and waits until it is
    connected (``wait_live=False`` to skip that)."""
    pages: List[EventsPage] = []

    def open_(
        base_url: str, path: str = "/ui", wait_live: bool = True, **options: Any
    ) -> EventsPage:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        options.setdefault("locale", "en-US")
        context = browser.new_context(**options)
        events_page = EventsPage(context, base_url)
        pages.append(events_page)
        events_page.goto(path)
        if wait_live:
            events_page.expect_live()
        return events_page

    try:
        yield open_
    finally:
        problems = []
        for events_page in pages:
            problems += events_page.problems
            events_page.context.close()
    if problems:
        pytest.fail(
            "the page had script errors or CSP violations:\n" + "\n".join(problems),
            pytrace=False,
        )
