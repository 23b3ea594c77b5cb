"""Dates: diary and course dates already past at the issue's date or at send_at."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from mailer.checks.base import Email, Finding
from mailer.issue import as_moment, dotted
from mailer.render import format_date, format_when

# A send_at this far from the issue's date is more likely a copied line than a plan.
SEND_AT_DRIFT = timedelta(days=14)

Announced = tuple[str, str, date | datetime, date | datetime | None]  # loc, title, start, end


def announced(email: Email) -> list[Announced]:
    """Return every dated item of the issue: where, its title, its start and end."""
    return [
        (dotted(dated.loc), dated.item.title, dated.start, dated.end)
        for dated in email.loaded.issue.dated_items()
    ]


def check_dates(email: Email) -> list[Finding]:
    """Report items over by the issue's date or by send_at, ends before starts, odd send_at."""
    issue = email.loaded.issue
    findings: list[Finding] = []
    send_at = issue.send_at.astimezone(email.settings.zone) if issue.send_at else None
    for loc, title, start, end in announced(email):
        if end is not None and as_moment(end, last=True) < as_moment(start):
            findings.append(
                Finding(
                    "error",
                    "dates",
                    f"{loc}.end",
                    f'"{title}" ends ({format_date(end)}) before it starts ({format_date(start)})',
                    "swap date and end",
                )
            )
            continue
        if _day(end if end is not None else start) < issue.date:
            findings.append(
                Finding(
                    "error",
                    "dates",
                    f"{loc}.{'end' if end else 'date'}",
                    f'"{title}" ({format_when(start, end)}) is over by the issue\'s date '
                    f"({format_date(issue.date)})",
                    "remove the item, or correct its date (YYYY-MM-DD)",
                )
            )
        elif send_at is not None and _over_at(send_at.replace(tzinfo=None), start, end):
            findings.append(
                Finding(
                    "error",
                    "dates",
                    f"{loc}.date",
                    f'"{title}" ({format_when(start, end)}) will '
                    f"{_over_word(start, end)} by send_at ({_local(send_at)})",
                    "move send_at earlier, or remove the item",
                )
            )
    if send_at is not None and abs(send_at.date() - issue.date) > SEND_AT_DRIFT:
        findings.append(
            Finding(
                "warning",
                "dates",
                "send_at",
                f"send_at ({send_at:%Y-%m-%d}) is {abs((send_at.date() - issue.date).days)} days "
                f"from the issue's date ({issue.date})",
                "check both: was one copied from an earlier issue?",
            )
        )
    return findings


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _over_at(moment: datetime, start: date | datetime, end: date | datetime | None) -> bool:
    """Say whether an item is over (or, without an end, has started) at a local time."""
    if end is not None:
        return moment > as_moment(end, last=True)
    return moment > as_moment(start, last=not isinstance(start, datetime))


def _over_word(start: date | datetime, end: date | datetime | None) -> str:
    return "have started" if end is None and isinstance(start, datetime) else "be over"


def _local(moment: datetime) -> str:
    return f"{format_date(moment.replace(tzinfo=None))} {moment.tzinfo}"
