"""What the layout templates and the text part see: the issue with placeholders as tokens."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from markupsafe import Markup

from mailer.config import Settings
from mailer.ical import calendar_path
from mailer.issue import Issue
from mailer.markdown import markdown_to_html
from mailer.placeholders import PlaceholderTable

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
    """Return a date or a range, without repeating the day for a same-day time range."""
    if end is None:
        return format_date(start)
    if isinstance(start, datetime) and isinstance(end, datetime) and start.date() == end.date():
        return f"{format_date(start)} to {end:%H:%M}"
    return f"{format_date(start)} to {format_date(end)}"


def issue_views(
    issue: Issue,
    table: PlaceholderTable,
    *,
    stem: str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Return one dict per block: text tokenised, Markdown as HTML, dates formatted.

    Items of dates and courses blocks get `calendar_url`: their .ics file in the web archive
    (see mailer/archive.py), or None without a date, a stem or an archive URL.
    """
    views = []
    for block_index, block in enumerate(issue.blocks):
        view = _view(_tokenise(block.model_dump(), table))
        if view["type"] in ("dates", "courses"):
            for item_index, item in enumerate(view["items"]):
                dated = item["date"] is not None
                item["calendar_url"] = _calendar_url(settings, stem, block_index, item_index, dated)
        views.append(view)
    return views


def _calendar_url(
    settings: Settings | None, stem: str | None, block_index: int, item_index: int, dated: bool
) -> str | None:
    """Return the item's .ics in the archive: the same path mailer.archive writes it to."""
    if settings is None or settings.archive_url is None or stem is None or not dated:
        return None
    return settings.archive_url.rstrip("/") + "/" + calendar_path(stem, block_index, item_index)


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
    if "body" in data:
        body = data["body"]
        view["body_html"] = Markup(_shift_headings(markdown_to_html(body))) if body else None
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
