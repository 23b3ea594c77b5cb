"""The archive in a real headless Chromium: opened from disk, and served under a sub-path."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Browser, Page

from mailer.issue import Issue, LoadedIssue, load_issue
from mailer.publish import build_archive
from tests.test_archive import OTHER, OTHER_STEM, SAMPLE, WINTER, WINTER_STEM, publish_to

pytestmark = pytest.mark.browser

NOW = datetime(2024, 1, 1, tzinfo=UTC)
_LINKS = "els => els.map(e => e.href)"


@pytest.fixture
def archive(newsletter: Path) -> tuple[Path, list[LoadedIssue]]:
    """Build the archive of three issues; return its folder and the issues, newest first."""
    publish_to(newsletter, newsletter / "public")  # published: the pages link its .ics files
    issues = newsletter / "issues"
    shutil.copy(SAMPLE, issues / SAMPLE.name)
    shutil.copy(OTHER, issues / f"{OTHER_STEM}.yaml")
    (issues / f"{WINTER_STEM}.yaml").write_text(WINTER, encoding="utf-8")
    out_dir = newsletter / "build" / "archive"
    report = build_archive(newsletter, out_dir, now=NOW)
    assert len(report.issues) == 3
    return out_dir, [load_issue(issues / f"{stem}.yaml") for stem in report.issues]


def block_headings(issue: Issue) -> list[str]:
    """Return the heading of every block that has one."""
    return [heading for block in issue.blocks if (heading := getattr(block, "heading", None))]


def check_issue_page(page: Page, loaded: LoadedIssue) -> None:
    """Assert the page shows the issue's subject and every block heading."""
    assert page.locator("h1").first.inner_text() == loaded.issue.subject
    headings = block_headings(loaded.issue)
    assert headings
    hidden = [h for h in headings if not page.locator("h2", has_text=h).first.is_visible()]
    assert hidden == []


def test_from_disk_every_link_of_the_index_resolves_and_each_page_shows_its_blocks(
    browser: Browser, archive: tuple[Path, list[LoadedIssue]]
) -> None:
    out_dir, issues = archive
    index = (out_dir / "index.html").as_uri()

    def body(browser: Browser) -> None:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        try:
            page.goto(index)
            hrefs = page.eval_on_selector_all("a[href]", _LINKS)
            assert len(hrefs) == len(issues) + 1  # each issue, and the feed
            for href in hrefs:
                assert href.startswith("file://"), href
                assert Path(unquote(urlsplit(href).path)).is_file(), f"{href} leads nowhere"
            for loaded in issues:
                page.goto(index)
                page.get_by_role("link", name=loaded.issue.subject, exact=True).click()
                page.wait_for_url(f"**/{loaded.stem}.html")
                check_issue_page(page, loaded)
                for href in page.eval_on_selector_all("a[href^='file:']", _LINKS):
                    assert Path(unquote(urlsplit(href).path)).is_file(), f"{href} leads nowhere"
                page.get_by_role("link", name="All issues of L&D Newsletter").click()
                page.wait_for_url("**/index.html")
        finally:
            page.close()

    body(browser)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def served(archive: tuple[Path, list[LoadedIssue]], tmp_path: Path) -> Iterator[str]:
    """Serve a copy of the archive at http://127.0.0.1:<port>/intranet/newsletter/archive/."""
    root = tmp_path / "www"
    shutil.copytree(archive[0], root / "intranet" / "newsletter" / "archive")
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/intranet/newsletter/archive/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_under_a_sub_path_every_link_on_every_page_is_served(
    browser: Browser, archive: tuple[Path, list[LoadedIssue]], served: str
) -> None:
    _out_dir, issues = archive

    def body(browser: Browser) -> None:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        try:
            assert (response := page.goto(served)) is not None and response.ok
            seen: set[str] = set()
            for loaded in issues:
                page.goto(served)
                page.get_by_role("link", name=loaded.issue.subject, exact=True).click()
                page.wait_for_url(f"{served}{loaded.stem}.html")
                check_issue_page(page, loaded)
                hrefs = page.eval_on_selector_all("a[href]", _LINKS)
                local = [href for href in hrefs if href.startswith(served)]
                assert any(href.endswith(".ics") for href in local), "no Add to calendar link"
                seen.update(local)
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= 375, f"{loaded.stem}: the page scrolls sideways on a phone"
            for href in sorted(seen):
                fetched = page.request.get(href)
                assert fetched.status == 200, href
                if href.endswith(".ics"):
                    assert fetched.body().startswith(b"BEGIN:VCALENDAR\r\n")
        finally:
            page.close()

    body(browser)
