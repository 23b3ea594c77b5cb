"""Each issue's place in the schedule: scheduled, due, sending, sent, late, held or failed.

A hold because the issue was too late is re-evaluated at every tick: if the clock had jumped
ahead and came back, the issue is within its window again and goes out. Any other hold (an
error to fix) stays until a new send_at or a `send` by hand.
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
from mailer.values import parse_duration

State = Literal[
    "invalid", "unscheduled", "scheduled", "due", "sending", "sent", "late", "held", "failed"
]
LATE_NOTE = "late: held back"  # the end of a late issue's note, and of the reason it is held


@dataclass(frozen=True)
class Entry:
    """One issue file as the scheduler sees it."""

    path: Path
    loaded: LoadedIssue | None
    error: IssueError | None
    state: State
    counts: dict[str, int] = field(default_factory=dict)
    note: str = ""

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
    if held is not None and not is_late_hold(held):
        return Entry(path, loaded, None, "held", summary[0] if summary else {}, held)
    entry = _fresh(path, loaded, settings, summary, now)
    if held is not None and entry.state == "late":
        return Entry(path, loaded, None, "held", entry.counts, held)  # still late: said already
    return entry  # a late hold no longer late: the clock had jumped ahead and came back


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
            trouble = counts.get("failed", 0) + counts.get("unknown", 0)
            return Entry(path, loaded, None, "failed" if trouble else "sent", counts)
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


def span(delta: timedelta) -> str:
    """Return a duration as 1d2h30m."""
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m"]
    return "".join(part for part in parts if part) or "0m"
