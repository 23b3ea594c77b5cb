"""What the layout templates and the text part see: the issue with placeholders as tokens."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlencode

from markupsafe import Markup

from mailer.folder import Newsletter
from mailer.issue import (
    CourseItem,
    DatedItem,
    LoadedIssue,
    Personalisable,
    PlaceholderTable,
    markdown_to_html,
)

# Previews, checks, the archive and calendar links show what a recipient with only an
# address sees: every default() applies, and nothing personal leaves the message.
SAMPLE_RECIPIENT = {"email": "recipient@example.org"}
# Google Calendar's "add event" page: a plain https link every mail client keeps, which
# needs no file and no hosting (Outlook's deep links are undocumented and differ between
# work and personal accounts; Apple has none). See "Add to calendar" in the README.
GOOGLE_CALENDAR = "https://calendar.google.com/calendar/render"
CalendarForm = Literal["ics", "google"]

_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def format_date(value: date | datetime) -> str:
    """Return 'Friday 20 October 2023' (and ', 09:30' for a time), independent of the locale."""
    text = f"{_DAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1]} {value.year}"
    if isinstance(value, datetime):
        text += f", {value:%H:%M}"
    return text


def format_when(start: date | datetime, end: date | datetime | None) -> str:
    """Return a date or a compact range: 'Mon 20 - Fri 24 November 2023' (an en dash).

    A range says each part once: the month and year only where they change, the day once
    for a same-day time range.
    """
    if end is None:
        return format_date(start)
    if isinstance(start, datetime) and isinstance(end, datetime) and start.date() == end.date():
        return f"{format_date(start.date())}, {start:%H:%M}\u2013{end:%H:%M}"
    first, last = _short_day(start), _short_day(end)
    if start.month != end.month or start.year != end.year or isinstance(start, datetime):
        first += f" {_MONTHS[start.month - 1]}"
    if start.year != end.year:
        first += f" {start.year}"
    first += f", {start:%H:%M}" if isinstance(start, datetime) else ""
    last += f" {_MONTHS[end.month - 1]} {end.year}"
    last += f", {end:%H:%M}" if isinstance(end, datetime) else ""
    return f"{first} \u2013 {last}"


def _short_day(value: date | datetime) -> str:
    return f"{_DAYS[value.weekday()][:3]} {value.day}"


def issue_views(
    loaded: LoadedIssue, table: PlaceholderTable, newsletter: Newsletter
) -> list[dict[str, Any]]:
    """Return one dict per block: text tokenised, Markdown as HTML, dates formatted.

    Items of dates and courses blocks get `calendar_url`: their .ics file in the published
    archive, or else a Google Calendar "add event" link; None without a date.
    """
    views = [_view(_tokenise(block.model_dump(), table)) for block in loaded.issue.blocks]
    for item in (item for view in views for item in view.get("items", ()) if "date" in item):
        item["calendar_url"] = None
    for dated in loaded.issue.dated_items():
        item = views[dated.block_index]["items"][dated.item_index]
        ics = newsletter.calendar_url(loaded.stem, dated.block_index, dated.item_index)
        item["calendar_url"] = ics or google_calendar_url(loaded, dated, newsletter)
    return views


def calendar_form(newsletter: Newsletter, loaded: LoadedIssue) -> CalendarForm | None:
    """Say how the email's "Add to calendar" links work, or None when nothing is dated."""
    if not loaded.issue.dated_items():
        return None
    return "ics" if newsletter.view_url(loaded.stem) is not None else "google"


def google_calendar_url(loaded: LoadedIssue, dated: DatedItem, newsletter: Newsletter) -> str:
    """Return a Google Calendar "add event" link for a dated item (placeholders: defaults)."""
    item, settings = dated.item, newsletter.settings
    url = _sample(item.url) if item.url else None
    details = [f"{_sample(item.button)}: {url}" if isinstance(item, CourseItem) else url]
    details.append(f"In {_sample(loaded.issue.subject)}")
    start, end = dated.start, dated.end
    if isinstance(start, datetime):  # local times, in the newsletter's zone (ctz)
        if end is None:
            finish = start  # as in the .ics: no length is invented
        elif isinstance(end, datetime):
            finish = end
        else:
            finish = datetime.combine(end, time()) + timedelta(days=1)
        dates = f"{start:%Y%m%dT%H%M%S}/{finish:%Y%m%dT%H%M%S}"
    else:  # all day: the end is exclusive, the day after the last
        last = start if end is None else (end.date() if isinstance(end, datetime) else end)
        dates = f"{start:%Y%m%d}/{last + timedelta(days=1):%Y%m%d}"
    query = [("action", "TEMPLATE"), ("text", _sample(item.title)), ("dates", dates)]
    if isinstance(start, datetime):
        query.append(("ctz", settings.timezone))
    query.append(("details", "\n\n".join(line for line in details if line)))
    return f"{GOOGLE_CALENDAR}?{urlencode(query, safe=':/', quote_via=quote)}"


def _sample(text: str) -> str:
    """Fill placeholders as for a recipient with no personal data: defaults apply."""
    table = PlaceholderTable()
    tokens = table.tokenise(text)
    return Personalisable.split(tokens).fill(table.evaluate(SAMPLE_RECIPIENT, {}), escape=False)


def _tokenise(value: Any, table: PlaceholderTable) -> Any:
    if isinstance(value, str):
        return table.tokenise(value)
    if isinstance(value, dict):
        return {key: _tokenise(item, table) for key, item in value.items()}
    if isinstance(value, list):
        return [_tokenise(item, table) for item in value]
    return value


def _view(data: dict[str, Any]) -> dict[str, Any]:
    view = dict(data)
    for key in ("body", "intro"):  # Markdown fields: intro on dates, news and courses
        if key in data:
            text = data[key]
            html = Markup(_shift_headings(markdown_to_html(text))) if text else None
            view[f"{key}_html"] = html
    if "items" in data:
        view["items"] = [_view(item) for item in data["items"]]
    if "date" in data:
        view["when"] = format_when(data["date"], data.get("end")) if data["date"] else None
    return view


def _shift_headings(html: str) -> str:
    """Make body headings h3 or lower: h1 is the issue, h2 the block heading."""
    return re.sub(
        r"<(/?)h([1-6])>", lambda m: f"<{m.group(1)}h{min(max(int(m.group(2)) + 1, 3), 6)}>", html
    )
