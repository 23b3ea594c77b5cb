"""The composed email in a real headless Chromium, at phone and desktop widths."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from playwright.sync_api import Browser, Page

from mailer.compose import compose_issue
from mailer.issue import Issue, load_issue
from tests.conftest import REPO_DIR

pytestmark = pytest.mark.browser

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
OTHER = REPO_DIR / "tests" / "fixtures" / "other-issue.yaml"

# In the page: is this text shown inside an element that is visible and within the width?
_VISIBLE = """([text, width]) => {
  const norm = (s) => s.replace(/\\s+/g, " ").trim();
  const wanted = norm(text);
  const all = Array.from(document.querySelectorAll("h1,h2,h3,h4,p,li,a,td,div,span"));
  const hits = all.filter((el) => norm(el.textContent).includes(wanted) &&
    !Array.from(el.children).some((c) => norm(c.textContent).includes(wanted)));
  return hits.some((el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && box.left >= 0 && box.right <= width + 0.5 &&
      style.visibility !== "hidden" && style.display !== "none";
  });
}"""

_BULLETS = """() => Array.from(document.querySelectorAll("ul li, ol li"))
  .filter((li) => li.closest("ul, ol").style.listStyle !== "none"
    && li.closest("ul, ol").style.listStyleType !== "none")
  .map((li) => {
    const style = getComputedStyle(li);
    const outer = li.closest("ul, ol").parentElement;
    const textLeft = outer.getBoundingClientRect().left
      + parseFloat(getComputedStyle(outer).paddingLeft);
    return { display: style.display, marker: style.listStyleType,
             indent: li.getBoundingClientRect().left - textLeft };
  })"""


def texts_of(issue: Issue) -> tuple[list[str], list[str]]:
    """Return the sample's headings and titles, and the text of every Markdown bullet."""
    headings: list[str] = []
    bullets: list[str] = []
    md = MarkdownIt("commonmark")
    for block in issue.blocks:
        data = block.model_dump()
        headings += [data[key] for key in ("heading",) if data.get(key)]
        headings += [item["title"] for item in data.get("items", [])]
        bodies = [data.get("body")] + [item.get("body") for item in data.get("items", [])]
        for body in filter(None, bodies):
            tokens = md.parse(body)
            for i, token in enumerate(tokens):
                if token.type == "list_item_open":
                    inline = next(t for t in tokens[i:] if t.type == "inline")
                    text = "".join(c.content for c in inline.children or [] if c.type == "text")
                    bullets.append(text[:40])
                if token.type == "heading_open":
                    headings.append(tokens[i + 1].content)
    return headings, bullets


def composed_page(browser: Browser, folder: Path, issue: Path, width: int) -> Page:
    """Compose the issue and open its HTML at the given viewport width."""
    (folder / "mailer.toml").write_text((REPO_DIR / "mailer.toml").read_text())
    composed = compose_issue(folder, issue, folder / "build")
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(composed.html_path.as_uri())
    return page


@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("issue_path", [SAMPLE, OTHER], ids=["sample", "other"])
def test_every_heading_and_bullet_is_visible_without_sideways_scrolling(
    browser: Browser, isolated: Path, width: int, issue_path: Path
) -> None:
    page = composed_page(browser, isolated, issue_path, width)
    try:
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"the page scrolls sideways: {scroll_width} > {width}"
        headings, bullets = texts_of(load_issue(issue_path).issue)
        assert len(bullets) >= (10 if issue_path == SAMPLE else 3)
        hidden = [t for t in headings + bullets if not page.evaluate(_VISIBLE, [t, width])]
        assert hidden == []
    finally:
        page.close()


def test_long_lists_keep_their_bullets_and_indentation(browser: Browser, isolated: Path) -> None:
    page = composed_page(browser, isolated, SAMPLE, 375)
    try:
        items = page.evaluate(_BULLETS)
        assert len(items) >= 10
        assert {item["display"] for item in items} == {"list-item"}
        assert {item["marker"] for item in items} <= {"disc", "decimal", "circle"}
        assert min(item["indent"] for item in items) >= 16
    finally:
        page.close()


def test_headings_are_in_order_and_the_language_is_set(browser: Browser, isolated: Path) -> None:
    page = composed_page(browser, isolated, SAMPLE, 600)
    try:
        assert page.evaluate("document.documentElement.lang") == "en-GB"
        levels = page.evaluate(
            "Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6')).map(h => +h.tagName[1])"
        )
        assert levels[0] == 1
        jumps = [(a, b) for a, b in itertools.pairwise(levels) if b > a + 1]
        assert jumps == []
        assert page.evaluate("Array.from(document.images).every(i => i.alt.trim().length > 0)")
    finally:
        page.close()


def test_the_preview_shows_both_widths_and_the_text_part(browser: Browser, isolated: Path) -> None:
    (isolated / "mailer.toml").write_text((REPO_DIR / "mailer.toml").read_text())
    composed = compose_issue(isolated, SAMPLE, isolated / "build")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(composed.preview_path.as_uri())
        assert page.locator("#desktop").get_attribute("width") == "640"
        assert page.locator("#phone").get_attribute("width") == "375"
        phone = page.frame_locator("#phone")
        assert phone.locator("h2", has_text="Dates for your diary").is_visible()
        assert "Dates for your diary\n====" in page.locator("#text").inner_text()
        assert "L&D Newsletter, issue 12" in page.locator(".inbox").inner_text()
    finally:
        page.close()


@pytest.mark.slow
def test_a_watching_preview_reloads_when_the_issue_changes(
    browser: Browser, isolated: Path
) -> None:
    (isolated / "mailer.toml").write_text((REPO_DIR / "mailer.toml").read_text())
    (isolated / "issues").mkdir()
    issue = isolated / "issues" / SAMPLE.name
    shutil.copy(SAMPLE, issue)
    preview = isolated / "build" / SAMPLE.name.replace(".yaml", ".preview.html")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "mailer", "compose", str(issue), "--watch", "--no-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    page = browser.new_page()
    try:
        deadline = time.monotonic() + 30
        while not preview.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        page.goto(preview.as_uri())
        assert "issue 12" in page.locator(".inbox").inner_text()
        # Saved the way many editors save: a new file renamed over the old one, twice.
        for subject in ("Changed while watching", "Changed again"):
            saved = issue.with_name(issue.name + ".swp")
            saved.write_text(
                re.sub(r"(?m)^subject: .*$", f'subject: "{subject}"', issue.read_text())
            )
            os.replace(saved, issue)
            page.locator(".inbox", has_text=subject).wait_for(timeout=20_000)
        issue.write_text(issue.read_text().replace("date: 2023-10-20", "date: soon", 1))
        page.locator(".problems", has_text='not a date ("soon")').wait_for(timeout=20_000)
    finally:
        page.close()
        watcher.terminate()
        watcher.communicate(timeout=20)
