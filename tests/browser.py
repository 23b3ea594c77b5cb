"""A real headless Chromium (Debian's package) driven by Playwright, for the browser tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

# Chromium's background services would knock on a closed network at every start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Return the path of Debian's Chromium, if installed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Start headless Chromium once per session; skip (or fail in CI) without one."""
    path = chromium_path()
    if path is None:
        if os.environ.get("MAILER_REQUIRE_BROWSER"):
            pytest.fail(
                "no Chromium found, but MAILER_REQUIRE_BROWSER is set (apt-get install chromium)"
            )
        pytest.skip("no Chromium found: apt-get install chromium to run the browser tests")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()
