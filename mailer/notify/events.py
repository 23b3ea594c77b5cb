"""What the editor is told: one event per thing that happened, each a short plain text.

An event's key is its kind, its issue and a digest of its cause, so the same cause is told
once (until it is resolved: then it is news again), and a new cause is told at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["report", "held", "late", "stopped", "publish", "invalid"]
PROBLEMS: tuple[Kind, ...] = ("held", "late", "stopped", "invalid")  # resolved by a send
_SHOWN_ROWS = 20


@dataclass(frozen=True)
class Event:
    """One thing to tell the editor about."""

    kind: Kind
    issue_id: str  # "" for the folder as a whole (publishing)
    cause: str  # what makes it this event and not another of its kind
    subject: str
    body: str

    @property
    def key(self) -> str:
        """Return the event's identity: kind, issue and a digest of the cause."""
        digest = hashlib.sha256(self.cause.encode("utf-8")).hexdigest()[:20]
        return f"{self.kind}:{self.issue_id}:{digest}"


@dataclass(frozen=True)
class Outcome:
    """A send's result as the report tells it: counts, who failed and why, what was skipped."""

    issue_id: str
    path: str  # the issue file, as a command names it from the folder: issues/x.yaml
    subject: str
    counts: dict[str, int]
    sent_now: int
    skipped: dict[str, int]  # duplicate, unsubscribed, invalid
    invalid_rows: Sequence[str]
    problems: Sequence[str]  # "who: state (code text)"
    stopped: str | None = None  # why the run stopped early (the rest waits)


def report_event(outcome: Outcome, archive: str, next_steps: list[str], at: datetime) -> Event:
    """Return the report after a send: issue, sent, skipped, failed, unknown, deferred, archive."""
    counts = outcome.counts
    total = sum(n for state, n in counts.items() if state != "removed")
    lines = [
        f'Issue: {outcome.issue_id} ("{outcome.subject}")',
        f"Sent: {counts.get('sent', 0)} of {total} ({outcome.sent_now} in this run, "
        f"{at:%Y-%m-%d %H:%M %Z})",
    ]
    skipped = ", ".join(f"{n} {why}" for why, n in outcome.skipped.items() if n)
    lines.append(f"Skipped: {skipped or 'none'}")
    lines += [f"  {row}" for row in outcome.invalid_rows[:_SHOWN_ROWS]]
    lines += _more(len(outcome.invalid_rows))
    for state in ("failed", "unknown", "deferred", "pending"):
        if counts.get(state) or state != "pending":
            lines.append(f"{state.capitalize()}: {counts.get(state, 0)}")
    if outcome.problems:
        lines.append("Who, and why:")
        lines += [f"  {row}" for row in outcome.problems[:_SHOWN_ROWS]]
        lines += _more(len(outcome.problems))
    if outcome.stopped:
        lines.append(f"Stopped: {outcome.stopped}")
    lines.append(f"Archive: {archive}")
    lines += ["", "Next step: " + next_steps[0], *(f"  {step}" for step in next_steps[1:])]
    trouble = [f"{counts[s]} {s}" for s in ("failed", "unknown") if counts.get(s)]
    summary = f"sent to {counts.get('sent', 0)} of {total}" + (
        f" ({', '.join(trouble)})" if trouble else ""
    )
    if outcome.stopped:
        summary += "; stopped"
    cause = repr(sorted(counts.items())) + repr(outcome.stopped)
    return Event("report", outcome.issue_id, cause, f"{outcome.issue_id}: {summary}", _text(lines))


def problem_event(kind: Kind, issue_id: str, cause: str, subject: str, lines: list[str]) -> Event:
    """Return an event about a problem: held, late, stopped, publishing, a broken file."""
    return Event(kind, issue_id, cause, subject, _text(lines))


def _more(count: int) -> list[str]:
    return (
        [f"  ... and {count - _SHOWN_ROWS} more (see `mailer status`)"]
        if count > _SHOWN_ROWS
        else []
    )


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"
