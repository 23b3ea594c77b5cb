"""The default layout's design decisions, read from the rendered HTML and text."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from mailer.folder import load_settings
from mailer.issue import load_issue
from mailer.publish import build_archive
from mailer.render import format_when, render_sample
from mailer.render.palette import DARK_CARD, contrast, dark_palette
from tests.conftest import REPO_DIR

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"

BLOCKS = """subject: "Design"
date: 2023-10-20
preheader: "What's on"
blocks:
  - type: text
    body: |
      Good morning {{ recipient.first_name | default("colleague") }},

      Welcome to this issue, {{ recipient.first_name | default("colleague") }}: it is short.
  - type: news
    intro: Three things from **this week**.
    items:
      - title: Item without a block heading
        body: Its body.
  - type: news
    heading: In the news
    intro: Two more.
    items:
      - title: Item under a heading
  - type: courses
    intro: Courses without a heading.
    items:
      - title: A course
        url: https://example.org/c
  - type: dates
    heading: Dates
    intro: For your diary.
    items:
      - title: A week
        date: 2023-11-20
        end: 2023-11-24
"""


def render_blocks(folder: Path, **kwargs: bool) -> tuple[str, str]:
    path = folder / "issues" / "design.yaml"
    path.write_text(BLOCKS, encoding="utf-8")
    email = render_sample(folder, load_issue(path), load_settings(folder), **kwargs)
    return email.html, email.text


def test_intros_show_under_the_heading_in_html_and_text(newsletter: Path) -> None:
    html, text = render_blocks(newsletter)
    intros = ("Three things from", "Two more.", "Courses without a heading.", "For your diary.")
    for intro in intros:
        assert intro in html and intro in text
    assert "<strong>this week</strong>" in html
    assert text.index("In the news\n====") < text.index("Two more.") < text.index("* Item under")


def test_item_titles_are_one_level_below_their_heading_and_no_h2_without_one(
    newsletter: Path,
) -> None:
    html, _text = render_blocks(newsletter)
    root: Any = lxml_html.fromstring(html)
    headings = [(h.tag, h.text_content().strip()) for h in root.iter("h1", "h2", "h3")]
    assert ("h2", "In the news") in headings and ("h3", "Item under a heading") in headings
    shown = {text for _tag, text in headings}
    assert "Item without a block heading" not in shown and "A course" not in shown
    titles = [p.text_content() for p in root.find_class("item-title")]
    assert titles == ["Item without a block heading", "A course"]


def test_date_ranges_are_compact() -> None:
    assert format_when(date(2023, 11, 20), date(2023, 11, 24)) == "Mon 20 – Fri 24 November 2023"
    assert format_when(date(2023, 11, 27), date(2023, 12, 1)) == (
        "Mon 27 November – Fri 1 December 2023"
    )
    assert format_when(date(2023, 12, 29), date(2024, 1, 2)) == (
        "Fri 29 December 2023 – Tue 2 January 2024"
    )
    same_day = format_when(datetime(2023, 11, 8, 9, 30), datetime(2023, 11, 8, 12))
    assert same_day == "Wednesday 8 November 2023, 09:30–12:00"


def test_add_to_calendar_never_starts_a_line_on_its_own(newsletter: Path) -> None:
    settings = load_settings(newsletter)
    html = render_sample(newsletter, load_issue(SAMPLE), settings).html
    root: Any = lxml_html.fromstring(html)
    links = [a for a in root.iter("a") if a.text_content() == "Add to calendar"]
    assert len(links) == 9
    for link in links:
        glued = link.getparent().getparent()  # the nowrap span holds the date's last word too
        assert "white-space:nowrap" in (glued.get("style") or "").replace(" ", "")
        assert glued.text and glued.text.strip()[-1].isdigit()  # the date's last word
        assert "·" not in (glued.getparent().text or "")  # the separator is inside


def test_the_preheader_is_hidden_without_same_colour_text_and_padded(newsletter: Path) -> None:
    html, _text = render_blocks(newsletter)
    root: Any = lxml_html.fromstring(html)
    (hidden,) = root.find_class("preheader")
    style = hidden.get("style") or ""
    assert "display:none" in style.replace(" ", "") and "color" not in style
    assert hidden.text_content().startswith("What's on\u034f\u200c\u00a0")


def test_the_archive_page_has_none_of_the_inbox_only_parts(newsletter: Path) -> None:
    shutil.copy(SAMPLE, newsletter / "issues")
    html, _text = render_blocks(newsletter, for_archive=True)
    assert "View this email in your browser" not in html
    assert "Unsubscribe" not in html and "You receive" not in html
    assert "preheader" not in html
    assert "Good morning colleague" not in html
    assert "Welcome to this issue, colleague: it is short." in html  # a sentence, kept
    assert "Northfield Safeguarding Partnership" in html  # who sends it stays
    email, _ = render_blocks(newsletter)
    assert "Good morning colleague" in email and "Unsubscribe" in email


def test_the_built_archive_uses_the_archive_rendering(newsletter: Path) -> None:
    shutil.copy(SAMPLE, newsletter / "issues")
    out = newsletter / "site"
    build_archive(newsletter, out, include_all=True, now=datetime(2023, 10, 21, tzinfo=UTC))
    page = (out / "2023-10-20-ld-newsletter.html").read_text(encoding="utf-8")
    assert "View this email in your browser" not in page and "Unsubscribe" not in page
    assert "Good morning colleague" not in page and "Add to calendar" in page


@pytest.mark.parametrize("primary", ["#1d4e89", "#b3261e", "#000000", "#ffcc00"])
def test_dark_mode_colours_reach_aa_on_the_dark_card(primary: str) -> None:
    palette = dark_palette({"primary_colour": primary, "accent_colour": primary})
    for name in ("text", "primary", "accent"):
        assert contrast(palette[name], DARK_CARD) >= 4.5, (name, palette[name])
    assert contrast(palette["muted"], palette["page"]) >= 4.5


def test_the_layout_declares_dark_mode_for_every_kind_of_client(newsletter: Path) -> None:
    settings = load_settings(newsletter)
    html = render_sample(newsletter, load_issue(SAMPLE), settings).html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert "[data-ogsc]" in html and "[data-ogsb]" in html  # Outlook.com, Outlook apps
