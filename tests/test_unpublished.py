"""An archive nothing publishes: the email links none of it, and `mailer check` says so.

Calendar entries then open Google Calendar's "add event" page, built from the item alone.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from mailer.checks import check_issue, has_errors
from mailer.compose import compose_issue
from tests.conftest import REPO_DIR
from tests.sending import cli

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
ARCHIVE = "https://northfield-safeguarding.example/newsletter/archive"
ISSUE = """subject: "Winter {{ recipient.first_name | default('dates') }}"
date: 2023-12-01
{send_at}blocks:
  - type: text
    body: "Last month's issue is [in the archive]({archive}/2023-11-01.html)."
  - type: dates
    items:
      - title: "Conference for {{ recipient.team | default('all staff') }}"
        date: 2024-06-12T14:00
        end: 2024-06-12T16:30
        url: https://northfield-safeguarding.example/conference
      - title: Offices closed
        date: 2023-12-27
        end: 2024-01-02
  - type: courses
    items:
      - title: Trauma-informed practice
        date: 2024-01-10T09:30
        url: https://northfield-safeguarding.example/training/trauma
"""


def write_issue(folder: Path, *, scheduled: bool, archive_link: bool = True) -> Path:
    """Write issues/winter.yaml: dated items, and (if asked) a link into the archive."""
    send_at = "send_at: 2023-12-01T09:00:00+00:00\n" if scheduled else ""
    text = ISSUE.replace("{send_at}", send_at).replace("{archive}", ARCHIVE)
    if not archive_link:
        text = text.replace(f"({ARCHIVE}/2023-11-01.html)", "(https://example.org/past)")
    path = folder / "issues" / "winter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def set_setting(folder: Path, old: str, new: str) -> None:
    path = folder / "mailer.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def google_links(text: str) -> list[dict[str, list[str]]]:
    """Return the query of every "Add to calendar" link of a text part."""
    found = []
    for url in re.findall(r"Add to calendar: (\S+)", text):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
            "https://calendar.google.com/calendar/render"
        )
        found.append(parse_qs(parts.query))
    return found


def test_calendar_links_open_google_calendar_with_the_items_own_dates(newsletter: Path) -> None:
    composed = compose_issue(newsletter, write_issue(newsletter, scheduled=True), newsletter)
    conference, closed, course = google_links(composed.text_path.read_text(encoding="utf-8"))
    assert conference["action"] == ["TEMPLATE"]
    assert conference["text"] == ["Conference for all staff"]  # defaults, nothing personal
    assert conference["dates"] == ["20240612T140000/20240612T163000"]
    assert conference["ctz"] == ["Europe/London"]  # local times in the newsletter's zone
    assert conference["details"] == [
        "https://northfield-safeguarding.example/conference\n\nIn Winter dates"
    ]
    assert closed["dates"] == ["20231227/20240103"] and "ctz" not in closed  # end exclusive
    assert course["dates"] == ["20240110T093000/20240110T093000"]  # no invented length
    assert course["details"][0].startswith(
        "Book a place: https://northfield-safeguarding.example/training/trauma"
    )
    html = composed.html_path.read_text(encoding="utf-8")
    assert html.count('href="https://calendar.google.com/calendar/render?') == 3
    assert "View this email in your browser" not in html and ".ics" not in html


def test_a_published_archive_gives_ics_links_and_a_view_in_browser_link(
    newsletter: Path,
) -> None:
    set_setting(newsletter, "# publish_dir = ", "publish_dir = ")
    composed = compose_issue(newsletter, write_issue(newsletter, scheduled=True), newsletter)
    text = composed.text_path.read_text(encoding="utf-8")
    assert text.startswith(f"View this email in your browser: {ARCHIVE}/winter.html")
    assert re.findall(r"Add to calendar: (\S+)", text) == [
        f"{ARCHIVE}/calendar/winter-1-0.ics",
        f"{ARCHIVE}/calendar/winter-1-1.ics",
        f"{ARCHIVE}/calendar/winter-2-0.ics",
    ]


def test_check_says_the_calendar_links_open_google_calendar(newsletter: Path) -> None:
    path = write_issue(newsletter, scheduled=False, archive_link=False)
    findings = check_issue(newsletter, path)
    (calendar,) = [f for f in findings if f.check == "archive"]
    assert calendar.severity == "warning"
    assert calendar.where.startswith("mailer.toml: archive.publish_dir")
    assert 'the 3 "Add to calendar" link(s) open Google Calendar' in calendar.message
    assert "publish_dir or publish_command" in calendar.hint
    set_setting(newsletter, "# publish_dir = ", "publish_dir = ")
    assert [f for f in check_issue(newsletter, path) if f.check == "archive"] == []


def test_a_scheduled_issue_linking_into_an_unpublished_archive_is_an_error(
    newsletter: Path,
) -> None:
    path = write_issue(newsletter, scheduled=True)
    findings = check_issue(newsletter, path)
    assert has_errors(findings)
    error = findings[0]
    assert (error.severity, error.check) == ("error", "archive")
    assert error.where.startswith("issues/winter.yaml:6") and "blocks[0].body" in error.where
    assert f'"{ARCHIVE}/2023-11-01.html" is in the archive' in error.message
    assert "nothing publishes" in error.message
    assert "publish_dir or publish_command" in error.hint
    code, out, _err = cli("check", "issues/winter.yaml")
    assert code == 1 and "error (archive)" in out
    # Sent by hand, it may be published by hand: a warning. Published: nothing to say.
    path = write_issue(newsletter, scheduled=False)
    assert [f.severity for f in check_issue(newsletter, path) if "is in the archive" in f.message]
    assert not has_errors(check_issue(newsletter, path))
    set_setting(newsletter, "# publish_command = ", "publish_command = ")
    findings = check_issue(newsletter, write_issue(newsletter, scheduled=True))
    assert [f for f in findings if f.check == "archive"] == []


def test_a_published_archive_without_archive_url_warns_it_cannot_be_linked(
    newsletter: Path,
) -> None:
    set_setting(newsletter, "# publish_dir = ", "publish_dir = ")
    text = (newsletter / "mailer.toml").read_text(encoding="utf-8")
    (newsletter / "mailer.toml").write_text(
        re.sub(r"(?m)^archive_url = .*\n", "", text), encoding="utf-8"
    )
    shutil.copy(SAMPLE, newsletter / "issues" / SAMPLE.name)
    findings = check_issue(newsletter, newsletter / "issues" / SAMPLE.name)
    messages = [f.message for f in findings if f.check == "archive"]
    assert any("cannot link to it without archive_url" in m for m in messages)
    assert any("open Google Calendar" in m for m in messages)
