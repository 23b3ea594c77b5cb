"""`mailer send-due`, for cron: send what is due, hold what is late, say only what is news."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mailer.config import Settings
from mailer.errors import DeliveryError, IssueError, LockedError, MailerError
from mailer.folder import Newsletter
from mailer.issue import load_yaml
from mailer.ledger import Ledger, folder_lock
from mailer.schedule.repeats import Reporter, said_once
from mailer.schedule.states import Entry, read_schedule
from mailer.send import SendPlan, deliver, prepare_send
from mailer.values import parse_duration


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


def send_due(folder: Path, settings: Settings, now: datetime, out: Reporter) -> DueResult:
    """Send every due issue (same path as `send --yes`); hold late ones; say each in a line.

    Cron mails whatever a run prints, so a run prints only news: an issue sent, held or
    failing for a new reason; repeats of the same state, and a failure the last run printed
    already, go to the log only. An issue file that cannot be loaded is reported (if it
    seems meant to go out about now), and the other issues go on.
    """
    result = DueResult()
    # The whole run has a deadline: the lock it holds must never be held for ever.
    deadline = time.monotonic() + parse_duration(settings.schedule.run_deadline).total_seconds()
    try:
        # The whole run holds the lock: what it reads of the ledger stays true while it acts.
        with folder_lock(folder), said_once(Newsletter(folder).said_path, out) as once:
            with Ledger.open(folder) as ledger:
                known = {summary.issue_id for summary in ledger.issues()}
            for entry in read_schedule(folder, settings, now):
                if time.monotonic() >= deadline or not _send_entry(
                    folder, settings, now, entry, known, once, result, deadline
                ):
                    break  # stopped by a signal, or a quota that holds for every issue
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
    deadline: float,
) -> bool:
    """Send one entry if it is due; return whether the run may go on to the next."""
    shown = Newsletter(folder).shown(entry.path)
    if entry.error is not None:
        if entry.stem not in known and _claims_due(entry.path, now, settings):
            out.failed(str(entry.error))
            result.worse(1)
        return True
    if entry.state == "late":
        _hold(folder, entry, entry.note, now)
        out.failed(
            f"{shown}: not sent: {entry.note.removesuffix(': held back')} (send_at "
            f"{entry.send_at:%Y-%m-%d %H:%M %z}, max_lateness {_lateness(settings, entry)}); "
            f"held back. To send it now on purpose: {_send_command(folder, shown)}"
        )
        result.worse(1)
        return True
    if entry.state not in ("due", "sending") or entry.send_at is None:
        return True  # an issue without send_at is sent by hand, resumed by hand
    try:
        left = max(1.0, deadline - time.monotonic())
        done = deliver(
            _prepare(folder, entry, shown), now=lambda: datetime.now(now.tzinfo), deadline=left
        )
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
        return True
    counts = done.counts
    line = (
        f"{entry.stem}: sent {done.sent_now} now, {counts['sent']} in all; deferred "
        f"{counts['deferred']}, failed {counts['failed']}, unknown {counts['unknown']}"
    )
    if done.interrupted:
        out.failed(f"{line}; interrupted: the next run resumes it")
        result.worse(done.interrupted)
        return False
    if done.timed_out:
        out.noted(f"{line}; stopped at the run's deadline (run_deadline): the next run goes on")
        return False
    if done.quota is not None:
        left = counts["pending"] + counts["deferred"]
        at = datetime.fromtimestamp(done.quota.free_at, now.tzinfo)
        said = f"{line}; {done.quota.window} quota reached: {left} left for a run after {at:%H:%M}"
        (out.said if done.sent_now else out.noted)(said)  # waiting for the quota is not news
        return False
    if done.stopped is not None:
        out.failed(f"{line}; stopped: {done.stopped}")
        result.worse(done.stopped.exit_code)
        return False  # the server, the login or the ledger: the next issue would meet it too
    elif not done.sent_now and done.counts == entry.counts:
        out.noted(line)  # nothing new since the last run: a recipient still deferred, say
        result.worse(0 if done.complete else 3)
    else:
        (out.said if done.complete else out.failed)(line)
        result.sent_issues.append(entry.stem)
        result.worse(0 if done.complete else 3)
    return True


def _prepare(folder: Path, entry: Entry, shown: str) -> SendPlan:
    """Prepare the issue's send; a crash loading or rendering it stops only this issue."""
    try:
        return prepare_send(folder, entry.path, shown_issue=shown)
    except MailerError:
        raise
    except Exception as err:  # a bug, or a file that changed since: the other issues go on
        raise IssueError(f"{shown}: cannot be prepared ({type(err).__name__}: {err})") from err


def _send_command(folder: Path, shown: str) -> str:
    return f"mailer --dir {shlex.quote(str(folder))} send {shown} --yes"


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
    except Exception:  # not even YAML, or worse: it may be meant to go out
        return True
    if not isinstance(data, dict) or "send_at" not in data:
        return False  # a draft without a schedule is nobody's business yet
    try:
        send_at = datetime.fromisoformat(str(data["send_at"]))
        window = parse_duration(settings.schedule.max_lateness)
        return send_at <= now and now - send_at <= window
    except (TypeError, ValueError):
        return True
