"""One `send-due` run: its context, what it found to publish and to tell, and its record.

Every run is recorded (its lines, its exit code, and why the editor could not be told, if
so) for `mailer status`, which shows the last unattended run first.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailer.config import Settings
from mailer.folder import Newsletter
from mailer.notify import Event, NotifyStore, Outcome, RunRecord
from mailer.schedule.repeats import Report, Reporter
from mailer.schedule.states import Entry


@dataclass
class DueResult:
    """What one `send-due` run did; exit_code is the worst outcome."""

    exit_code: int = 0
    sent_issues: list[str] = field(default_factory=list)

    def worse(self, code: int) -> None:
        """Keep the most serious exit code: a signal's, 75, 4, 3, then 1."""
        rank = {0: 0, 1: 1, 3: 2, 4: 3, 75: 4, 129: 5, 130: 5, 143: 5}
        if rank.get(code, 1) > rank.get(self.exit_code, 1):
            self.exit_code = code


@dataclass
class Tick:
    """One run's context, and what it found to publish and to tell."""

    folder: Path
    settings: Settings
    now: datetime
    out: Reporter
    result: DueResult
    deadline: float  # time.monotonic() by which the run stops (run_deadline)
    known: set[str] = field(default_factory=set)  # issues the ledger knows
    events: list[Event] = field(default_factory=list)  # problems to tell the editor
    reports: list[Outcome] = field(default_factory=list)  # sends to report
    resolved: list[str] = field(default_factory=list)  # issues whose problems are over
    lines: list[str] = field(default_factory=list)  # everything said, for the record
    notify_problem: str | None = None

    @classmethod
    def start(
        cls,
        folder: Path,
        settings: Settings,
        now: datetime,
        out: Reporter,
        result: DueResult,
        deadline: float,
    ) -> Tick:
        """Return a run whose reporter also keeps every line for the record."""
        tick = cls(folder, settings, now, out, result, deadline)
        tick.out = Reporter(
            said=tick._keeping(out.said),
            failed=tick._keeping(out.failed),
            noted=tick._keeping(out.noted),
        )
        return tick

    def _keeping(self, report: Report) -> Report:
        def keep(text: str) -> None:
            self.lines.append(text)
            report(text)

        return keep

    def shown(self, entry: Entry) -> str:
        """Return the issue file as a command names it from the folder."""
        return Newsletter(self.folder).shown(entry.path)

    def command(self, entry: Entry) -> str:
        """Return the command that sends the issue by hand."""
        return f"mailer --dir {shlex.quote(str(self.folder))} send {self.shown(entry)} --yes"

    def when(self, entry: Entry) -> str:
        """Return the issue's send_at in the newsletter's time zone."""
        assert entry.send_at is not None
        return f"{entry.send_at.astimezone(self.settings.zone):%a %Y-%m-%d %H:%M %Z}"

    def record(self) -> None:
        """Keep the run for `mailer status`."""
        finished = datetime.now(UTC).isoformat(timespec="seconds")
        run = RunRecord(
            self.now.astimezone(UTC).isoformat(timespec="seconds"),
            finished,
            self.result.exit_code,
            self.lines,
            self.notify_problem,
        )
        with NotifyStore.open(self.folder) as store:
            store.record_run(run)
