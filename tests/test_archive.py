"""The web archive: which issues it holds, its pages, its Atom feed and its calendar files."""

from __future__ import annotations

import re
import shutil
from calendar import timegm
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import feedparser
import icalendar
import pytest

from mailer.checks import archive_warnings
from mailer.compose import compose_issue
from mailer.errors import MailerError
from mailer.folder import LEDGER_FILE, load_settings, view_url
from mailer.issue import load_issue
from mailer.ledger import Ledger
from mailer.publish import MANIFEST_FILE, build_archive
from mailer.publish.calendar import Event, event_calendar, fold
from tests.conftest import REPO_DIR

SAMPLE = REPO_DIR / "issues" / "2023-10-20-ld-newsletter.yaml"
OTHER = REPO_DIR / "tests" / "fixtures" / "other-issue.yaml"
NOW = datetime(2023, 11, 20, 12, 0, tzinfo=UTC)
ARCHIVE_URL = "https://northfield-safeguarding.example/newsletter/archive"
LONDON = "Europe/London"

# Due on 1 December (after NOW): a summer time event, one across the new year, a placeholder.
WINTER = """subject: "L&D Newsletter, issue 14"
preheader: "Winter dates; a course for {{ recipient.first_name | default('you') }}"
date: 2023-12-01
number: 14
send_at: 2023-12-01T09:00:00+00:00
blocks:
  - type: dates
    heading: Save the date
    items:
      - title: "Annual conference, Northfield Civic Centre; all welcome"
        date: 2024-06-12T14:00
        end: 2024-06-12T16:30
        url: https://northfield-safeguarding.example/conference
      - title: Offices closed
        date: 2023-12-27
        end: 2024-01-02
  - type: courses
    heading: Courses
    items:
      - title: Trauma-informed practice
        date: 2024-01-10T09:30
        body: |
          A **full day**, for {{ recipient.first_name | default("colleague") }} and your team.
          See the [handbook](https://northfield-safeguarding.example/handbook).
        url: "https://northfield-safeguarding.example/training/trauma?for={{
          recipient.team | default('all staff') }}"
      - title: Recorded webinar (no date)
        url: https://northfield-safeguarding.example/training/webinar
"""

DRAFT = """subject: "L&D Newsletter, special edition"
date: 2023-11-10
blocks:
  - type: text
    heading: A draft with no send_at
    body: Sent by hand, when it is ready.
"""

SAMPLE_STEM = SAMPLE.stem
OTHER_STEM = "2023-11-17-ld-newsletter"
WINTER_STEM = "2023-12-01-ld-newsletter"
DRAFT_STEM = "2023-11-10-special"


@pytest.fixture
def folder(newsletter: Path) -> Path:
    """Return a newsletter folder with four issues: two due, one due later, one draft.

    The archive is published (publish_dir), so the email links to its pages and calendars.
    """
    publish_to(newsletter, newsletter / "public")
    issues = newsletter / "issues"
    shutil.copy(SAMPLE, issues / SAMPLE.name)
    shutil.copy(OTHER, issues / f"{OTHER_STEM}.yaml")
    (issues / f"{WINTER_STEM}.yaml").write_text(WINTER, encoding="utf-8")
    (issues / f"{DRAFT_STEM}.yaml").write_text(DRAFT, encoding="utf-8")
    return newsletter


def build(folder: Path, **options: bool) -> Path:
    """Build the archive into folder/build/archive at NOW and return its folder."""
    out_dir = folder / "build" / "archive"
    build_archive(folder, out_dir, now=NOW, **options)
    return out_dir


def mark_sent(folder: Path, stem: str) -> None:
    """Record in the ledger that the issue was delivered to one recipient."""
    with Ledger.open(folder) as ledger:
        ledger.start_issue(stem, "hash", NOW)
        ledger.add_pending(stem, [("a@example.org", "a@example.org", "<1@example.org>")], NOW)
        ledger.mark_sending(stem, "a@example.org", NOW)
        ledger.mark_sent(stem, "a@example.org", 250, "OK", NOW)
        ledger.mark_finished(stem, NOW)


def set_archive_url(folder: Path, url: str | None) -> None:
    """Change (or remove) archive_url in the folder's mailer.toml."""
    path = folder / "mailer.toml"
    line = f'archive_url = "{url}"\n' if url else ""
    path.write_text(re.sub(r"(?m)^archive_url = .*\n", line, path.read_text(encoding="utf-8")))


def publish_to(folder: Path, publish_dir: Path | None) -> None:
    """Set (or, with None, leave out) [archive] publish_dir in the folder's mailer.toml."""
    path = folder / "mailer.toml"
    line = f'publish_dir = "{publish_dir}"\n' if publish_dir else '# publish_dir = "x"\n'
    text = re.sub(r"(?m)^#? ?publish_dir = .*\n", line, path.read_text(encoding="utf-8"))
    path.write_text(text, encoding="utf-8")


def links(page: str) -> list[str]:
    """Return every href and src of an HTML page, in order."""
    return re.findall(r'(?:href|src)="([^"]*)"', page)


# Which issues


def test_issues_sent_or_due_are_in_newest_first_and_the_rest_skipped(folder: Path) -> None:
    report = build_archive(folder, folder / "out", now=NOW)
    assert report.issues == [OTHER_STEM, SAMPLE_STEM]
    assert sorted(report.skipped) == sorted([WINTER_STEM, DRAFT_STEM])
    assert sorted(p.name for p in (folder / "out").glob("*.html")) == sorted(
        ["index.html", f"{OTHER_STEM}.html", f"{SAMPLE_STEM}.html"]
    )
    assert not (folder / LEDGER_FILE).exists(), "no ledger means nothing sent; none is created"


def test_a_send_at_that_has_passed_includes_the_issue(folder: Path) -> None:
    later = datetime(2023, 12, 1, 9, 0, tzinfo=UTC)
    report = build_archive(folder, folder / "out", now=later)
    assert report.issues == [WINTER_STEM, OTHER_STEM, SAMPLE_STEM]


def test_an_issue_the_ledger_says_was_sent_is_included_without_send_at(folder: Path) -> None:
    mark_sent(folder, DRAFT_STEM)
    report = build_archive(folder, folder / "out", now=NOW)
    assert report.issues == [OTHER_STEM, DRAFT_STEM, SAMPLE_STEM]
    assert report.skipped == [WINTER_STEM]


def test_all_includes_every_issue(folder: Path) -> None:
    report = build_archive(folder, folder / "out", include_all=True, now=NOW)
    assert report.issues == [WINTER_STEM, OTHER_STEM, DRAFT_STEM, SAMPLE_STEM]
    assert report.skipped == []


def test_invalid_issues_are_reported_naming_every_problem_and_the_rest_is_built(
    folder: Path,
) -> None:
    (folder / "issues" / "bad-1.yaml").write_text("subject: x\ndate: soon\nblocks: []\n")
    (folder / "issues" / "bad-2.yaml").write_text("date: 2023-10-20\nblocks: [{type: nope}]\n")
    report = build_archive(folder, folder / "out", now=NOW)
    places = {problem.path for error in report.invalid for problem in error.problems}
    assert places == {"issues/bad-1.yaml", "issues/bad-2.yaml"}
    assert report.issues == [OTHER_STEM, SAMPLE_STEM]
    assert (folder / "out" / f"{SAMPLE_STEM}.html").is_file()


# The pages


def test_the_index_lists_date_number_subject_and_preheader_with_relative_links(
    folder: Path,
) -> None:
    index = (build(folder) / "index.html").read_text(encoding="utf-8")
    pages = [link for link in links(index) if link.endswith(".html")]
    assert pages == [f"{OTHER_STEM}.html", f"{SAMPLE_STEM}.html"]
    assert "Friday 17 November 2023" in index and "Issue 13" in index
    assert "L&amp;D Newsletter, issue 12" in index
    assert "Neglect: spotting the signs, dates for your diary" in index
    assert all(not urlsplit(link).scheme for link in links(index))


def test_an_issue_page_is_the_email_without_personal_data(folder: Path) -> None:
    out_dir = build(folder)
    page = (out_dir / f"{SAMPLE_STEM}.html").read_text(encoding="utf-8")
    assert "<h1" in page and "L&amp;D Newsletter, issue 12</h1>" in page
    assert 'href="index.html"' in page
    # The archive page leaves out what only an inbox needs (issue 14): the greeting line
    # ("Good morning colleague,") and the unsubscribe link; the sample's text stays.
    assert "Good morning colleague," not in page and "Welcome to issue 12" in page
    settings = load_settings(folder)
    assert f'href="{settings.unsubscribe_url}"' not in page
    assert "MAILERPH" not in page and "{{" not in page and "mailer.invalid" not in page


def test_every_relative_link_in_the_archive_names_a_file_it_holds(folder: Path) -> None:
    out_dir = build(folder, include_all=True)
    for page_path in out_dir.glob("*.html"):
        for link in links(page_path.read_text(encoding="utf-8")):
            parts = urlsplit(link)
            if parts.scheme or link.startswith("#"):
                assert not link.startswith(ARCHIVE_URL), f"{page_path.name}: absolute {link}"
                continue
            target = out_dir / unquote(parts.path)
            assert target.is_file(), f"{page_path.name}: {link} leads nowhere"


def test_the_email_links_to_its_page_and_calendar_files_where_the_archive_puts_them(
    folder: Path,
) -> None:
    out_dir = build(folder)
    composed = compose_issue(folder, folder / "issues" / SAMPLE.name, folder / "build")
    email = composed.html_path.read_text(encoding="utf-8")
    text = composed.text_path.read_text(encoding="utf-8")
    page = view_url(load_settings(folder), SAMPLE_STEM)
    assert page is not None and page in email and page in text
    calendar = re.findall(r'href="([^"]+\.ics)"', email)
    assert len(calendar) == 9  # five dates and four courses
    assert re.findall(r"Add to calendar: (\S+)", text) == calendar
    for url in [page, *calendar]:
        assert url.startswith(ARCHIVE_URL + "/")
        assert (out_dir / url.removeprefix(ARCHIVE_URL + "/")).is_file(), url


@pytest.mark.parametrize("unpublished", ["no archive_url", "no publishing"])
def test_without_a_published_archive_the_email_links_no_archive_file(
    folder: Path, unpublished: str
) -> None:
    if unpublished == "no archive_url":
        set_archive_url(folder, None)
    else:
        publish_to(folder, None)
    composed = compose_issue(folder, folder / "issues" / SAMPLE.name, folder / "build")
    email = composed.html_path.read_text(encoding="utf-8")
    text = composed.text_path.read_text(encoding="utf-8")
    assert ".ics" not in email + text and "newsletter/archive/" not in email + text
    assert "View this email in your browser" not in email + text
    calendar = re.findall(r"Add to calendar: (\S+)", text)
    assert len(calendar) == 9 and all("calendar.google.com" in url for url in calendar)


def test_a_rebuild_removes_what_it_no_longer_holds_and_keeps_other_files(folder: Path) -> None:
    out_dir = build(folder, include_all=True)
    (out_dir / "robots.txt").write_text("User-agent: *\n")
    assert (out_dir / f"{WINTER_STEM}.html").is_file()
    build(folder)
    assert not (out_dir / f"{WINTER_STEM}.html").exists()
    assert not list((out_dir / "calendar").glob(f"{WINTER_STEM}-*.ics"))
    assert (out_dir / "robots.txt").is_file()
    assert f"{SAMPLE_STEM}.html" in (out_dir / MANIFEST_FILE).read_text()


def test_a_folder_with_other_files_is_not_overwritten(folder: Path) -> None:
    out_dir = folder / "site"
    out_dir.mkdir()
    (out_dir / "index.html").write_text("the intranet's own page")
    with pytest.raises(MailerError, match="not empty"):
        build_archive(folder, out_dir, now=NOW)
    assert (out_dir / "index.html").read_text() == "the intranet's own page"


# The feed


def test_the_feed_parses_with_stable_ids_and_absolute_links(folder: Path) -> None:
    first = feedparser.parse((build(folder) / "feed.xml").read_bytes())
    assert first.bozo == 0, first.get("bozo_exception")
    assert first.version == "atom10"
    assert first.feed.title == "L&D Newsletter"
    titles = [entry.title for entry in first.entries]
    assert titles == ["L&D Newsletter, issue 13", "L&D Newsletter, issue 12"]
    assert [entry.link for entry in first.entries] == [
        f"{ARCHIVE_URL}/{OTHER_STEM}.html",
        f"{ARCHIVE_URL}/{SAMPLE_STEM}.html",
    ]
    sample = first.entries[1]
    assert sample.summary.startswith("Neglect: spotting the signs")
    updated = datetime.fromtimestamp(timegm(sample.updated_parsed), UTC)
    assert updated == datetime(2023, 10, 20, 8, 0, tzinfo=UTC)  # send_at, 09:00 BST
    ids = [entry.id for entry in first.entries]
    assert len(set(ids)) == 2
    again = feedparser.parse((build(folder, include_all=True) / "feed.xml").read_bytes())
    assert {e.title: e.id for e in again.entries}["L&D Newsletter, issue 12"] == ids[1]


def test_without_an_archive_url_the_feed_links_are_relative(folder: Path) -> None:
    set_archive_url(folder, None)
    feed = (build(folder) / "feed.xml").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"]+)"', feed)
    assert hrefs == ["feed.xml", "index.html", f"{OTHER_STEM}.html", f"{SAMPLE_STEM}.html"]
    assert feedparser.parse(feed).bozo == 0


# The calendar files


def calendars(out_dir: Path) -> dict[str, icalendar.Calendar]:
    """Parse every .ics of the archive with the icalendar library."""
    return {
        path.name: icalendar.Calendar.from_ical(path.read_bytes())
        for path in sorted((out_dir / "calendar").glob("*.ics"))
    }


def event_of(calendar: icalendar.Calendar) -> icalendar.Event:
    """Return the only event of a calendar."""
    (event,) = calendar.walk("VEVENT")
    assert isinstance(event, icalendar.Event)
    return event


def test_every_dated_item_has_a_calendar_file(folder: Path) -> None:
    report = build_archive(folder, folder / "out", include_all=True, now=NOW)
    found = calendars(folder / "out")
    assert report.calendar_files == len(found) == 9 + 4 + 3
    assert f"{WINTER_STEM}-1-1.ics" not in found  # the course without a date


def test_all_day_items_end_the_day_after_their_last_day(folder: Path) -> None:
    found = calendars(build(folder, include_all=True))
    one_day = event_of(found[f"{SAMPLE_STEM}-1-0.ics"])
    assert one_day.decoded("DTSTART") == date(2023, 11, 2)
    assert one_day.decoded("DTEND") == date(2023, 11, 3)
    week = event_of(found[f"{SAMPLE_STEM}-1-2.ics"])
    assert (week.decoded("DTSTART"), week.decoded("DTEND")) == (
        date(2023, 11, 13),
        date(2023, 11, 18),
    )
    new_year = event_of(found[f"{WINTER_STEM}-0-1.ics"])
    assert (new_year.decoded("DTSTART"), new_year.decoded("DTEND")) == (
        date(2023, 12, 27),
        date(2024, 1, 3),
    )
    assert not found[f"{SAMPLE_STEM}-1-0.ics"].walk("VTIMEZONE")


def test_timed_items_carry_the_newsletters_time_zone(folder: Path) -> None:
    found = calendars(build(folder, include_all=True))
    forum = event_of(found[f"{SAMPLE_STEM}-1-1.ics"])
    assert forum["DTSTART"].params["TZID"] == LONDON
    start, end = forum.decoded("DTSTART"), forum.decoded("DTEND")
    assert start.tzinfo is not None and str(start.tzinfo) == LONDON
    assert start.astimezone(UTC) == datetime(2023, 11, 8, 9, 30, tzinfo=UTC)  # GMT
    assert end - start == timedelta(hours=2, minutes=30)
    summer = found[f"{WINTER_STEM}-0-0.ics"]
    conference = event_of(summer)
    assert conference.decoded("DTSTART").astimezone(UTC) == datetime(2024, 6, 12, 13, 0, tzinfo=UTC)
    course = event_of(found[f"{SAMPLE_STEM}-6-0.ics"])
    assert course.decoded("DTSTART").astimezone(UTC) == datetime(2023, 11, 7, 9, 30, tzinfo=UTC)
    assert "DTEND" not in course  # a course has a start only: no length is invented


def test_the_vtimezone_agrees_with_the_zoneinfo_database(folder: Path) -> None:
    found = calendars(build(folder, include_all=True))
    (zone,) = found[f"{WINTER_STEM}-0-0.ics"].walk("VTIMEZONE")
    assert isinstance(zone, icalendar.Timezone) and zone["TZID"] == LONDON
    own = zone.to_tz(lookup_tzid=False)  # built from our VTIMEZONE, not looked up by name
    for local, hours in [(datetime(2024, 1, 15, 12), 0), (datetime(2024, 6, 12, 14), 1)]:
        offset = own.utcoffset(local)
        assert offset == timedelta(hours=hours), (local, offset)


def test_text_is_escaped_and_placeholders_filled(folder: Path) -> None:
    found = calendars(build(folder, include_all=True))
    conference = event_of(found[f"{WINTER_STEM}-0-0.ics"])
    assert str(conference["SUMMARY"]) == "Annual conference, Northfield Civic Centre; all welcome"
    assert str(conference["URL"]) == "https://northfield-safeguarding.example/conference"
    course = event_of(found[f"{WINTER_STEM}-1-0.ics"])
    description = str(course["DESCRIPTION"])
    assert description.startswith("A full day, for colleague and your team.")
    assert "handbook (https://northfield-safeguarding.example/handbook)" in description
    booking = "https://northfield-safeguarding.example/training/trauma?for=all staff"
    assert f"Book a place: {booking}" in description
    assert str(course["URL"]) == booking.replace(" ", "%20")  # a URI holds no space
    assert f"{ARCHIVE_URL}/{WINTER_STEM}.html" in description
    assert "**" not in description and "MAILERPH" not in description


def test_uids_are_unique_and_stable_across_builds(folder: Path) -> None:
    first = {name: event_of(cal) for name, cal in calendars(build(folder)).items()}
    build_archive(folder, folder / "build" / "archive", now=NOW + timedelta(days=3))
    second = {name: event_of(cal) for name, cal in calendars(folder / "build" / "archive").items()}
    uids = {name: str(event["UID"]) for name, event in first.items()}
    assert uids == {name: str(event["UID"]) for name, event in second.items()}
    assert len(set(uids.values())) == len(uids)
    assert uids[f"{SAMPLE_STEM}-1-1.ics"] == (
        f"{SAMPLE_STEM}-1-1@ld-newsletter.northfield-safeguarding.example"
    )
    stamps = {event.decoded("DTSTAMP") for event in second.values()}
    assert stamps == {NOW + timedelta(days=3)}


def test_files_use_crlf_and_fold_lines_at_75_octets(folder: Path) -> None:
    for path in (build(folder, include_all=True) / "calendar").glob("*.ics"):
        data = path.read_bytes()
        assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
        lines = data.split(b"\r\n")[:-1]
        assert max(len(line) for line in lines) <= 75, path.name


def test_folding_never_splits_a_character_and_unfolds_to_the_original() -> None:
    line = "DESCRIPTION:" + "Zoë's café ☕ " * 20
    folded = fold(line)
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line
    event = Event(uid="u@example.org", summary="é" * 100, start=date(2024, 2, 29))
    text = event_calendar(event, zone=ZoneInfo(LONDON), stamp=NOW, product="-//test//EN")
    assert str(event_of(icalendar.Calendar.from_ical(text))["SUMMARY"]) == "é" * 100


# Warnings for compose and check


def test_no_warning_for_an_issue_the_archive_will_publish(folder: Path) -> None:
    settings = load_settings(folder)
    for name in (SAMPLE.name, f"{WINTER_STEM}.yaml"):
        assert archive_warnings(folder, load_issue(folder / "issues" / name), settings) == []


def test_a_draft_without_send_at_does_not_warn_as_its_send_publishes_it(folder: Path) -> None:
    settings = load_settings(folder)
    draft = load_issue(folder / "issues" / f"{DRAFT_STEM}.yaml")
    assert archive_warnings(folder, draft, settings) == []


def test_an_issue_outside_issues_warns(folder: Path) -> None:
    settings = load_settings(folder)
    (warning,) = archive_warnings(folder, load_issue(OTHER), settings)
    assert "only issues/*.yaml" in str(warning)


def test_an_archive_url_that_is_a_page_warns(folder: Path) -> None:
    settings = load_settings(folder).model_copy(
        update={"archive_url": "https://example.org/news/index.html"}
    )
    (warning,) = archive_warnings(folder, load_issue(folder / "issues" / SAMPLE.name), settings)
    assert warning.path == "mailer.toml" and warning.where == "archive_url"
    assert "index.html/2023-10-20-ld-newsletter.html" in str(warning)


def test_a_file_name_a_link_cannot_carry_warns(folder: Path) -> None:
    odd = folder / "issues" / "issue #15.yaml"
    shutil.copy(SAMPLE, odd)
    (warning,) = archive_warnings(folder, load_issue(odd), load_settings(folder))
    assert "rename the file" in str(warning)


def test_no_archive_url_means_no_warnings(folder: Path) -> None:
    settings = load_settings(folder).model_copy(update={"archive_url": None})
    draft = load_issue(folder / "issues" / f"{DRAFT_STEM}.yaml")
    assert archive_warnings(folder, draft, settings) == []
