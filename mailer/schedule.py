"""Scheduled sending: what is due, late or done, and `send-due` for cron."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from mailer.config import Settings
from mailer.errors import DeliveryError, IssueError, LockedError, MailerError, Problem
from mailer.issue import LoadedIssue, load_issue, parse_duration
from mailer.ledger import LEDGER_FILE, Ledger
from mailer.lock import folder_lock
from mailer.runlog import LOG_FILE
from mailer.yamlsource import load_yaml

State = Literal["unscheduled", "scheduled", "due", "sending", "sent", "late", "held", "failed"]
Report = Callable[[str], None]


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
    ledger = Ledger.open(folder) if (folder / LEDGER_FILE).exists() else None
    try:
        entries = [_entry(folder, path, settings, ledger, now) for path in _issue_files(folder)]
    finally:
        if ledger is not None:
            ledger.close()
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(entries, key=lambda e: (e.send_at or far, e.stem))


def _issue_files(folder: Path) -> list[Path]:
    issues = folder / "issues"
    return sorted([*issues.glob("*.yaml"), *issues.glob("*.yml")])


def _entry(
    folder: Path, path: Path, settings: Settings, ledger: Ledger | None, now: datetime
) -> Entry:
    try:
        loaded = load_issue(path, _shown(folder, path))
    except IssueError as err:
        return Entry(path, None, err, "unscheduled", note="invalid: run `mailer validate`")
    send_at = loaded.issue.send_at
    summary = _summary(ledger, loaded.stem)
    counts = summary[0] if summary else {}
    if ledger is not None and send_at and (reason := ledger.held(loaded.stem, send_at)):
        return Entry(path, loaded, None, "held", counts, reason)
    late = now - send_at if send_at else None
    too_late = late is not None and late > max_lateness(settings, loaded)
    if summary is not None:
        counts, finished = summary
        if finished:
            trouble = counts.get("failed", 0) + counts.get("unknown", 0)
            return Entry(path, loaded, None, "failed" if trouble else "sent", counts)
        if late is not None and too_late and not counts.get("sent") and not counts.get("unknown"):
            # Started but nobody has it (the server was down): as late as if never started.
            return Entry(path, loaded, None, "late", counts, f"{_span(late)} late: held back")
        return Entry(path, loaded, None, "sending", counts, "started; a run resumes it")
    if send_at is None or late is None:
        return Entry(path, loaded, None, "unscheduled")
    if send_at > now:
        return Entry(path, loaded, None, "scheduled")
    if too_late:
        return Entry(path, loaded, None, "late", note=f"{_span(late)} late: held back")
    return Entry(path, loaded, None, "due")


def _shown(folder: Path, path: Path) -> str:
    """Return the path as the user wrote it from the folder: issues/x.yaml."""
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)


def _summary(ledger: Ledger | None, issue_id: str) -> tuple[dict[str, int], bool] | None:
    if ledger is None:
        return None
    for summary in ledger.issues():
        if summary.issue_id == issue_id:
            return summary.counts, summary.finished_at is not None
    return None


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m"]
    return "".join(part for part in parts if part) or "0m"


@dataclass
class DueResult:
    """What one `send-due` run did; exit_code is the worst outcome."""

    exit_code: int = 0
    sent_issues: list[str] = field(default_factory=list)

    def worse(self, code: int) -> None:
        """Keep the most serious exit code: 75, 4, 3, then 1."""
        rank = {0: 0, 1: 1, 3: 2, 4: 3, 75: 4}
        if rank.get(code, 1) > rank.get(self.exit_code, 1):
            self.exit_code = code


@dataclass(frozen=True)
class Reporter:
    """Where send-due's lines go: good news, bad news (stderr, even with -q), the log only."""

    said: Report
    failed: Report
    noted: Report


def send_due(folder: Path, settings: Settings, now: datetime, out: Reporter) -> DueResult:
    """Send every due issue (same path as `send --yes`); hold late ones; say each in a line.

    Cron mails whatever a run prints, so a run prints only news: an issue sent, held or
    failing for a new reason; repeats of the same state go to the log only.
    """
    result = DueResult()
    try:
        # The whole run holds the lock: what it reads of the ledger stays true while it acts.
        with folder_lock(folder):
            with Ledger.open(folder) as ledger:
                known = {summary.issue_id for summary in ledger.issues()}
            for entry in read_schedule(folder, settings, now):
                _send_entry(folder, settings, now, entry, known, out, result)
    except LockedError as err:
        # Another send (or send-due) is at work and will finish the job. Cron would mail
        # its owner every few minutes if this printed, so it only goes to the log.
        out.noted(str(err))
        result.worse(75)
    return result


def _send_entry(
    folder: Path,
    settings: Settings,
    now: datetime,
    entry: Entry,
    known: set[str],
    out: Reporter,
    result: DueResult,
) -> None:
    from mailer.send import deliver, prepare_send

    shown = _shown(folder, entry.path)
    if entry.error is not None:
        if entry.stem not in known and _claims_due(entry.path, now, settings):
            out.failed(str(entry.error))
            result.worse(1)
        return
    if entry.state == "late":
        _hold(folder, entry, entry.note, now)
        out.failed(
            f"{shown}: not sent: {entry.note.removesuffix(': held back')} (send_at "
            f"{entry.send_at:%Y-%m-%d %H:%M %z}, max_lateness {_lateness(settings, entry)}); "
            f"held back. To send it now on purpose: {_send_command(folder, shown)}"
        )
        result.worse(1)
        return
    if entry.state not in ("due", "sending") or entry.send_at is None:
        return  # an issue without send_at is sent by hand, resumed by hand
    try:
        plan = prepare_send(folder, entry.path, shown_issue=shown)
        done = deliver(plan, now=lambda: datetime.now(now.tzinfo))
    except (LockedError, DeliveryError):
        raise
    except MailerError as err:
        # Something to fix in the issue, the list or the settings: say it once and hold the
        # issue, rather than say it again every few minutes.
        _hold(folder, entry, f"not sent: {err}".splitlines()[0], now)
        out.failed(
            f"{shown}: not sent, held back: {err}\nWhen it is fixed: {_send_command(folder, shown)}"
        )
        result.worse(err.exit_code)
        return
    counts = done.counts
    line = (
        f"{entry.stem}: sent {done.sent_now} now, {counts['sent']} in all; deferred "
        f"{counts['deferred']}, failed {counts['failed']}, unknown {counts['unknown']}"
    )
    if done.stopped is not None:
        out.failed(f"{line}; stopped: {done.stopped}")
        result.worse(done.stopped.exit_code)
    elif not done.sent_now and done.counts == entry.counts:
        out.noted(line)  # nothing new since the last run: a recipient still deferred, say
        result.worse(0 if done.complete else 3)
    else:
        (out.said if done.complete else out.failed)(line)
        result.sent_issues.append(entry.stem)
        result.worse(0 if done.complete else 3)


def _send_command(folder: Path, shown: str) -> str:
    return f"mailer --dir {_quoted(folder)} send {shown} --yes"


def _lateness(settings: Settings, entry: Entry) -> str:
    assert entry.loaded is not None
    return entry.loaded.issue.max_lateness or settings.schedule.max_lateness


def _hold(folder: Path, entry: Entry, reason: str, now: datetime) -> None:
    assert entry.send_at is not None
    with Ledger.open(folder) as ledger:
        ledger.hold(entry.stem, reason, entry.send_at, now)


def _claims_due(path: Path, now: datetime, settings: Settings) -> bool:
    """Say whether an invalid issue file seems meant to go out about now (so say it is broken)."""
    try:
        data = load_yaml(path).data
    except MailerError:
        return True  # not even YAML: it may be meant to go out, so say so
    if not isinstance(data, dict) or "send_at" not in data:
        return False  # a draft without a schedule is nobody's business yet
    try:
        send_at = datetime.fromisoformat(str(data["send_at"]))
        window = parse_duration(settings.schedule.max_lateness)
        return send_at <= now and now - send_at <= window
    except (TypeError, ValueError):
        return True


def schedule_problems(
    folder: Path, loaded: LoadedIssue, settings: Settings | None, now: datetime
) -> tuple[list[Problem], list[Problem]]:
    """Return (errors, warnings) about when the issue is scheduled, at its send_at line."""
    send_at = loaded.issue.send_at
    if send_at is None:
        return [], []
    line, column = loaded.source.mark(("send_at",)) or (None, None)

    def problem(message: str, hint: str) -> Problem:
        return Problem(loaded.source.path, line, column, "send_at", message, hint)

    local = send_at.astimezone(settings.zone) if settings else send_at
    warnings, errors = [], []
    if send_at < now:
        warnings.append(
            problem(
                f"{local:%Y-%m-%d %H:%M} is in the past",
                "`mailer send-due` sends it only within max_lateness; set a new time",
            )
        )
    if local.weekday() >= 5:
        warnings.append(problem(f"{local:%A %Y-%m-%d} is a weekend day", "check the date"))
    minute = send_at.replace(second=0, microsecond=0)
    for path in _issue_files(folder):
        if path.resolve() == loaded.path.resolve():
            continue
        try:
            other = load_issue(path).issue.send_at
        except IssueError:
            continue
        if other is not None and other.replace(second=0, microsecond=0) == minute:
            errors.append(
                problem(
                    f"{local:%Y-%m-%d %H:%M} is also when {path.name} is scheduled",
                    "give each issue its own minute",
                )
            )
    return errors, warnings


def cron_lines(folder: Path, mailer_command: str, settings: Settings) -> str:
    """Return the crontab lines that run `send-due` every few minutes for this folder."""
    every = settings.schedule.every_minutes
    lines = [
        f"# mailer: send the due issues of {settings.name} every {every} minutes.",
        f"# Each run is logged to {folder / LOG_FILE}; cron mails you only when something",
        "# went wrong. Secrets go here (your crontab is private to you), never in mailer.toml:",
    ]
    # Overrides set in this shell go along, or cron would use mailer.toml's server.
    for name in ("MAILER_SMTP_HOST", "MAILER_SMTP_PORT", "MAILER_SMTP_SECURITY"):
        if os.environ.get(name):
            lines.append(f"{name}={os.environ[name]}")
    if os.environ.get("MAILER_SMTP_USERNAME"):
        lines.append(f"MAILER_SMTP_USERNAME={os.environ['MAILER_SMTP_USERNAME']}")
    if settings.smtp.username:
        lines.append("MAILER_SMTP_PASSWORD=<your SMTP password>")
    if settings.unsubscribe_url:
        lines.append("MAILER_UNSUBSCRIBE_SECRET=<the same secret as for `mailer send`>")
    lines.append(f"*/{every} * * * * {mailer_command} --dir {_quoted(folder)} send-due")
    return "\n".join(lines) + "\n"


def _quoted(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))
