"""Calendar files (RFC 5545): one event per dated item, in the newsletter's time zone.

Written by hand rather than with a library: one VEVENT, and a VTIMEZONE generated from the
zoneinfo database for the years the event touches, is a few dozen well-specified lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from mailer.config import Settings
from mailer.folder import calendar_path
from mailer.issue import CourseItem, LoadedIssue, Personalisable, PlaceholderTable, markdown_to_text

_LINE_OCTETS = 75  # RFC 5545 3.1: fold lines longer than 75 octets, excluding the CRLF
_CRLF = "\r\n"
_URI_SAFE = "%:/?#[]@!$&'()*+,;=~"  # RFC 3986 reserved and escapes: kept as they are
_PARAM_UNSAFE = re.compile(r'[;:,"\x00-\x1f\x7f]')


@dataclass(frozen=True)
class Event:
    """One event: a date (all day) or a naive datetime (local time in the calendar's zone)."""

    uid: str
    summary: str
    start: date | datetime
    end: date | datetime | None = None
    description: str = ""
    url: str | None = None


def issue_events(
    loaded: LoadedIssue, settings: Settings, recipient: Mapping[str, str], page_url: str | None
) -> list[tuple[str, Event]]:
    """Return (path, event) for every dated item of the issue's dates and courses blocks.

    Placeholders take the recipient's values (the archive passes one with no personal data).
    The UID is the item's position (stem, block, item) under the list id, so a re-publish, or
    an edited title or date, updates the event in a calendar rather than adding a second one.
    """

    def fill(text: str, *, markdown: bool = False) -> str:
        table = PlaceholderTable()
        tokens = table.tokenise(text)
        if markdown:
            tokens = markdown_to_text(tokens, width=10_000).strip()
        return Personalisable.split(tokens).fill(table.evaluate(recipient, {}), escape=False)

    source = f"In {fill(loaded.issue.subject)}" + (f": {page_url}" if page_url else "")
    events = []
    for dated in loaded.issue.dated_items():
        item = dated.item
        url = fill(item.url) if item.url else None  # placeholders take their defaults
        if isinstance(item, CourseItem):
            details = [fill(item.body, markdown=True)] if item.body else []
            details.append(f"{fill(item.button)}: {url}")
        else:
            details = [url] if url else []
        event = Event(
            uid=f"{loaded.stem}-{dated.block_index}-{dated.item_index}@{settings.list_id}",
            summary=fill(item.title),
            start=dated.start,
            end=dated.end,
            description="\n\n".join([*details, source]),
            url=url,
        )
        events.append((calendar_path(loaded.stem, dated.block_index, dated.item_index), event))
    return events


def event_calendar(event: Event, *, zone: ZoneInfo, stamp: datetime, product: str) -> str:
    """Return a VCALENDAR holding the event, with CRLF line ends and long lines folded."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{escape_text(product)}",
        "CALSCALE:GREGORIAN",
    ]
    when = _when(event, zone)
    if when.timed:
        lines += vtimezone(zone, when.first_year, when.last_year)
    lines += [
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{stamp.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        *when.lines,
        f"SUMMARY:{escape_text(event.summary)}",
    ]
    if event.description:
        lines.append(f"DESCRIPTION:{escape_text(event.description)}")
    if event.url:
        # A URI value: not TEXT, so not escaped (3.3.13); but a filled placeholder may have
        # brought a space or a brace, which a URI cannot hold.
        lines.append(f"URL:{quote(event.url, safe=_URI_SAFE)}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + _CRLF for line in lines)


@dataclass(frozen=True)
class _When:
    lines: list[str]
    timed: bool
    first_year: int
    last_year: int


def _when(event: Event, zone: ZoneInfo) -> _When:
    """Return DTSTART and DTEND: all-day dates, or local times with the zone's TZID."""
    start, end = event.start, event.end
    if not isinstance(start, datetime):
        # All day: DTEND is exclusive (3.6.1), so the day after the last day.
        last = start if end is None else (end.date() if isinstance(end, datetime) else end)
        return _When(
            [
                f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
                f"DTEND;VALUE=DATE:{last + timedelta(days=1):%Y%m%d}",
            ],
            timed=False,
            first_year=start.year,
            last_year=last.year,
        )
    tzid = _param(zone.key)
    lines = [f"DTSTART;TZID={tzid}:{start:%Y%m%dT%H%M%S}"]
    last_year = start.year
    if end is not None:
        # A date as the end of a timed event means "to the end of that day".
        finish = end if isinstance(end, datetime) else datetime.combine(end, time()) + timedelta(1)
        lines.append(f"DTEND;TZID={tzid}:{finish:%Y%m%dT%H%M%S}")
        last_year = finish.year
    # Without an end, a timed event ends when it starts (3.6.1): we do not invent a length.
    return _When(lines, timed=True, first_year=start.year, last_year=last_year)


def vtimezone(zone: ZoneInfo, first_year: int, last_year: int) -> list[str]:
    """Return a VTIMEZONE for the zone over the given years, from the zoneinfo database.

    RFC 5545 3.2.19 requires one for every TZID used. It lists the observance in force on
    1 January of first_year and then every transition up to the end of last_year, as
    explicit onsets rather than RRULEs, which is exact even where the rules changed.
    """
    begin = datetime(first_year, 1, 1, tzinfo=UTC)
    finish = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone.key}"]
    first = begin.astimezone(zone)
    lines += _observance(first, first.replace(tzinfo=None), _offset(first))
    for instant in _transitions(zone, begin, finish):
        before = (instant - timedelta(seconds=1)).astimezone(zone)
        after = instant.astimezone(zone)
        # DTSTART is the onset in the local time in force before it (3.6.5).
        onset = (instant + _offset(before)).replace(tzinfo=None)
        lines += _observance(after, onset, _offset(before))
    return [*lines, "END:VTIMEZONE"]


def _observance(moment: datetime, onset: datetime, offset_from: timedelta) -> list[str]:
    kind = "DAYLIGHT" if moment.dst() else "STANDARD"
    lines = [
        f"BEGIN:{kind}",
        f"DTSTART:{onset:%Y%m%dT%H%M%S}",
        f"TZOFFSETFROM:{_format_offset(offset_from)}",
        f"TZOFFSETTO:{_format_offset(_offset(moment))}",
    ]
    name = moment.tzname()
    if name:
        lines.append(f"TZNAME:{escape_text(name)}")
    return [*lines, f"END:{kind}"]


def _transitions(zone: ZoneInfo, begin: datetime, finish: datetime) -> list[datetime]:
    """Return the UTC instants in [begin, finish) at which the zone's offset or name changes."""
    found: list[datetime] = []
    step = timedelta(days=1)
    moment = begin
    while moment < finish:
        later = min(moment + step, finish)
        if _state(zone, moment) != _state(zone, later):
            low, high = moment, later  # the state changes in (low, high]
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if _state(zone, middle) == _state(zone, low):
                    low = middle
                else:
                    high = middle
            found.append(high)
        moment = later
    return found


def _state(zone: ZoneInfo, instant: datetime) -> tuple[timedelta, timedelta, str]:
    local = instant.astimezone(zone)
    return _offset(local), local.dst() or timedelta(0), local.tzname() or ""


def _offset(moment: datetime) -> timedelta:
    return moment.utcoffset() or timedelta(0)


def _format_offset(offset: timedelta) -> str:
    """Return an offset as +HHMM, or +HHMMSS when it has seconds (3.3.14)."""
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def escape_text(value: str) -> str:
    """Escape a TEXT value: backslash, semicolon, comma and line breaks (3.3.11)."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", value)


def _param(value: str) -> str:
    """Quote a parameter value that contains ; : or , (3.2); a zone name never has a quote."""
    return f'"{value}"' if _PARAM_UNSAFE.search(value) else value


def fold(line: str) -> str:
    """Fold a content line into lines of at most 75 octets, never inside a UTF-8 character."""
    data = line.encode("utf-8")
    if len(data) <= _LINE_OCTETS:
        return line
    parts: list[bytes] = []
    limit = _LINE_OCTETS
    while len(data) > limit:
        cut = limit
        while data[cut] & 0xC0 == 0x80:  # a continuation byte: back up to the character start
            cut -= 1
        parts.append(data[:cut])
        data = data[cut:]
        limit = _LINE_OCTETS - 1  # the leading space of a continuation line counts
    parts.append(data)
    return (_CRLF + " ").join(part.decode("utf-8") for part in parts)
