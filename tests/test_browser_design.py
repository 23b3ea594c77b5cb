"""The default layout in a real headless Chromium: phone alignment, narrow widths, dark mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from mailer.compose import compose_issue
from tests.conftest import REPO_DIR

pytestmark = pytest.mark.browser

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"

# Each course's button against the left edge of the text above it (its title).
_BUTTON_OFFSETS = """() => Array.from(document.querySelectorAll("a"))
  .filter((a) => /Book|Join the waiting list/.test(a.textContent))
  .map((a) => {
    const section = a.closest("table").closest("div");
    const title = section.querySelector("h3, p.item-title");
    const button = a.closest("td[bgcolor]") || a;
    return button.getBoundingClientRect().left - title.getBoundingClientRect().left;
  })"""

# Every text the reader sees, with its colour and the colour it is painted on.
_CONTRASTS = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    const box = el.getBoundingClientRect();
    if (!node.textContent.trim() || box.width === 0 || getComputedStyle(el).display === "none"
        || el.closest(".preheader")) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    found.push([node.textContent.trim().slice(0, 40), Math.round(ratio * 10) / 10,
                getComputedStyle(el).color, String(background(el))]);
  }
  return found;
}"""


def composed(folder: Path) -> Path:
    (folder / "mailer.toml").write_text((REPO_DIR / "mailer.toml").read_text())
    return compose_issue(folder, SAMPLE, folder / "build").html_path


def open_page(browser: Browser, path: Path, width: int, scheme: str = "light") -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)  # type: ignore[arg-type]
    page.goto(path.as_uri())
    return page


def test_course_buttons_line_up_with_the_text_on_a_phone(browser: Browser, isolated: Path) -> None:
    html_path = composed(isolated)
    for width in (375, 600):
        page = open_page(browser, html_path, width)
        try:
            offsets = page.evaluate(_BUTTON_OFFSETS)
            assert len(offsets) == 4
            assert all(abs(offset) < 1 for offset in offsets), (width, offsets)
        finally:
            page.close()


def test_nothing_scrolls_sideways_at_320_px(browser: Browser, isolated: Path) -> None:
    page = open_page(browser, composed(isolated), 320)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_is_legible_in_light_and_dark_mode(
    browser: Browser, isolated: Path, scheme: str
) -> None:
    page = open_page(browser, composed(isolated), 600, scheme)
    try:
        found = page.evaluate(_CONTRASTS)
        assert len(found) > 100
        body = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert (body == "rgb(16, 22, 28)") == (scheme == "dark")
        low = [item for item in found if item[1] < 4.5]
        assert low == []
    finally:
        page.close()


def test_a_folder_image_shows_in_the_composed_page_and_the_preview(
    browser: Browser, newsletter: Path
) -> None:
    from tests.test_images import image_issue, png

    path = image_issue(newsletter, data=png(300, 150))
    done = compose_issue(newsletter, path, newsletter / "build")
    page = open_page(browser, done.html_path, 600)
    try:
        widths = page.evaluate("Array.from(document.images).map((i) => i.naturalWidth)")
        assert widths == [300]
    finally:
        page.close()
    page = open_page(browser, done.preview_path, 1400)
    try:
        phone = page.frame_locator("#phone")
        assert phone.locator("img").evaluate("(i) => i.complete && i.naturalWidth") == 300
    finally:
        page.close()
