"""A real headless Chromium (Debian's ``chromium`` package, never a downloaded browser) driven by
Playwright against the real service. Every page records its console errors, page errors and
requests; a test fails on any console error (a Content-Security-Policy violation is one).
Screenshots go to ``tests/browser/artifacts/`` (git-ignored) for a person to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    ViewportSize,
    sync_playwright,
)

from hashsvc.config import Settings
from tests.helpers import make_platform
from tests.live import LiveService

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1000, "height": 900}


def chromium_path() -> str | None:
    """Debian's Chromium (``CHROMIUM`` overrides)."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


# Package scope: Playwright's synchronous API runs an event loop in this thread while it is
# started, where ``asyncio.run`` is then refused; the tests outside this package use it.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed (.ci/run installs Debian's chromium package)")
        pytest.skip("Chromium is not installed: apt-get install chromium")
    launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class PageLog:
    """What a page did: console errors, uncaught errors, every request it made."""

    errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(request)

    def on_console(self, message: ConsoleMessage) -> None:
        # An API answer of 4xx (wrong secret, refused hash) is logged by Chromium as an error;
        # the tests check what the page shows for it instead.
        expected = message.text.startswith(
            "Failed to load resource: the server responded with a status of 4"
        )
        if message.type == "error" and not expected:
            self.errors.append(f"console: {message.text}")


@dataclass
class WebPage:
    page: Page
    log: PageLog
    service: LiveService

    def open(self, path: str = "/") -> Page:
        self.page.goto(self.service.url + path)
        self.page.wait_for_selector("html[data-ready=true]")
        return self.page


@pytest.fixture
def web(browser: Browser, service: LiveService) -> Iterator[WebPage]:
    """A fresh browser context (English, 1000x900) on the live service."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", accept_downloads=True)
    log = PageLog()
    context.on("request", log.on_request)
    page = context.new_page()
    page.on("console", log.on_console)
    page.on("pageerror", lambda error: log.errors.append(f"page error: {error}"))
    page.set_default_timeout(20_000)
    yield WebPage(page, log, service)
    context.close()
    assert log.errors == [], log.errors


@pytest.fixture
def platform_key(settings: Settings, redis_url: str) -> str:
    """A platform's API key. Registered from another thread: Playwright's synchronous API keeps
    an event loop running in this one, where ``asyncio.run`` is refused."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(make_platform, settings, redis_url, "ExampleTube").result()
