"""Each issue's place in the schedule, in the words `schedule` and `status` both use.

Every hold is re-evaluated at every tick. One because the issue was too late: if the clock
had jumped ahead and came back, the issue is within its window again and goes out. One for
an error to fix (the list, a check): while the issue is still within its lateness, every
run tries it again, so it goes out on the first tick after the fix; past it, it is late.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from mailer.config import Settings
from mailer.errors import IssueError
from mailer.folder import Newsletter
from mailer.issue import LoadedIssue, try_load_issue
from mailer.ledger import Ledger
from mailer.send import SendPlan
from mailer.values import parse_duration

State = Literal[
    "invalid", "unscheduled", "scheduled", "due", "sending", "sent", "partly sent", "late", "held"
]
# What each word means: `mailer schedule` and `mailer status` say the same (issue 13).
MEANINGS: dict[State, str] = {
    "invalid": "the file cannot be loaded",
    "unscheduled": "no send_at: sent by hand",
    "scheduled": "send_at is still to come",
    "due": "send_at has passed: the next run sends it",
    "sending": "started, some still to send: a run resumes it",
    "sent": "everyone on the list has it",
    "partly sent": "finished, but some failed or may not have it (see `mailer status`)",
    "late": "too late to send by itself: held back",
    "held": "not sent: something to fix; every run tries again",
}
LATE_NOTE = "late: held back"  # the end of a late issue's note, and of the reason it is held
RETRY_NOTE = "; tried again at every run"  # how the note of a hold to fix goes on


def ledger_state(counts: dict[str, int], finished: bool) -> State:
    """Return the word for an issue the ledger knows: sending, sent or partly sent."""
    if not finished:
        return "sending"
    return "partly sent" if counts.get("failed") or counts.get("unknown") else "sent"


@dataclass(frozen=True)
class Entry:
    """One issue file as the scheduler sees it."""

    path: Path
    loaded: LoadedIssue | None
    error: IssueError | None
    state: State
    counts: dict[str, int] = field(default_factory=dict)
    note: str = ""
    retry: bool = False  # held for something to fix, still within its lateness: try again

    @property
    def stem(self) -> str:
        """Return the issue's id."""
        return self.path.stem

    @property
    def send_at(self) -> datetime | None:
        """Return when the issue may be sent."""
        return self.loaded.issue.send_at if self.loaded else None


def max_lateness(settings: Settings, loaded: LoadedIssue) -> timedelta:
    """Return how late the issue may still go out: its own setting, else the newsletter's."""
    return parse_duration(loaded.issue.max_lateness or settings.schedule.max_lateness)


def read_schedule(folder: Path, settings: Settings, now: datetime) -> list[Entry]:
    """Return every issue in issues/ with its state, soonest send_at first."""
    newsletter = Newsletter(folder, settings)
    ledger = Ledger.open_existing(folder)
    try:
        entries = [
            _entry(newsletter, path, settings, ledger, now) for path in newsletter.issue_paths()
        ]
    finally:
        if ledger is not None:
            ledger.close()
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(entries, key=lambda e: (e.send_at or far, e.stem))


def _entry(
    newsletter: Newsletter, path: Path, settings: Settings, ledger: Ledger | None, now: datetime
) -> Entry:
    loaded = try_load_issue(path, newsletter.shown(path))
    if isinstance(loaded, IssueError):
        return Entry(path, None, loaded, "invalid", note="run `mailer validate` on it")
    send_at = loaded.issue.send_at
    summary = _summary(ledger, loaded.stem)
    held = ledger.held(loaded.stem, send_at) if ledger is not None and send_at else None
    entry = _fresh(path, loaded, settings, summary, now)
    if held is None:
        return entry
    if not is_late_hold(held) and entry.state in ("due", "sending"):
        assert send_at is not None
        until = (send_at + max_lateness(settings, loaded)).astimezone(settings.zone)
        note = f"{held}{RETRY_NOTE} until {until:%a %Y-%m-%d %H:%M}"
        return Entry(path, loaded, None, "held", entry.counts, note, retry=True)
    if entry.state == "late" and is_late_hold(held):
        return Entry(path, loaded, None, "held", entry.counts, held)  # still late: said already
    # Too late now (an error hold: lateness takes over), or no longer held: the clock had
    # jumped ahead and came back, or it was sent by hand.
    return entry


def is_late_hold(reason: str) -> bool:
    """Say whether a hold's reason is lateness (re-evaluated every tick), not an error."""
    return reason.endswith(LATE_NOTE) and not reason.startswith("not sent")


def _fresh(
    path: Path,
    loaded: LoadedIssue,
    settings: Settings,
    summary: tuple[dict[str, int], bool] | None,
    now: datetime,
) -> Entry:
    """Return the issue's state from its send_at, the clock and the ledger, holds aside."""
    send_at = loaded.issue.send_at
    late = now - send_at if send_at else None
    too_late = late is not None and late > max_lateness(settings, loaded)
    if summary is not None:
        counts, finished = summary
        if finished:
            return Entry(path, loaded, None, ledger_state(counts, finished), counts)
        if late is not None and too_late and not counts.get("sent") and not counts.get("unknown"):
            # Started but nobody has it (the server was down): as late as if never started.
            return Entry(path, loaded, None, "late", counts, f"{span(late)} {LATE_NOTE}")
        return Entry(path, loaded, None, "sending", counts, "started; a run resumes it")
    if send_at is None or late is None:
        return Entry(path, loaded, None, "unscheduled")
    if send_at > now:
        return Entry(path, loaded, None, "scheduled")
    if too_late:
        return Entry(path, loaded, None, "late", note=f"{span(late)} {LATE_NOTE}")
    return Entry(path, loaded, None, "due")


def _summary(ledger: Ledger | None, issue_id: str) -> tuple[dict[str, int], bool] | None:
    if ledger is None:
        return None
    for summary in ledger.issues():
        if summary.issue_id == issue_id:
            return summary.counts, summary.finished_at is not None
    return None


def left_to_send(plan: SendPlan, *, resend_unknown: bool, retry_failed: bool) -> int | None:
    """Return how many on the list a send would reach, or None if a run has work anyway.

    None: never started, or some recipient is still pending or deferred (on the list or
    not: a run sends to them, or marks them removed so the issue can finish).
    """
    ledger = Ledger.open_existing(plan.folder)
    if ledger is None:
        return None
    with ledger:
        known = {row.recipient_key: row.state for row in ledger.rows_of(plan.issue_id)}
    if not known or any(
        s in ("pending", "deferred", "reserved", "sending") for s in known.values()
    ):
        return None
    again = {"removed"}  # back on the list: a run sends to them
    again |= {"unknown"} if resend_unknown else set()
    again |= {"failed"} if retry_failed else set()
    return sum(1 for r in plan.recipients() if r.key not in known or known[r.key] in again)


def span(delta: timedelta) -> str:
    """Return a duration as 1d2h30m."""
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m"]
    return "".join(part for part in parts if part) or "0m"
