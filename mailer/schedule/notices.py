"""What the editor is told when a scheduled issue does not go out: held, late, stopped, broken.

Each notice says what happened, to which issue and when it was due, and the next step.
"""

from __future__ import annotations

from datetime import timedelta

from mailer.errors import IssueError, MailerError
from mailer.notify import Event, problem_event
from mailer.schedule.states import Entry
from mailer.schedule.tick import Tick


def held_notice(tick: Tick, entry: Entry, err: MailerError, lateness: timedelta) -> Event:
    """Return the notice for an issue held for something to fix (one per distinct cause)."""
    assert entry.send_at is not None
    until = (entry.send_at + lateness).astimezone(tick.settings.zone)
    lines = [
        f"{tick.shown(entry)} (due {tick.when(entry)}) was not sent:",
        "",
        str(err),
        "",
        "Next step: fix what is named above. Every run tries again, and the issue goes out",
        f"by itself once it is fixed, until {until:%a %Y-%m-%d %H:%M %Z}.",
        f"Or send it now by hand: {tick.command(entry)}",
    ]
    if "invalid row" in str(err):
        lines.append("Or set [recipients] skip_invalid = true to send to the valid rows.")
    cause = f"{entry.send_at}\n{err}"
    return problem_event("held", entry.stem, cause, f"{entry.stem}: held, not sent", lines)


def late_notice(tick: Tick, entry: Entry, lateness: str) -> Event:
    """Return the notice for an issue too late to go out by itself."""
    lines = [
        f"{tick.shown(entry)} was due at {tick.when(entry)} but was not sent in time "
        f"(max_lateness {lateness}),",
        "so it is held back: mail this late may no longer be right.",
        "",
        f"Next step: to send it now on purpose: {tick.command(entry)}",
        "  or give it a new send_at, and cron sends it then.",
    ]
    cause = f"late {entry.send_at}"
    return problem_event("late", entry.stem, cause, f"{entry.stem}: not sent, too late", lines)


def stopped_notice(
    tick: Tick, entry: Entry, cause: str, counts: dict[str, int], said: str | None = None
) -> Event:
    """Return the notice for a send that stopped: a quota, the login, TLS, the relay."""
    order = sorted(counts.items(), key=lambda item: item[0] != "sent")  # sent first
    figures = ", ".join(f"{n} {state}" for state, n in order if n) or "nobody yet"
    lines = [
        f"Sending {tick.shown(entry)} (due {tick.when(entry)}) stopped:",
        "",
        cause,
        *(["", said] if said else []),
        "",
        f"So far: {figures}.",
        "",
        "Next step: nothing, if the cause goes away: every run resumes the send.",
        "Otherwise fix what is named above (`mailer status` shows who waits).",
    ]
    subject = f"{entry.stem}: sending stopped"
    return problem_event("stopped", entry.stem, cause.splitlines()[0], subject, lines)


def invalid_notice(tick: Tick, entry: Entry, error: IssueError) -> Event:
    """Return the notice for an issue file that cannot be loaded but seems due."""
    lines = [str(error), "", "Next step: fix it; `mailer validate` checks it."]
    subject = f"{tick.shown(entry)} cannot be loaded, and seems due"
    return problem_event("invalid", entry.stem, str(error), subject, lines)
